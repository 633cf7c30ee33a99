/**
 * The network part: a libp2p host (TCP, Noise, Yamux, identify, ping, a Kademlia DHT on the
 * private `/covenant/kad/1.0.0` protocol) and a tiny request/reply layer for Covenant's own
 * protocols, each message one length-prefixed DAG-CBOR value.
 *
 * Every inbound request is bounded in size (checked on the length prefix, before buffering), in
 * concurrent requests per protocol for the whole node and per remote peer (beyond either: a typed
 * PEER_BUSY), in the time the peer has to deliver it (`readTimeoutMs`) and, separately, in the
 * time the handler has to answer it (`runTimeoutMs`), then validated by the handler's zod schema.
 * A request that fails any check gets `{ error: { code, message } }` and the stream is closed;
 * the caller's {@link Net.request} throws it as a CovenantError.
 *
 * @example
 * ```ts
 * const net = createNet({ privateKey: await loadOrCreateKey('data/node.key') })
 * await net.start()
 * await net.handle('/echo/1.0.0', {
 *   schema: z.object({ text: z.string() }),
 *   maxPerPeer: 2,
 *   handler: async (m, from, signal) => m,
 * })
 * const reply = await net.request(otherPeerId, '/echo/1.0.0', { text: 'hi' }, { timeoutMs: 2000 })
 * await net.stop()
 * ```
 */
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import type { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { keyId } from '../keys/index.ts'
import { createHost, type Host } from './host.ts'
import {
  DEFAULT_MAX_INBOUND_STREAMS,
  DEFAULT_MAX_REPLY_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './protocols.ts'
import {
  type InboundLoad,
  inboundCore,
  type RequestOptions,
  type RpcHandlerInit,
  replyResult,
  rpcInbound,
  rpcRequest,
} from './rpc.ts'
import { SESSION_STREAMS, SessionPool, sessionInbound, sessionProtocol } from './session.ts'

export type { Host } from './host.ts'
export * from './protocols.ts'
export { type RetryInit, retryTransient, TRANSIENT_CODES } from './retry.ts'
export { clearableTimeout, type InboundLoad, type RequestOptions, type RpcHandlerInit } from './rpc.ts'
export { SESSION_MAX_REQUEST_BYTES, SESSION_SUFFIX, sessionProtocol } from './session.ts'

export interface NetInit {
  privateKey: PrivateKey
  /** listen multiaddrs @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** multiaddrs ending in /p2p/<id> of peers to join through */
  bootstrap?: string[]
  /** run the Kademlia DHT (`provide`, `findProviders`) @default true */
  dht?: boolean
  /** called with a CovenantError each time an inbound request is refused or fails */
  onInboundError?: (protocol: string, err: CovenantError, from: string) => void
}

export interface Net {
  readonly peerId: string
  readonly libp2p: Host
  /** peer ids named by the bootstrap list */
  readonly bootstrapPeers: string[]
  start(): Promise<void>
  stop(): Promise<void>
  multiaddrs(): string[]
  handle<S extends z.ZodType, R>(protocol: string, init: RpcHandlerInit<S, R>): Promise<void>
  unhandle(protocol: string): Promise<void>
  /** what a protocol's inbound side holds now (zeros for one not handled) */
  inboundLoad(protocol: string): InboundLoad
  request<T = unknown>(
    peerId: string,
    protocol: string,
    msg: unknown,
    options?: RequestOptions<T>,
  ): Promise<T>
  /** merges addresses a peer announced into the peer store, so it can be dialled */
  addAddresses(peerId: string, addrs: string[]): Promise<void>
  /** drops what the peer store keeps about a peer this node is not connected to */
  forget(peerId: string): Promise<void>
  isConnected(peerId: string): boolean
  connectedPeers(): string[]
  /** round-trip time in ms; throws PEER_UNREACHABLE */
  ping(peerId: string, options?: { timeoutMs?: number }): Promise<number>
  /** announces this node as a DHT provider of `cid` */
  provide(cid: CID, options?: { timeoutMs?: number }): Promise<void>
  /** peer ids the DHT names as providers of `cid` (never this node) */
  findProviders(
    cid: CID,
    options?: { timeoutMs?: number; limit?: number; signal?: AbortSignal },
  ): Promise<string[]>
  onPeerConnect(cb: (peerId: string) => void): void
  onPeerDisconnect(cb: (peerId: string) => void): void
}

function toPeerId(id: string): PeerId {
  try {
    return peerIdFromString(id)
  } catch {
    throw new CovenantError('INVALID_INPUT', `not a peer id: ${id}`)
  }
}

/**
 * Peer ids this process has read: a session request names a peer the caller asks over and over,
 * and reading an id (base58, then the multihash) costs more than a lookup. Bounded.
 */
const readPeerIds = new Set<string>()
const READ_PEER_IDS_MAX = 4096

/** Throws INVALID_INPUT unless `id` is a peer id, as {@link toPeerId} does. */
function checkPeerId(id: string): void {
  if (readPeerIds.has(id)) return
  toPeerId(id)
  if (readPeerIds.size >= READ_PEER_IDS_MAX) readPeerIds.delete(readPeerIds.values().next().value!)
  readPeerIds.add(id)
}

/** Parses a bootstrap address; it must name its peer with /p2p/<id>. */
export function parsePeerAddr(addr: string): { peerId: string; addr: string } {
  let ma: ReturnType<typeof multiaddr>
  try {
    ma = multiaddr(addr)
  } catch {
    throw new CovenantError('INVALID_INPUT', `not a multiaddr: ${addr}`)
  }
  const peerId = ma.getComponents().findLast((c) => c.name === 'p2p')?.value
  if (peerId === undefined) throw new CovenantError('INVALID_INPUT', `${addr} does not end in /p2p/<peer id>`)
  return { peerId, addr }
}

export function createNet(init: NetInit): Net {
  const peerId = keyId(init.privateKey)
  const bootstrap = (init.bootstrap ?? []).map(parsePeerAddr).filter((b) => b.peerId !== peerId)
  let host: Host | undefined
  const connectCbs: Array<(id: string) => void> = []
  const loads = new Map<string, () => InboundLoad>()
  const disconnectCbs: Array<(id: string) => void> = []
  const sessions = new SessionPool(() => h())

  const h = (): Host => {
    if (host === undefined) throw new CovenantError('NOT_STARTED', 'the network is not started')
    return host
  }

  const addAddresses = async (id: string, addrs: string[]): Promise<void> => {
    if (id === peerId) return
    const multiaddrs = []
    for (const a of addrs.slice(0, 16)) {
      try {
        multiaddrs.push(multiaddr(a))
      } catch {
        // a peer's bad address is its problem; keep the good ones
      }
    }
    if (multiaddrs.length > 0) await h().peerStore.merge(toPeerId(id), { multiaddrs })
  }

  return {
    peerId,
    get libp2p() {
      return h()
    },
    bootstrapPeers: bootstrap.map((b) => b.peerId),

    async start() {
      host = await createHost({ privateKey: init.privateKey, listen: init.listen, dht: init.dht })
      host.addEventListener('peer:connect', (evt) => {
        for (const cb of connectCbs) cb(evt.detail.toString())
      })
      host.addEventListener('peer:disconnect', (evt) => {
        for (const cb of disconnectCbs) cb(evt.detail.toString())
      })
      await host.start()
      for (const b of bootstrap) {
        const withoutPeer = b.addr.replace(/\/p2p\/[^/]+$/, '')
        await addAddresses(b.peerId, [withoutPeer])
      }
    },

    async stop() {
      const current = host
      if (current === undefined) return
      sessions.close()
      await current.stop()
      host = undefined
      loads.clear()
    },

    multiaddrs() {
      return host === undefined ? [] : host.getMultiaddrs().map((m) => m.toString())
    },

    async handle(protocol, handlerInit) {
      const core = inboundCore(handlerInit, (err, from) => init.onInboundError?.(protocol, err, from))
      await h().handle(protocol, rpcInbound(core), {
        maxInboundStreams: handlerInit.maxInboundStreams ?? DEFAULT_MAX_INBOUND_STREAMS,
        maxOutboundStreams: 64,
      })
      if (handlerInit.sessions === true)
        await h().handle(sessionProtocol(protocol), sessionInbound(core), {
          maxInboundStreams: SESSION_STREAMS,
          maxOutboundStreams: SESSION_STREAMS,
        })
      loads.set(protocol, core.load)
    },

    async unhandle(protocol) {
      loads.delete(protocol)
      await h().unhandle(protocol)
      await h().unhandle(sessionProtocol(protocol))
    },

    inboundLoad(protocol) {
      return loads.get(protocol)?.() ?? { active: 0, peers: 0, maxFromOnePeer: 0 }
    },

    async request(id, protocol, msg, options = {}) {
      if (options.session === true) {
        checkPeerId(id)
        const sent = await sessions.request(id, protocol, msg, {
          timeoutMs: options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
          signal: options.signal,
          maxReplyBytes: options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES,
        })
        if (sent !== undefined) return replyResult(sent.envelope, id, protocol, options.schema)
      }
      return rpcRequest(h(), id, protocol, msg, options)
    },

    addAddresses,

    async forget(id) {
      if (host === undefined || id === peerId) return
      const peer = toPeerId(id)
      if (host.getConnections(peer).length > 0) return
      await host.peerStore.delete(peer).catch(() => {})
    },

    isConnected(id) {
      return host !== undefined && host.getConnections(toPeerId(id)).length > 0
    },

    connectedPeers() {
      return host === undefined ? [] : host.getPeers().map((p) => p.toString())
    },

    async ping(id, options = {}) {
      try {
        return await h().services.ping.ping(toPeerId(id), {
          signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
        })
      } catch (err) {
        throw new CovenantError('PEER_UNREACHABLE', `ping to ${id} failed`, { cause: err })
      }
    },

    async provide(cid, options = {}) {
      await h().contentRouting.provide(cid, { signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) })
    },

    async findProviders(cid, options = {}) {
      const limit = options.limit ?? 20
      const found: string[] = []
      const timeout = AbortSignal.timeout(options.timeoutMs ?? 5000)
      const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
      try {
        for await (const provider of h().contentRouting.findProviders(cid, { signal })) {
          const id = provider.id.toString()
          if (id === peerId || found.includes(id)) continue
          if (provider.multiaddrs.length > 0) await addAddresses(id, provider.multiaddrs.map(String))
          found.push(id)
          if (found.length >= limit) break
        }
      } catch (err) {
        // A timed-out search still returns what it found so far.
        if (!signal.aborted) throw CovenantError.from(err, 'PEER_UNREACHABLE')
      }
      return found
    },

    onPeerConnect(cb) {
      connectCbs.push(cb)
    },
    onPeerDisconnect(cb) {
      disconnectCbs.push(cb)
    },
  }
}
