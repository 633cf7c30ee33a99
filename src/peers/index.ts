/**
 * The peer table: who is out there, alive, under which signed covenant. Peers greet each other
 * with hellos over `/covenant/hello/1.0.0` (a signed covenant, listen addresses and known peers),
 * on every new connection and then every `heartbeatMs`; a verified hello marks a peer alive, a
 * failed one dead. Gossip in the hellos makes a node that knows one peer learn the network.
 * Covenants are verified before a peer counts; unverified ids never appear in {@link PeerTable.live}.
 *
 * @example
 * ```ts
 * const peers = createPeerTable({ net, covenant: () => signed, logger }, { heartbeatMs: 1000 })
 * await peers.start()
 * const stop = peers.onChange((id, entry) => console.log(id, entry.alive))
 * peers.live().map((p) => p.covenant.config.execute.enabled)
 * stop()
 * await peers.stop()
 * ```
 */
export type { Hello } from './hello.ts'
export { HELLO_PROTOCOL, helloSchema, MAX_HELLO_BYTES } from './hello.ts'
export type {
  LivePeer,
  PeerChangeListener,
  PeerEntry,
  PeerTable,
  PeerTableComponents,
  PeerTableOptions,
} from './peer-table.ts'
export { createPeerTable, peerTableOptionsSchema } from './peer-table.ts'
