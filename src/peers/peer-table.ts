/**
 * The live peer table and covenant publication. On every new connection, and then every
 * `heartbeatMs`, a node sends each known peer a hello (its signed covenant, listen addresses and
 * up to 64 known peers) and gets the peer's hello back. A verified hello marks the peer alive; a
 * failed one (or a closed connection whose redial fails) marks it dead. A dead peer is therefore
 * noticed within `heartbeatMs + helloTimeoutMs` at worst, and within milliseconds when its
 * process dies (the TCP connection closes, the redial is refused).
 *
 * Only peers that proved themselves — a hello over an authenticated stream whose covenant is
 * signed by the sender — enter the table. Ids learned from gossip are claims: they wait in a
 * small candidate set (the oldest pushed out first) until they answer a hello of their own, so a
 * peer gossiping made-up ids can churn the candidates but never the table. A full table makes
 * room by forgetting its longest-dead peer; live verified peers are never pushed out.
 */
import type { Logger } from 'pino'
import { z } from 'zod'
import { type SignedCovenant, verifySignedCovenant } from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { Net } from '../net/index.ts'
import { HELLO_PROTOCOL, type Hello, helloSchema, MAX_HELLO_BYTES } from './hello.ts'

/** Candidates greeted at once: gossip can make a node dial addresses it was told, so not many. */
const CANDIDATE_HELLOS = 8

/** How a peer table behaves; every default is written here. */
export const peerTableOptionsSchema = z.strictObject({
  /** hello to every known peer this often @default 5000 */
  heartbeatMs: z.number().int().min(50).max(600_000).default(5000),
  /** a hello not answered in this time fails @default 2000 */
  helloTimeoutMs: z.number().int().min(50).max(60_000).default(2000),
  /** most verified peers kept @default 256 */
  maxPeers: z.number().int().min(1).max(4096).default(256),
  /** most gossiped, not yet verified, ids kept waiting for their hello @default 64 */
  maxCandidates: z.number().int().min(1).max(4096).default(64),
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
    | 'forget'
    | 'onPeerConnect'
    | 'onPeerDisconnect'
  >
  /** this node's current signed covenant */
  covenant: () => SignedCovenant
  logger: Logger
}

/** A peer that proved itself with a verified hello at least once. */
export interface PeerEntry {
  id: string
  addrs: string[]
  /** the newest verified covenant it presented */
  covenant: SignedCovenant
  alive: boolean
  /** ms timestamp of the last verified hello */
  lastSeen: number
  /** ms timestamp of when it first proved itself */
  firstSeen: number
}

/** A live peer: alive, with its verified covenant. */
export type LivePeer = PeerEntry

/** Called when a peer becomes alive, dies, or publishes a new covenant version. */
export type PeerChangeListener = (peerId: string, entry: PeerEntry) => void

export interface PeerTable {
  /** the options in force, defaults filled in */
  readonly options: Readonly<z.output<typeof peerTableOptionsSchema>>
  /** answers hellos, greets the bootstrap peers and starts the heartbeat */
  start(): Promise<void>
  /** stops the heartbeat and answering hellos; waits for hellos in flight */
  stop(): Promise<void>
  /** every verified peer, alive or not, never this node */
  list(): PeerEntry[]
  /** gossiped ids waiting to answer a hello, oldest first; never in {@link list} */
  candidates(): string[]
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

interface Candidate {
  addrs: string[]
  /** its hello is in flight */
  greeting: boolean
}

class Peers implements PeerTable {
  readonly options: z.output<typeof peerTableOptionsSchema>
  private readonly init: PeerTableComponents
  private readonly peers = new Map<string, PeerEntry>()
  /** gossiped ids not yet verified, in the order they were heard of */
  private readonly waiting = new Map<string, Candidate>()
  private candidateHellos = 0
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
      // A peer has one hello in flight to us at a time (two when both greet at once): a few peers
      // holding hello streams open must not take the slots every other peer's hello needs.
      maxPerPeer: 2,
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

  candidates(): string[] {
    return [...this.waiting.keys()]
  }

  get(id: string): PeerEntry | undefined {
    return this.peers.get(id)
  }

  live(): LivePeer[] {
    return this.list().filter((p) => p.alive)
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
    const peers = this.live()
      .filter((p) => p.addrs.length > 0)
      .slice(0, 64)
      .map((p) => ({ id: p.id, addrs: p.addrs.slice(0, 8) }))
    return { covenant: this.init.covenant(), addrs: this.init.net.multiaddrs().slice(0, 16), peers }
  }

  /**
   * Takes a hello received from `from`; it came over an authenticated stream, so `from` is sure,
   * and its covenant must be signed by `from`. Only here does a peer enter the table.
   */
  private accept(from: string, hello: Hello): void {
    const covenant = verifySignedCovenant(hello.covenant)
    if (covenant.peer !== from)
      throw new CovenantError(
        'INVALID_SIGNATURE',
        `covenant is signed by ${covenant.peer}, not the sender ${from}`,
      )
    if (from === this.init.net.peerId) return
    this.waiting.delete(from)
    let entry = this.peers.get(from)
    const changed = entry === undefined || !entry.alive || covenant.version > entry.covenant.version
    if (entry === undefined) {
      if (!this.makeRoom()) {
        // debug: a flood of new identities must not flood the log as well
        this.init.logger.debug({ event: 'peer-table-full', peer: from, size: this.peers.size })
        return
      }
      entry = { id: from, addrs: [], covenant, alive: true, lastSeen: 0, firstSeen: Date.now() }
      this.peers.set(from, entry)
    }
    if (hello.addrs.length > 0) {
      entry.addrs = hello.addrs.slice(0, 16)
      void this.init.net.addAddresses(from, entry.addrs).catch(() => {})
    }
    if (covenant.version >= entry.covenant.version) entry.covenant = covenant
    entry.alive = true
    entry.lastSeen = Date.now()
    if (changed) {
      this.init.logger.info({ event: 'peer-alive', peer: from, covenantVersion: covenant.version })
      this.emitChange(from, entry)
    }
    // Gossip: ids the sender knows are claims until they answer a hello themselves.
    for (const p of hello.peers) this.consider(p.id, p.addrs)
    this.greetCandidates()
  }

  /** Frees a place in a full table by forgetting its longest-dead peer; false if all are alive. */
  private makeRoom(): boolean {
    if (this.peers.size < this.options.maxPeers) return true
    let oldest: PeerEntry | undefined
    for (const p of this.peers.values())
      if (!p.alive && (oldest === undefined || p.lastSeen < oldest.lastSeen)) oldest = p
    if (oldest === undefined) return false
    this.peers.delete(oldest.id)
    void this.init.net.forget(oldest.id).catch(() => {})
    return true
  }

  /**
   * Adds a gossiped id to the candidates, pushing out the oldest one if they are full. A known
   * peer that is dead is a candidate too: it may be back at an address the gossip names.
   */
  private consider(id: string, addrs: string[]): void {
    if (id === this.init.net.peerId || this.peers.get(id)?.alive || this.waiting.has(id)) return
    if (this.waiting.size >= this.options.maxCandidates) {
      const [oldest] = this.waiting.keys()
      this.waiting.delete(oldest)
    }
    this.waiting.set(id, { addrs: addrs.slice(0, 8), greeting: false })
  }

  /** Greets waiting candidates, oldest first, a few at a time; each gets one chance. */
  private greetCandidates(): void {
    for (const [id, candidate] of this.waiting) {
      if (!this.running || this.candidateHellos >= CANDIDATE_HELLOS) return
      if (candidate.greeting) continue
      candidate.greeting = true
      this.candidateHellos++
      void (async () => {
        try {
          await this.init.net.addAddresses(id, candidate.addrs).catch(() => {})
          const ok = await this.hello(id)
          // What gossip claimed about an id that never answered is forgotten; a known or bootstrap
          // peer keeps its addresses, to be redialled.
          if (!ok && !this.peers.has(id) && !this.init.net.bootstrapPeers.includes(id))
            await this.init.net.forget(id).catch(() => {})
        } finally {
          this.waiting.delete(id)
          this.candidateHellos--
          this.greetCandidates()
        }
      })()
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
    if (
      Date.now() - entry.lastSeen > this.options.forgetAfterMs &&
      !this.init.net.bootstrapPeers.includes(id)
    )
      this.peers.delete(id)
  }

  private async round(): Promise<void> {
    if (!this.running) return
    // Bootstrap peers are greeted every round, so a network whose nodes start in any order joins up.
    const ids = new Set([...this.peers.keys(), ...this.init.net.bootstrapPeers])
    this.greetCandidates()
    await Promise.allSettled([...ids].map((id) => this.hello(id)))
  }
}
