/**
 * Block placement, transfer and repair. A block is held by the `replicas` (k) nodes closest
 * (closestPeers: XOR of sha256s) to its CID among the live nodes whose covenant accepts storing
 * it. Holders announce themselves as DHT providers; any node can fetch any block by asking the
 * predicted holders first, then the DHT's providers, and every block is checked against its CID.
 *
 * Repair: every `repairIntervalMs` (and soon after any peer dies, appears or changes covenant),
 * a node looks at each block it holds, computes the k desired holders, asks them whether they
 * hold it, and, if no desired holder closer than itself holds it, pushes it to those missing it.
 * A node that is not a desired holder drops its copy once all k desired holders confirmed theirs
 * (this also moves content off a node whose new covenant refuses it).
 */
import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import { z } from 'zod'
import {
  assertBlock,
  type BlockStore,
  type CID,
  cidForBytes,
  MAX_BLOCK_BYTES,
  normalizeTags,
  parseCid,
  TagsSchema,
  verifyBlock,
} from '../content/index.ts'
import { closestPeers, mayServe, mayStore, type SignedCovenant } from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { Net } from '../net/index.ts'
import type { PeerTable } from '../peers/index.ts'
import {
  BLOCK_PROTOCOL,
  type BlockRequest,
  blockRequestSchema,
  getReplySchema,
  hasReplySchema,
  MAX_BLOCK_MESSAGE_BYTES,
  MAX_HAS_CIDS,
  putReplySchema,
} from './block-protocol.ts'

/** Provider announcements start this long after a block is stored. */
const PROVIDE_DELAY_MS = 1000
/** At most this many provider announcements per second per node. */
const PROVIDES_PER_SECOND = 2

/** How storage behaves; every default is written here. */
export const storageOptionsSchema = z.strictObject({
  /** holders per block (k) @default 3 */
  replicas: z.number().int().min(1).max(20).default(3),
  /** repair loop period @default 5000 */
  repairIntervalMs: z.number().int().min(50).max(3_600_000).default(5000),
  /** per-peer transfer timeout @default 10000 */
  transferTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
})
export type StorageOptions = z.input<typeof storageOptionsSchema>

/** What storage needs from the node. */
export interface StorageComponents {
  net: Pick<Net, 'peerId' | 'handle' | 'unhandle' | 'request' | 'provide' | 'findProviders'>
  /** this node's blocks */
  store: BlockStore
  peers: Pick<PeerTable, 'live' | 'onChange'>
  /** this node's current signed covenant */
  covenant: () => SignedCovenant
  logger: Logger
  /** where storage's metrics go */
  registry: Registry
}

export interface PutResult {
  cid: string
  /** peers that confirmed holding the block, closest first */
  holders: string[]
  /** how many holders were wanted (k) */
  wanted: number
}

export interface GetResult {
  bytes: Uint8Array
  tags: string[]
  /** where the bytes came from */
  source: 'local' | 'peer' | 'dht'
}

export interface RepairResult {
  checked: number
  pushed: number
  dropped: number
}

/** Why this node holds a block, in the placement rule's terms (see `Storage.describe`). */
export type HeldWhy = { role: 'holder' | 'surplus'; rank: number } | { role: 'refused' } | { role: 'pinned' }

/** What storage tells about itself: a page of what it holds and why, and its repair state. */
export interface StorageDescription {
  blocks: number
  usedBytes: number
  held: Array<{ cid: string; size: number; tags: string[]; storedAt: number; why: HeldWhy }>
  repair: {
    last: { at: number; ms: number; checked: number; pushed: number; dropped: number } | null
    queue: Array<{ cid: string; missing: string[]; action: 'push' | 'wait' }>
  }
}

export interface Storage {
  /** the options in force, defaults filled in */
  readonly options: Readonly<z.output<typeof storageOptionsSchema>>
  /** answers the block protocol, announces what this node holds and starts the repair loop */
  start(): Promise<void>
  /** stops the repair loop and answering the block protocol; waits for a running round */
  stop(): Promise<void>
  /** Stores a block on its k holders; resolves when they answered, with those that confirmed. */
  put(bytes: Uint8Array, options?: { tags?: string[]; codec?: 'raw' | 'dag-cbor' }): Promise<PutResult>
  /**
   * Fetches a block: locally, then from the predicted holders, then from DHT providers. Bytes that
   * do not hash to the CID are discarded and the next source is tried.
   */
  get(cid: CID, options?: { timeoutMs?: number }): Promise<GetResult>
  /** Asks each live peer whether it holds `cid`; the holders (this node included), closest first. */
  locate(cid: CID): Promise<string[]>
  /** Runs one repair round now (or joins the running one). */
  repair(): Promise<RepairResult>
  /** A page of the blocks held (CID order, after `after`), each with why, and the repair state. */
  describe(opts?: { limit?: number; after?: string }): StorageDescription
}

/** Blocks the repair queue remembers from one round, at most. */
const MAX_REPAIR_QUEUE = 200

/** Creates block storage over a block store; `start()` it once the network and peers are started. */
export function createStorage(components: StorageComponents, options: StorageOptions = {}): Storage {
  return new Replication(components, storageOptionsSchema.parse(options))
}

function storageMetrics(registry: Registry) {
  const registers = [registry]
  return {
    blocksStored: new Gauge({ name: 'covenant_blocks_stored', help: 'blocks held by this node', registers }),
    bytesStored: new Gauge({ name: 'covenant_bytes_stored', help: 'bytes of blocks held', registers }),
    blockPuts: new Counter({
      name: 'covenant_block_puts_total',
      help: 'blocks stored locally, by result',
      labelNames: ['result'],
      registers,
    }),
    repairPushes: new Counter({
      name: 'covenant_repair_pushes_total',
      help: 'replicas created by the repair loop',
      registers,
    }),
  }
}

class Replication implements Storage {
  readonly options: z.output<typeof storageOptionsSchema>
  private readonly init: StorageComponents
  private readonly metrics: ReturnType<typeof storageMetrics>
  private readonly self: string
  private readonly replicas: number
  private timer: NodeJS.Timeout | undefined
  private soon: NodeJS.Timeout | undefined
  private repairing: Promise<RepairResult> | undefined
  private running = false
  private unsubscribe: (() => void) | undefined
  private readonly provideQueue = new Set<string>()
  private providing = false
  private lastRepair: StorageDescription['repair'] = { last: null, queue: [] }

  constructor(init: StorageComponents, options: z.output<typeof storageOptionsSchema>) {
    this.init = init
    this.options = options
    this.metrics = storageMetrics(init.registry)
    this.self = init.net.peerId
    this.replicas = options.replicas
  }

  async start(): Promise<void> {
    await this.init.net.handle(BLOCK_PROTOCOL, {
      schema: blockRequestSchema,
      maxBytes: MAX_BLOCK_MESSAGE_BYTES,
      maxInboundStreams: 8,
      maxConcurrent: 32,
      timeoutMs: 30_000,
      handler: (msg, from) => this.onRequest(msg, from),
    })
    this.running = true
    this.unsubscribe = this.init.peers.onChange(() => this.repairSoon())
    this.timer = setInterval(() => void this.repair(), this.options.repairIntervalMs)
    this.timer.unref()
    // Re-announce what this node holds: provider records live in memory on other nodes.
    for (const info of this.init.store.list({ limit: 10_000 })) this.enqueueProvide(info.cid)
    this.updateGauges()
  }

  async stop(): Promise<void> {
    this.running = false
    this.unsubscribe?.()
    if (this.timer !== undefined) clearInterval(this.timer)
    if (this.soon !== undefined) clearTimeout(this.soon)
    this.provideQueue.clear()
    await this.init.net.unhandle(BLOCK_PROTOCOL).catch(() => {})
    await this.repairing
  }

  private config() {
    return this.init.covenant().config
  }

  private usedBytes(): number {
    return this.init.store.stats().bytes
  }

  /** Why this node would refuse to store the block, or undefined if it accepts. */
  private refusal(tags: string[], size: number, alreadyHeld = false): CovenantError | undefined {
    const used = this.usedBytes() - (alreadyHeld ? size : 0)
    const d = mayStore(this.config(), { tags, size, usedBytes: used })
    if (d.ok) return undefined
    const full = this.config().store.enabled && mayServe(this.config(), { tags }).ok
    return new CovenantError(full ? 'STORAGE_FULL' : 'COVENANT_REFUSED', `this node ${d.reason}`)
  }

  /** Live nodes (this one included) whose covenant accepts the block, closest to the CID first. */
  private candidates(cid: CID, tags: string[], size: number): string[] {
    const ids: string[] = []
    if (this.refusal(tags, size, this.init.store.has(cid)) === undefined) ids.push(this.self)
    for (const p of this.init.peers.live()) {
      if (mayStore(p.covenant.config, { tags, size, usedBytes: 0 }).ok) ids.push(p.id)
    }
    return closestPeers(cid.bytes, ids, ids.length)
  }

  async put(
    bytes: Uint8Array,
    options: { tags?: string[]; codec?: 'raw' | 'dag-cbor' } = {},
  ): Promise<PutResult> {
    if (bytes.length > MAX_BLOCK_BYTES)
      throw new CovenantError('BLOCK_TOO_LARGE', `a block is at most ${MAX_BLOCK_BYTES} bytes`)
    const tags = normalizeTags(TagsSchema.parse(options.tags ?? []))
    const cid = cidForBytes(bytes, options.codec ?? 'raw')
    const ordered = this.candidates(cid, tags, bytes.length)
    if (ordered.length === 0)
      throw new CovenantError('COVENANT_REFUSED', 'no live node has a covenant that accepts this content')
    const holders: string[] = []
    let next = 0
    let lastError: CovenantError | undefined
    // Push to the k closest at once; each failure is replaced by the next closest willing node.
    let inFlight = 0
    const worker = async (): Promise<void> => {
      while (holders.length + inFlight < this.replicas && next < ordered.length) {
        const peer = ordered[next++]
        inFlight++
        try {
          await this.pushTo(peer, cid, bytes, tags)
          holders.push(peer)
        } catch (err) {
          lastError = CovenantError.from(err)
          this.init.logger.warn({ event: 'push-failed', peer, cid: cid.toString(), code: lastError.code })
        } finally {
          inFlight--
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.replicas, ordered.length) }, worker))
    if (holders.length === 0) throw lastError ?? new CovenantError('PEER_UNREACHABLE', 'no holder confirmed')
    const order = new Map(ordered.map((id, i) => [id, i]))
    holders.sort((a, b) => order.get(a)! - order.get(b)!)
    return { cid: cid.toString(), holders, wanted: this.replicas }
  }

  private async pushTo(peer: string, cid: CID, bytes: Uint8Array, tags: string[]): Promise<void> {
    if (peer === this.self) {
      this.storeLocal(cid, bytes, tags)
      return
    }
    await this.init.net.request(
      peer,
      BLOCK_PROTOCOL,
      { type: 'put', cid: cid.toString(), bytes, tags },
      { timeoutMs: this.options.transferTimeoutMs, schema: putReplySchema },
    )
  }

  private storeLocal(cid: CID, bytes: Uint8Array, tags: string[]): void {
    const refused = this.refusal(tags, bytes.length, this.init.store.has(cid))
    if (refused !== undefined) {
      this.metrics.blockPuts.inc({ result: refused.code })
      throw refused
    }
    assertBlock(cid, bytes)
    this.init.store.put(cid, bytes, { tags })
    this.metrics.blockPuts.inc({ result: 'stored' })
    this.updateGauges()
    this.enqueueProvide(cid.toString())
  }

  private async onRequest(msg: BlockRequest, from: string): Promise<unknown> {
    switch (msg.type) {
      case 'put': {
        this.storeLocal(parseCid(msg.cid), msg.bytes, normalizeTags(msg.tags))
        this.init.logger.debug({ event: 'block-stored', cid: msg.cid, from })
        return { stored: true }
      }
      case 'get': {
        const cid = parseCid(msg.cid)
        const bytes = this.init.store.get(cid)
        const info = this.init.store.info(cid)
        if (bytes === undefined || info === undefined)
          throw new CovenantError('BLOCK_NOT_FOUND', 'not held here')
        const d = mayServe(this.config(), { tags: info.tags })
        if (!d.ok) throw new CovenantError('COVENANT_REFUSED', `this node ${d.reason}`)
        return { bytes, tags: info.tags }
      }
      case 'has':
        return {
          has: msg.cids.map((text) => {
            try {
              return this.init.store.has(parseCid(text))
            } catch {
              return false
            }
          }),
        }
    }
  }

  async get(cid: CID, options: { timeoutMs?: number } = {}): Promise<GetResult> {
    const local = this.init.store.get(cid)
    if (local !== undefined) {
      const tags = this.init.store.info(cid)?.tags ?? []
      return { bytes: local, tags, source: 'local' }
    }
    const timeoutMs = options.timeoutMs ?? 5000
    const tried = new Set<string>([this.self])
    const ask = async (peer: string): Promise<GetResult | undefined> => {
      tried.add(peer)
      try {
        const reply = await this.init.net.request(
          peer,
          BLOCK_PROTOCOL,
          { type: 'get', cid: cid.toString() },
          { timeoutMs, maxReplyBytes: MAX_BLOCK_MESSAGE_BYTES, schema: getReplySchema },
        )
        if (!verifyBlock(cid, reply.bytes)) {
          this.init.logger.warn({ event: 'hash-mismatch', peer, cid: cid.toString() })
          return undefined
        }
        return { bytes: reply.bytes, tags: reply.tags, source: 'peer' }
      } catch {
        return undefined
      }
    }
    const storers = this.init.peers
      .live()
      .filter((p) => p.covenant.config.store.enabled)
      .map((p) => p.id)
    for (const peer of closestPeers(cid.bytes, storers, this.replicas * 2)) {
      const found = await ask(peer)
      if (found !== undefined) return found
    }
    const providers = await this.init.net.findProviders(cid, { timeoutMs, limit: 8 })
    for (const peer of providers) {
      if (tried.has(peer)) continue
      const found = await ask(peer)
      if (found !== undefined) return { ...found, source: 'dht' }
    }
    throw new CovenantError('BLOCK_NOT_FOUND', `no node answered with ${cid}`)
  }

  async locate(cid: CID): Promise<string[]> {
    const peers = this.init.peers
      .live()
      .slice(0, 64)
      .map((p) => p.id)
    const answers = await Promise.all(peers.map((p) => this.hasOn(p, [cid.toString()])))
    const holders = peers.filter((_, i) => answers[i]?.[0] === true)
    if (this.init.store.has(cid)) holders.push(this.self)
    return closestPeers(cid.bytes, holders, holders.length)
  }

  private async hasOn(peer: string, cids: string[]): Promise<boolean[] | undefined> {
    try {
      const reply = await this.init.net.request(
        peer,
        BLOCK_PROTOCOL,
        { type: 'has', cids },
        { timeoutMs: 3000, schema: hasReplySchema },
      )
      return reply.has.length === cids.length ? reply.has : undefined
    } catch {
      return undefined
    }
  }

  /** Schedules a repair round shortly (peer changes come in bursts). */
  private repairSoon(): void {
    if (!this.running || this.soon !== undefined) return
    this.soon = setTimeout(() => {
      this.soon = undefined
      void this.repair()
    }, 100)
    this.soon.unref()
  }

  repair(): Promise<RepairResult> {
    if (this.repairing !== undefined) return this.repairing
    const p = this.repairRound()
      .catch((err) => {
        this.init.logger.error({ event: 'repair-failed', err: CovenantError.from(err).message })
        return { checked: 0, pushed: 0, dropped: 0 }
      })
      .finally(() => {
        this.repairing = undefined
      })
    this.repairing = p
    return p
  }

  describe(opts: { limit?: number; after?: string } = {}): StorageDescription {
    const stats = this.init.store.stats()
    const held = this.init.store.list(opts).map((info) => {
      const ordered = this.candidates(parseCid(info.cid), info.tags, info.size)
      const rank = ordered.indexOf(this.self) + 1
      const why: HeldWhy = info.pinned
        ? { role: 'pinned' }
        : rank === 0
          ? { role: 'refused' }
          : { role: rank <= this.replicas ? 'holder' : 'surplus', rank }
      return { cid: info.cid, size: info.size, tags: info.tags, storedAt: info.createdAt, why }
    })
    return { blocks: stats.blocks, usedBytes: stats.bytes, held, repair: this.lastRepair }
  }

  private async repairRound(): Promise<RepairResult> {
    const started = Date.now()
    const queue: StorageDescription['repair']['queue'] = []
    const blocks = this.init.store.list({ limit: 10_000 })
    const plans = blocks.map((info) => {
      const cid = parseCid(info.cid)
      const ordered = this.candidates(cid, info.tags, info.size)
      return { info, cid, ordered, desired: ordered.slice(0, this.replicas) }
    })
    // Ask each desired holder about all its blocks at once, in batches.
    const perPeer = new Map<string, string[]>()
    for (const plan of plans)
      for (const p of plan.desired)
        if (p !== this.self) perPeer.set(p, [...(perPeer.get(p) ?? []), plan.info.cid])
    const holds = new Map<string, Map<string, boolean>>()
    await Promise.all(
      [...perPeer].map(async ([peer, cids]) => {
        const answers = new Map<string, boolean>()
        for (let i = 0; i < cids.length && this.running; i += MAX_HAS_CIDS) {
          const chunk = cids.slice(i, i + MAX_HAS_CIDS)
          const has = await this.hasOn(peer, chunk)
          if (has !== undefined) for (const [j, c] of chunk.entries()) answers.set(c, has[j])
        }
        holds.set(peer, answers)
      }),
    )
    let pushed = 0
    let dropped = 0
    for (const plan of plans) {
      if (!this.running) break
      const state = plan.desired.map((p) => (p === this.self ? true : holds.get(p)?.get(plan.info.cid)))
      const mine = plan.desired.indexOf(this.self)
      const firstHolder = state.indexOf(true)
      const coordinator = mine >= 0 ? firstHolder === mine : firstHolder === -1
      if (!coordinator && queue.length < MAX_REPAIR_QUEUE) {
        const waiting = plan.desired.filter((p, i) => p !== this.self && state[i] !== true)
        if (waiting.length > 0) queue.push({ cid: plan.info.cid, missing: waiting, action: 'wait' })
      }
      if (coordinator) {
        const missing = plan.desired.filter((p, i) => p !== this.self && state[i] === false)
        if (missing.length === 0) continue
        const unpushed = new Set(missing)
        const bytes = this.init.store.get(plan.cid)
        if (bytes === undefined) continue
        for (const peer of missing) {
          try {
            await this.pushTo(peer, plan.cid, bytes, plan.info.tags)
            unpushed.delete(peer)
            pushed++
            this.metrics.repairPushes.inc()
            this.init.logger.info({ event: 'repair-push', cid: plan.info.cid, peer })
          } catch (err) {
            this.init.logger.warn({
              event: 'repair-push-failed',
              cid: plan.info.cid,
              peer,
              code: CovenantError.from(err).code,
            })
          }
        }
        if (unpushed.size > 0 && queue.length < MAX_REPAIR_QUEUE)
          queue.push({ cid: plan.info.cid, missing: [...unpushed], action: 'push' })
      } else if (
        mine === -1 &&
        !plan.info.pinned &&
        plan.desired.length === this.replicas &&
        state.every((s) => s === true)
      ) {
        // k closer willing nodes confirmed their copies: this one is surplus (or now refused).
        this.init.store.delete(plan.cid)
        dropped++
        this.init.logger.info({ event: 'replica-dropped', cid: plan.info.cid })
      }
    }
    if (dropped > 0) this.updateGauges()
    const last = { at: Date.now(), ms: Date.now() - started, checked: plans.length, pushed, dropped }
    this.lastRepair = { last, queue }
    return { checked: plans.length, pushed, dropped }
  }

  private enqueueProvide(cid: string): void {
    if (this.provideQueue.size >= 100_000) return
    this.provideQueue.add(cid)
    if (!this.providing) void this.drainProvides()
  }

  // Provider records are the fallback path (predicted holders answer first), so announcing is
  // lazy: it starts a moment after a put and runs at a bounded rate, never competing with puts
  // for the CPU in bursts.
  private async drainProvides(): Promise<void> {
    this.providing = true
    try {
      await new Promise((r) => setTimeout(r, PROVIDE_DELAY_MS).unref())
      while (this.running && this.provideQueue.size > 0) {
        const [cid] = this.provideQueue
        this.provideQueue.delete(cid)
        const started = Date.now()
        try {
          await this.init.net.provide(parseCid(cid), { timeoutMs: 10_000 })
        } catch (err) {
          this.init.logger.debug({ event: 'provide-failed', cid, err: (err as Error).message })
        }
        const wait = 1000 / PROVIDES_PER_SECOND - (Date.now() - started)
        if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref())
      }
    } finally {
      this.providing = false
    }
  }

  private updateGauges(): void {
    const s = this.init.store.stats()
    this.metrics.blocksStored.set(s.blocks)
    this.metrics.bytesStored.set(s.bytes)
  }
}
