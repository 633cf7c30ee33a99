/**
 * The live peer table and covenant publication. On every new connection, and then every
 * `heartbeatMs`, a node sends each known peer a hello (its signed covenant, listen addresses and
 * up to 64 known peers) and gets the peer's hello back. A verified hello marks the peer alive; a
 * failed one (or a closed connection whose redial fails) marks it dead. A dead peer is therefore
 * noticed within `heartbeatMs + helloTimeoutMs` at worst, and within milliseconds when its
 * process dies (the TCP connection closes, the redial is refused).
 */
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { z } from 'zod'
import { type SignedCovenant, signedCovenantToJSON, verifySignedCovenant } from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import { HELLO_PROTOCOL, type Net } from '../net/index.ts'

const addrSchema = z.string().min(1).max(256)

/** What a hello carries, both ways. The covenant is checked by verifySignedCovenant after parsing. */
export const helloSchema = z.strictObject({
  covenant: z.unknown(),
  addrs: z.array(addrSchema).max(16),
  peers: z.array(z.strictObject({ id: z.string().max(128), addrs: z.array(addrSchema).max(8) })).max(64),
})
export type Hello = z.infer<typeof helloSchema>

/** Largest hello in bytes (a covenant is a few hundred bytes; 64 peers × 8 addresses fit). */
export const MAX_HELLO_BYTES = 192 * 1024

export interface PeerEntry {
  id: string
  addrs: string[]
  covenant?: SignedCovenant
  alive: boolean
  /** ms timestamp of the last verified hello */
  lastSeen: number
  /** ms timestamp of when it was first heard of */
  firstSeen: number
}

export interface PeerInfoJSON {
  id: string
  addrs: string[]
  alive: boolean
  lastSeen: number
  self: boolean
  covenant: ReturnType<typeof signedCovenantToJSON> | null
}

export interface PeerTableInit {
  net: Net
  covenant: () => SignedCovenant
  logger: Logger
  /** hello to every known peer this often @default 5000 */
  heartbeatMs?: number
  /** a hello not answered in this time fails @default 2000 */
  helloTimeoutMs?: number
  /** most peers kept @default 256 */
  maxPeers?: number
  /** a peer dead for this long is forgotten @default 600000 */
  forgetAfterMs?: number
}

export interface PeerTableEvents {
  /** a peer became alive, died, or published a new covenant version */
  change: [peerId: string, entry: PeerEntry]
}

export class PeerTable extends EventEmitter<PeerTableEvents> {
  readonly heartbeatMs: number
  readonly helloTimeoutMs: number
  private readonly init: PeerTableInit
  private readonly peers = new Map<string, PeerEntry>()
  private readonly inflight = new Map<string, Promise<boolean>>()
  private timer: NodeJS.Timeout | undefined
  private running = false

  constructor(init: PeerTableInit) {
    super()
    this.init = init
    this.heartbeatMs = init.heartbeatMs ?? 5000
    this.helloTimeoutMs = init.helloTimeoutMs ?? 2000
  }

  async start(): Promise<void> {
    const { net } = this.init
    await net.handle(HELLO_PROTOCOL, {
      schema: helloSchema,
      maxBytes: MAX_HELLO_BYTES,
      handler: async (msg, from) => {
        this.accept(from, msg)
        return this.ownHello()
      },
    })
    net.onPeerConnect((id) => {
      const entry = this.peers.get(id)
      if (entry === undefined || !entry.alive) void this.hello(id)
    })
    net.onPeerDisconnect((id) => {
      // Either a peer died or a connection was pruned: one hello (which redials) tells which.
      if (this.running && this.peers.get(id)?.alive) void this.hello(id)
    })
    this.running = true
    for (const id of net.bootstrapPeers) this.remember(id, [])
    void this.round()
    this.timer = setInterval(() => void this.round(), this.heartbeatMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    this.running = false
    if (this.timer !== undefined) clearInterval(this.timer)
    await Promise.allSettled([...this.inflight.values()])
  }

  /** This node's own entry first, then every other peer. */
  list(): PeerEntry[] {
    return [...this.peers.values()]
  }

  get(id: string): PeerEntry | undefined {
    return this.peers.get(id)
  }

  /** Live peers with a verified covenant, not including this node. */
  live(): PeerEntry[] {
    return this.list().filter((p) => p.alive && p.covenant !== undefined)
  }

  toJSON(): PeerInfoJSON[] {
    const self = this.init.net.peerId
    const own: PeerInfoJSON = {
      id: self,
      addrs: this.init.net.multiaddrs(),
      alive: true,
      lastSeen: Date.now(),
      self: true,
      covenant: signedCovenantToJSON(this.init.covenant()),
    }
    return [
      own,
      ...this.list().map((p) => ({
        id: p.id,
        addrs: p.addrs,
        alive: p.alive,
        lastSeen: p.lastSeen,
        self: false,
        covenant: p.covenant === undefined ? null : signedCovenantToJSON(p.covenant),
      })),
    ]
  }

  /** Sends one hello to `id` now; true if it answered with a valid hello. */
  hello(id: string): Promise<boolean> {
    const pending = this.inflight.get(id)
    if (pending !== undefined) return pending
    const p = this.doHello(id).finally(() => this.inflight.delete(id))
    this.inflight.set(id, p)
    return p
  }

  private async doHello(id: string): Promise<boolean> {
    if (!this.running || id === this.init.net.peerId) return false
    try {
      const reply = await this.init.net.request(id, HELLO_PROTOCOL, this.ownHello(), {
        timeoutMs: this.helloTimeoutMs,
        maxReplyBytes: MAX_HELLO_BYTES,
        schema: helloSchema,
      })
      this.accept(id, reply)
      return true
    } catch (err) {
      if (this.running) this.markDead(id, CovenantError.from(err))
      return false
    }
  }

  private ownHello(): Hello {
    const peers = this.list()
      .filter((p) => p.alive && p.addrs.length > 0)
      .slice(0, 64)
      .map((p) => ({ id: p.id, addrs: p.addrs.slice(0, 8) }))
    return { covenant: this.init.covenant(), addrs: this.init.net.multiaddrs().slice(0, 16), peers }
  }

  private remember(id: string, addrs: string[]): PeerEntry | undefined {
    if (id === this.init.net.peerId) return undefined
    let entry = this.peers.get(id)
    if (entry === undefined) {
      if (this.peers.size >= (this.init.maxPeers ?? 256)) return undefined
      entry = { id, addrs: [], alive: false, lastSeen: 0, firstSeen: Date.now() }
      this.peers.set(id, entry)
    }
    if (addrs.length > 0) {
      entry.addrs = addrs.slice(0, 16)
      void this.init.net.addAddresses(id, entry.addrs).catch(() => {})
    }
    return entry
  }

  /** Takes a hello received from `from` (it came over an authenticated stream, so `from` is sure). */
  private accept(from: string, hello: Hello): void {
    const covenant = verifySignedCovenant(hello.covenant)
    if (covenant.peer !== from)
      throw new CovenantError(
        'INVALID_SIGNATURE',
        `covenant is signed by ${covenant.peer}, not the sender ${from}`,
      )
    const entry = this.remember(from, hello.addrs)
    if (entry === undefined) return
    const changed = !entry.alive || entry.covenant === undefined || covenant.version > entry.covenant.version
    if (entry.covenant === undefined || covenant.version >= entry.covenant.version) entry.covenant = covenant
    entry.alive = true
    entry.lastSeen = Date.now()
    if (changed) {
      this.init.logger.info({ event: 'peer-alive', peer: from, covenantVersion: covenant.version })
      this.emit('change', from, entry)
    }
    // Gossip: learn peers the sender knows, and greet the new ones.
    for (const p of hello.peers) {
      if (p.id === this.init.net.peerId || this.peers.has(p.id)) continue
      const known = this.remember(p.id, p.addrs)
      if (known !== undefined) void this.hello(p.id)
    }
  }

  private markDead(id: string, err: CovenantError): void {
    const entry = this.peers.get(id)
    if (entry === undefined) return
    if (entry.alive) {
      entry.alive = false
      this.init.logger.info({ event: 'peer-dead', peer: id, reason: err.code })
      this.emit('change', id, entry)
    }
    const forgetAfter = this.init.forgetAfterMs ?? 600_000
    const since = entry.lastSeen === 0 ? entry.firstSeen : entry.lastSeen
    if (Date.now() - since > forgetAfter && !this.init.net.bootstrapPeers.includes(id)) this.peers.delete(id)
  }

  private async round(): Promise<void> {
    if (!this.running) return
    // Bootstrap peers are retried forever, so a network whose nodes start in any order joins up.
    const ids = new Set([...this.peers.keys(), ...this.init.net.bootstrapPeers])
    await Promise.allSettled([...ids].map((id) => this.hello(id)))
  }
}
