/**
 * The live peer table and covenant publication. On every new connection, and then every
 * `heartbeatMs`, a node sends each known peer a hello (its signed covenant, listen addresses and
 * up to 64 known peers) and gets the peer's hello back. A verified hello marks the peer alive; a
 * failed one (or a closed connection whose redial fails) marks it dead. A dead peer is therefore
 * noticed within `heartbeatMs + helloTimeoutMs` at worst, and within milliseconds when its
 * process dies (the TCP connection closes, the redial is refused).
 */
import type { Logger } from 'pino'
import { z } from 'zod'
import { type SignedCovenant, verifySignedCovenant } from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { Net } from '../net/index.ts'
import { HELLO_PROTOCOL, type Hello, helloSchema, MAX_HELLO_BYTES } from './hello.ts'

/** How a peer table behaves; every default is written here. */
export const peerTableOptionsSchema = z.strictObject({
  /** hello to every known peer this often @default 5000 */
  heartbeatMs: z.number().int().min(50).max(600_000).default(5000),
  /** a hello not answered in this time fails @default 2000 */
  helloTimeoutMs: z.number().int().min(50).max(60_000).default(2000),
  /** most peers kept @default 256 */
  maxPeers: z.number().int().min(1).max(4096).default(256),
  /** a peer dead for this long is forgotten (bootstrap peers never are) @default 600000 */
  forgetAfterMs: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 3_600_000)
    .default(600_000),
})
export type PeerTableOptions = z.input<typeof peerTableOptionsSchema>

/** What a peer table needs from the node. */
export interface PeerTableComponents {
  net: Pick<
    Net,
    | 'peerId'
    | 'bootstrapPeers'
    | 'multiaddrs'
    | 'handle'
    | 'unhandle'
    | 'request'
    | 'addAddresses'
    | 'onPeerConnect'
    | 'onPeerDisconnect'
  >
  /** this node's current signed covenant */
  covenant: () => SignedCovenant
  logger: Logger
}

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

/** A live peer: its covenant is known and verified. */
export type LivePeer = PeerEntry & { covenant: SignedCovenant }

/** Called when a peer becomes alive, dies, or publishes a new covenant version. */
export type PeerChangeListener = (peerId: string, entry: PeerEntry) => void

export interface PeerTable {
  /** the options in force, defaults filled in */
  readonly options: Readonly<z.output<typeof peerTableOptionsSchema>>
  /** answers hellos, greets the bootstrap peers and starts the heartbeat */
  start(): Promise<void>
  /** stops the heartbeat and answering hellos; waits for hellos in flight */
  stop(): Promise<void>
  /** every peer heard of, alive or not, never this node */
  list(): PeerEntry[]
  get(id: string): PeerEntry | undefined
  /** live peers with a verified covenant, not including this node */
  live(): LivePeer[]
  /** sends one hello to `id` now; true if it answered with a valid hello */
  hello(id: string): Promise<boolean>
  /** calls `listener` on every change; returns a function that stops calling it */
  onChange(listener: PeerChangeListener): () => void
}

/** Creates a peer table; `start()` it once the network is started. */
export function createPeerTable(components: PeerTableComponents, options: PeerTableOptions = {}): PeerTable {
  return new Peers(components, peerTableOptionsSchema.parse(options))
}

class Peers implements PeerTable {
  readonly options: z.output<typeof peerTableOptionsSchema>
  private readonly init: PeerTableComponents
  private readonly peers = new Map<string, PeerEntry>()
  private readonly inflight = new Map<string, Promise<boolean>>()
  private readonly listeners = new Set<PeerChangeListener>()
  private timer: NodeJS.Timeout | undefined
  private running = false

  constructor(init: PeerTableComponents, options: z.output<typeof peerTableOptionsSchema>) {
    this.init = init
    this.options = options
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
    this.timer = setInterval(() => void this.round(), this.options.heartbeatMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    this.running = false
    if (this.timer !== undefined) clearInterval(this.timer)
    await this.init.net.unhandle(HELLO_PROTOCOL).catch(() => {})
    await Promise.allSettled([...this.inflight.values()])
  }

  list(): PeerEntry[] {
    return [...this.peers.values()]
  }

  get(id: string): PeerEntry | undefined {
    return this.peers.get(id)
  }

  live(): LivePeer[] {
    return this.list().filter((p): p is LivePeer => p.alive && p.covenant !== undefined)
  }

  onChange(listener: PeerChangeListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private emitChange(id: string, entry: PeerEntry): void {
    for (const listener of this.listeners) listener(id, entry)
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
        timeoutMs: this.options.helloTimeoutMs,
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
      if (this.peers.size >= this.options.maxPeers) return undefined
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
      this.emitChange(from, entry)
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
      this.emitChange(id, entry)
    }
    const since = entry.lastSeen === 0 ? entry.firstSeen : entry.lastSeen
    if (Date.now() - since > this.options.forgetAfterMs && !this.init.net.bootstrapPeers.includes(id))
      this.peers.delete(id)
  }

  private async round(): Promise<void> {
    if (!this.running) return
    // Bootstrap peers are retried forever, so a network whose nodes start in any order joins up.
    const ids = new Set([...this.peers.keys(), ...this.init.net.bootstrapPeers])
    await Promise.allSettled([...ids].map((id) => this.hello(id)))
  }
}
