/**
 * The node daemon: composes the node key, its signed covenant, the libp2p network, the SQLite
 * block store, the live peer table, block storage with replication and repair, the HTTP API,
 * pino logs (`<data>/node.log`, one JSON line per event) and Prometheus metrics. Every node also
 * runs the built-in exec service: the executor behind `/covenant/exec/1.0.0`, the gateway
 * `POST /v1/invoke`, and conflict evidence (`/covenant/conflict/1.0.0`, `GET /v1/conflicts`,
 * kept in `<data>/conflicts.db`).
 *
 * ## Adding a service (contract for the execution service and later parts)
 *
 * Pass factories in `services`. Each receives a {@link NodeComponents} after the network, block
 * store, peer table and storage exist and before the HTTP server listens, so it can:
 * - register protocols with `components.net.handle(protocol, { schema, maxBytes, handler })`
 *   and call peers with `components.net.request(peerId, protocol, msg, { timeoutMs })`;
 * - read `components.covenant()` (this node's signed covenant) and `components.peers.live()`
 *   (live peers, each with its verified signed covenant);
 * - fetch code with `components.getBlock(cid)` (local or network, hash-checked);
 * - add routes to `components.http` (fastify), e.g. `POST /v1/invoke`; throw CovenantErrors and
 *   the API answers `{ error: { code, message } }` with the right status;
 * - log with `components.logger` (never log request arguments) and add metrics to
 *   `components.metrics.registry`;
 * - find services created before it in `components.services` (e.g. a sandbox pool service
 *   named `'sandbox-pool'` that the exec service uses).
 * The factory returns `{ name, start?, stop? }`; `start` runs once the node is up, `stop` runs in
 * reverse order of creation before the built-in parts stop.
 *
 * @example
 * ```ts
 * const node = await createNode({
 *   dataDir: 'data/node-1',
 *   covenant: await loadCovenantFile('covenant.yaml'),
 *   bootstrap: ['/ip4/127.0.0.1/tcp/4700/p2p/12D3Koo…'],
 *   services: [(c) => { c.http.get('/v1/hello', async () => ({ hi: c.peerId })); return { name: 'hello' } }],
 * })
 * console.log(node.url, node.multiaddrs())
 * await node.stop()
 *
 * const devnet = await startDevnet({ nodes: 5, dir: '.covenant/devnet' })
 * console.log(devnet.nodes.map((n) => n.http))
 * await devnet.stop()
 * ```
 */
export type { ConflictStore, ConflictStoreInit, StoredConflict } from './conflict-store.ts'
export { openConflictStore } from './conflict-store.ts'
export type { Devnet, DevnetFile, DevnetNode, DevnetOptions } from './devnet.ts'
export {
  DEFAULT_BASE_PORT,
  DEFAULT_DEVNET_DIR,
  DEVNET_COVENANT,
  DEVNET_FILE,
  devnetFileSchema,
  startDevnet,
} from './devnet.ts'
export type { ExecServiceOptions } from './exec-service.ts'
export { execService, invokeBodySchema } from './exec-service.ts'
export type { DeployBody, HttpApiDeps } from './http-api.ts'
export { createHttpApi, deployBodySchema } from './http-api.ts'
export type { NodeMetrics } from './metrics.ts'
export { createMetrics } from './metrics.ts'
export type {
  CovenantNode,
  NodeComponents,
  NodeInit,
  NodeOptions,
  NodeService,
  NodeServiceFactory,
} from './node.ts'
export { createNode, nodeOptionsSchema } from './node.ts'
export type { Hello, PeerEntry, PeerInfoJSON, PeerTableInit } from './peer-table.ts'
export { helloSchema, MAX_HELLO_BYTES, PeerTable } from './peer-table.ts'
export { loadOrSignCovenant, SIGNED_COVENANT_FILE } from './signed-covenant-file.ts'
export type { BlockRequest, GetResult, PutResult, StorageInit } from './storage.ts'
export {
  blockRequestSchema,
  getReplySchema,
  hasReplySchema,
  MAX_BLOCK_MESSAGE_BYTES,
  MAX_HAS_CIDS,
  putReplySchema,
  Storage,
} from './storage.ts'
