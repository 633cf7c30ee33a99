/**
 * Block placement, transfer and repair. A block is held by the `replicas` (k) nodes closest
 * (XOR of sha256s, as `closestPeers`) to its CID among the live nodes whose covenant accepts
 * storing it. Holders announce themselves as DHT providers; any node can fetch any block by asking
 * the predicted holders first, then the DHT's providers, and every block is checked against its CID.
 *
 * Tags come only from signed manifests: a manifest's own, and for the block a manifest names, the
 * manifests handed along with it (or seen before it). A node takes a remote put only of a block it
 * should hold in its own view (within `holderSlack` ranks past k), or within a small per-peer
 * quota; refused content is remembered by its manifests, so it cannot come back without them.
 *
 * Repair: every `repairIntervalMs` (and soon after any peer dies, appears or changes covenant),
 * a node pages through the blocks it holds, `repairPageSize` at a time with the event loop free
 * between pages. For each block it computes the k desired holders, asks them whether they hold it,
 * and, if no desired holder closer than itself holds it, pushes it to those missing it. A node
 * that is not a desired holder drops its copy once all k desired holders confirmed theirs (this
 * also moves content off a node whose new covenant refuses it). A peer that refused a push, or
 * was full, is left out of placement for a while (doubling each time) instead of being re-sent
 * the same blocks every round.
 *
 * Lookups over the network are bounded node-wide (`maxLookups` running, `maxQueuedLookups`
 * waiting, PEER_BUSY beyond), each under one deadline, asking `lookupFanout` holders at a time;
 * a block just found missing is answered from memory for `missCacheMs`.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import { z } from 'zod'
import {
  assertBlock,
  type BlockStore,
  type CID,
  cidForBytes,
  MAX_BLOCK_BYTES,
  MAX_BLOCK_LABELS,
  type ManifestLabel,
  manifestLabel,
  normalizeTags,
  ownLabel,
  ownTags,
  parseCid,
  type StoredBlockInfo,
  verifyBlock,
} from '../content/index.ts'
import { mayServe, mayStore, type SignedCovenant } from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { Net } from '../net/index.ts'
import type { LivePeer, PeerTable } from '../peers/index.ts'
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
import { Lookups } from './lookups.ts'
import { Positions, PutQuota, Refusals } from './placement.ts'

/** Provider announcements start this long after a block is stored. */
const PROVIDE_DELAY_MS = 1000
/** At most this many provider announcements per second per node. */
const PROVIDES_PER_SECOND = 2
/** The longest a refusing peer is left out before it is asked again. */
const MAX_REFUSAL_BACKOFF_MS = 3_600_000

/** How storage behaves; every default is written here. */
export const storageOptionsSchema = z.strictObject({
  /** holders per block (k) @default 3 */
  replicas: z.number().int().min(1).max(20).default(3),
  /** repair loop period @default 5000 */
  repairIntervalMs: z.number().int().min(50).max(3_600_000).default(5000),
  /** per-peer transfer timeout @default 10000 */
  transferTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** ranks past k within which a node still takes a remote put (views of the network differ) @default 3 */
  holderSlack: z.number().int().min(0).max(64).default(3),
  /** blocks one peer may put here per window that this node would not hold otherwise @default 16 */
  putQuotaBlocks: z.number().int().min(0).max(1_000_000).default(16),
  /** bytes of such blocks one peer may put here per window @default 4194304 */
  putQuotaBytes: z
    .number()
    .int()
    .min(0)
    .max(2 ** 40)
    .default(4 * 1024 * 1024),
  /** the quota's window @default 600000 */
  putQuotaWindowMs: z.number().int().min(1000).max(86_400_000).default(600_000),
  /** blocks looked at per step of a repair round; the event loop runs between steps @default 256 */
  repairPageSize: z.number().int().min(1).max(MAX_HAS_CIDS).default(256),
  /** first wait before a peer that refused a push, or was full, is sent more; doubles up to 1 h @default 30000 */
  refusalBackoffMs: z.number().int().min(10).max(MAX_REFUSAL_BACKOFF_MS).default(30_000),
  /** deadline of one network lookup of a block, its wait for a turn included @default 10000 */
  lookupTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** predicted holders (then providers) a lookup asks at once @default 3 */
  lookupFanout: z.number().int().min(1).max(20).default(3),
  /** network lookups running at once, node-wide @default 8 */
  maxLookups: z.number().int().min(1).max(1024).default(8),
  /** lookups waiting for a turn; beyond, PEER_BUSY @default 64 */
  maxQueuedLookups: z.number().int().min(0).max(65_536).default(64),
  /** a block found missing is answered from memory this long @default 5000 */
  missCacheMs: z.number().int().min(0).max(600_000).default(5000),
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
  /**
   * Why this node will not keep a block besides its covenant (its publisher's storage is unpaid
   * past the notice period, say), or undefined; asked with the block and the signed manifests that
   * came with it. A refused block is answered COVENANT_REFUSED and placed on the next node.
   */
  refuses?: (cid: CID, bytes: Uint8Array, labels: readonly ManifestLabel[]) => string | undefined
}

export interface PutOptions {
  /** @default 'raw' */
  codec?: 'raw' | 'dag-cbor'
  /** signed manifests that name the block (DAG-CBOR bytes): its tags come from them */
  manifests?: Uint8Array[]
  /**
   * ask each holder first whether it holds the block already, and send it only to those that do
   * not: a block that several nodes store at once (an output every executor computed) costs the
   * later ones a `has`, not the bytes again @default false
   */
  unlessHeld?: boolean
}

export interface PutResult {
  cid: string
  /** peers that confirmed holding the block, closest first */
  holders: string[]
  /** how many holders were wanted (k) */
  wanted: number
  /** how many of `holders` were sent the bytes (the others held them already: `unlessHeld`) */
  sent: number
}

export interface GetResult {
  bytes: Uint8Array
  /** its tags, read from signed manifests (never from what a peer says) */
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
  /**
   * Stores a block on its k holders; resolves when they answered, with those that confirmed.
   * COVENANT_REFUSED if this node would not serve the block's tags: it does not pass it on.
   */
  put(bytes: Uint8Array, options?: PutOptions): Promise<PutResult>
  /**
   * Fetches a block: locally, then from the predicted holders, then from DHT providers, within
   * one deadline and the node's lookup bounds. Bytes that do not hash to the CID are discarded.
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

function storageMetrics(registry: Registry, lookups: Lookups) {
  const registers = [registry]
  return {
    blocksStored: new Gauge({ name: 'covenant_blocks_stored', help: 'blocks held by this node', registers }),
    bytesStored: new Gauge({ name: 'covenant_bytes_stored', help: 'bytes of blocks held', registers }),
    blockPuts: new Counter({
      name: 'covenant_block_puts_total',
      help: 'blocks offered for storing here, by result (stored, stored-on-quota, or the refusal code)',
      labelNames: ['result'],
      registers,
    }),
    repairPushes: new Counter({
      name: 'covenant_repair_pushes_total',
      help: 'replicas created by the repair loop',
      registers,
    }),
    lookups: new Counter({
      name: 'covenant_block_lookups_total',
      help: 'blocks looked up over the network, by result (found, not-found, missed-recently or the error code)',
      labelNames: ['result'],
      registers,
    }),
    lookupsActive: new Gauge({
      name: 'covenant_block_lookups_active',
      help: 'network lookups of blocks running, and waiting for a turn',
      labelNames: ['state'],
      registers,
      collect() {
        this.set({ state: 'running' }, lookups.active)
        this.set({ state: 'queued' }, lookups.queued)
      },
    }),
  }
}

const union = (...lists: string[][]): string[] => normalizeTags(lists.flat())

/** The first result that is not undefined, or undefined once every promise gave none. */
function firstFound<T>(attempts: Array<Promise<T | undefined>>): Promise<T | undefined> {
  return new Promise((resolve) => {
    let left = attempts.length
    if (left === 0) resolve(undefined)
    for (const attempt of attempts)
      void attempt.then((found) => {
        left--
        if (found !== undefined) resolve(found)
        else if (left === 0) resolve(undefined)
      })
  })
}

class Replication implements Storage {
  readonly options: z.output<typeof storageOptionsSchema>
  private readonly init: StorageComponents
  private readonly metrics: ReturnType<typeof storageMetrics>
  private readonly self: string
  private readonly replicas: number
  private readonly positions = new Positions()
  private readonly refusals: Refusals
  private readonly quota: PutQuota
  private readonly lookups: Lookups
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
    this.self = init.net.peerId
    this.replicas = options.replicas
    this.refusals = new Refusals({
      baseMs: options.refusalBackoffMs,
      maxMs: MAX_REFUSAL_BACKOFF_MS,
      maxEntries: 100_000,
    })
    this.quota = new PutQuota({
      blocks: options.putQuotaBlocks,
      bytes: options.putQuotaBytes,
      windowMs: options.putQuotaWindowMs,
    })
    this.lookups = new Lookups({
      max: options.maxLookups,
      queue: options.maxQueuedLookups,
      missMs: options.missCacheMs,
    })
    this.metrics = storageMetrics(init.registry, this.lookups)
  }

  async start(): Promise<void> {
    await this.init.net.handle(BLOCK_PROTOCOL, {
      schema: blockRequestSchema,
      maxBytes: MAX_BLOCK_MESSAGE_BYTES,
      maxInboundStreams: 8,
      maxConcurrent: 32,
      maxPerPeer: 8,
      // a 5 MiB block over a slow link needs more than the default to arrive
      readTimeoutMs: 30_000,
      handler: (msg, from) => this.onRequest(msg, from),
    })
    this.running = true
    this.unsubscribe = this.init.peers.onChange(() => this.repairSoon())
    this.timer = setInterval(() => void this.repair(), this.options.repairIntervalMs)
    this.timer.unref()
    void this.announceHeld()
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

  /** Why this node would refuse to store the block, or undefined if it accepts. */
  private refusal(tags: string[], size: number, alreadyHeld = false): CovenantError | undefined {
    const used = this.init.store.stats().bytes - (alreadyHeld ? size : 0)
    const d = mayStore(this.config(), { tags, size, usedBytes: used })
    if (d.ok) return undefined
    const full = this.config().store.enabled && mayServe(this.config(), { tags }).ok
    return new CovenantError(full ? 'STORAGE_FULL' : 'COVENANT_REFUSED', `this node ${d.reason}`)
  }

  /**
   * Nodes (this one included) whose covenant accepts the block, closest to the CID first, leaving
   * out peers that refused it, or were full, not long ago.
   */
  private ordered(cid: CID, tags: string[], size: number, held: boolean, live: LivePeer[]): string[] {
    const key = cid.toString()
    const ids: string[] = []
    if (this.refusal(tags, size, held) === undefined) ids.push(this.self)
    for (const p of live)
      if (!this.refusals.blocked(p.id, key) && mayStore(p.covenant.config, { tags, size, usedBytes: 0 }).ok)
        ids.push(p.id)
    return this.positions.rank(cid.bytes, ids)
  }

  /** Reads manifests handed with a block: each must be signed and name the block. */
  private labelsFor(cid: CID, manifests: readonly Uint8Array[]): ManifestLabel[] {
    return manifests.map((bytes) => {
      const label = manifestLabel(bytes)
      if (!label.block.equals(cid))
        throw new CovenantError(
          'INVALID_INPUT',
          `the manifest ${label.manifest} names ${label.block}, not ${cid}`,
        )
      return label
    })
  }

  /** Everything that says what a block is: its own tags, the labels given, the labels known here. */
  private tagsOf(cid: CID, bytes: Uint8Array, labels: readonly ManifestLabel[]): string[] {
    return union(ownTags(cid, bytes), this.init.store.tagsOf(cid), ...labels.map((l) => l.tags))
  }

  /** The manifests to hand on with a block: those given, then those recorded here. */
  private manifestsFor(cid: CID, labels: readonly ManifestLabel[]): Uint8Array[] {
    const seen = new Set(labels.map((l) => l.manifest.toString()))
    const out = labels.map((l) => l.bytes)
    for (const bytes of this.init.store.labelsOf(cid)) {
      const id = cidForBytes(bytes, 'dag-cbor').toString()
      if (!seen.has(id)) out.push(bytes)
      seen.add(id)
    }
    return out.slice(0, MAX_BLOCK_LABELS)
  }

  async put(bytes: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    if (bytes.length > MAX_BLOCK_BYTES)
      throw new CovenantError('BLOCK_TOO_LARGE', `a block is at most ${MAX_BLOCK_BYTES} bytes`)
    const cid = cidForBytes(bytes, options.codec ?? 'raw')
    const labels = this.labelsFor(cid, options.manifests ?? [])
    const tags = this.tagsOf(cid, bytes, labels)
    const serves = mayServe(this.config(), { tags })
    if (!serves.ok) {
      this.learn([...labels, ...ownLabel(cid, bytes)])
      throw new CovenantError('COVENANT_REFUSED', `this node ${serves.reason}`)
    }
    const ordered = this.ordered(cid, tags, bytes.length, this.init.store.has(cid), this.init.peers.live())
    if (ordered.length === 0)
      throw new CovenantError('COVENANT_REFUSED', 'no live node has a covenant that accepts this content')
    const manifests = this.manifestsFor(cid, labels)
    const holders: string[] = []
    let sent = 0
    let next = 0
    let lastError: CovenantError | undefined
    // Push to the k closest at once; each failure is replaced by the next closest willing node.
    let inFlight = 0
    const worker = async (): Promise<void> => {
      while (holders.length + inFlight < this.replicas && next < ordered.length) {
        const peer = ordered[next++]
        inFlight++
        try {
          if (options.unlessHeld !== true || !(await this.holds(peer, cid))) {
            await this.pushTo(peer, cid, bytes, manifests)
            sent++
          }
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
    return { cid: cid.toString(), holders, wanted: this.replicas, sent }
  }

  /** Whether `peer` (this node, or another asked with `has`) holds `cid` now. */
  private async holds(peer: string, cid: CID): Promise<boolean> {
    if (peer === this.self) return this.init.store.has(cid)
    return (await this.hasOn(peer, [cid.toString()]))?.[0] === true
  }

  /** Stores here or sends to `peer`; a refusal is remembered so the peer is not asked again soon. */
  private async pushTo(peer: string, cid: CID, bytes: Uint8Array, manifests: Uint8Array[]): Promise<void> {
    if (peer === this.self) {
      this.storeHere(cid, bytes, manifests)
      return
    }
    try {
      await this.init.net.request(
        peer,
        BLOCK_PROTOCOL,
        { type: 'put', cid: cid.toString(), bytes, manifests },
        { timeoutMs: this.options.transferTimeoutMs, schema: putReplySchema },
      )
    } catch (err) {
      const e = CovenantError.from(err)
      this.refusals.note(peer, cid.toString(), e)
      throw e
    }
  }

  /**
   * Stores a block here, its tags from its own bytes and signed manifests only. `from`, for a put
   * another node sent, must leave this node among the block's holders in its own view (or fit
   * that peer's quota). Refused content is remembered by its manifests, so it cannot come back
   * without them.
   */
  private storeHere(cid: CID, bytes: Uint8Array, manifests: readonly Uint8Array[], from?: string): void {
    assertBlock(cid, bytes)
    const labels = this.labelsFor(cid, manifests)
    const own = ownLabel(cid, bytes)
    const held = this.init.store.has(cid)
    const tags = this.tagsOf(cid, bytes, labels)
    const refusedHere = this.init.refuses?.(cid, bytes, labels)
    const refused =
      refusedHere === undefined
        ? this.refusal(tags, bytes.length, held)
        : new CovenantError('COVENANT_REFUSED', `this node ${refusedHere}`)
    if (refused !== undefined) {
      if (refused.code === 'COVENANT_REFUSED') this.learn([...labels, ...own])
      this.metrics.blockPuts.inc({ result: refused.code })
      throw refused
    }
    let result = 'stored'
    if (from !== undefined && !held && !this.isHolder(cid, tags, bytes.length)) {
      if (!this.quota.take(from, bytes.length)) {
        this.metrics.blockPuts.inc({ result: 'NOT_A_HOLDER' })
        throw new CovenantError(
          'NOT_A_HOLDER',
          `this node is not among the ${this.replicas + this.options.holderSlack} closest willing nodes to ${cid}, and ${from} used its quota`,
        )
      }
      result = 'stored-on-quota'
    }
    // the store records a manifest's label for the code it names, as it stores the manifest
    this.init.store.put(cid, bytes, { labels })
    this.metrics.blockPuts.inc({ result })
    this.lookups.forget(cid.toString())
    this.updateGauges()
    this.enqueueProvide(cid.toString())
  }

  /** True if this node ranks within k + slack of the willing nodes for the block, in its own view. */
  private isHolder(cid: CID, tags: string[], size: number): boolean {
    const ordered = this.ordered(cid, tags, size, false, this.init.peers.live())
    const rank = ordered.indexOf(this.self)
    return rank >= 0 && rank < this.replicas + this.options.holderSlack
  }

  /**
   * Records what signed manifests say about blocks; a block held here that turns out to carry a
   * tag this node refuses is dropped at once (unless pinned): refused content does not stay.
   */
  private learn(labels: readonly ManifestLabel[]): void {
    if (labels.length === 0) return
    for (const grown of this.init.store.label(labels)) {
      if (!grown.held || mayServe(this.config(), { tags: grown.tags }).ok) continue
      const cid = parseCid(grown.cid)
      if (this.init.store.info(cid)?.pinned) continue
      this.init.store.delete(cid)
      this.updateGauges()
      this.init.logger.info({ event: 'replica-refused', cid: grown.cid, tags: grown.tags })
    }
  }

  private async onRequest(msg: BlockRequest, from: string): Promise<unknown> {
    switch (msg.type) {
      case 'put': {
        this.storeHere(parseCid(msg.cid), msg.bytes, msg.manifests, from)
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
        return { bytes, manifests: this.init.store.labelsOf(cid) }
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
    const key = cid.toString()
    if (this.lookups.missed(key)) {
      this.metrics.lookups.inc({ result: 'missed-recently' })
      throw new CovenantError('BLOCK_NOT_FOUND', `${key} was looked for moments ago and not found`)
    }
    const timeoutMs = options.timeoutMs ?? this.options.lookupTimeoutMs
    const deadline = AbortSignal.timeout(timeoutMs)
    try {
      const found = await this.lookups.run(key, deadline, () => this.lookup(cid, deadline, timeoutMs))
      this.metrics.lookups.inc({ result: 'found' })
      return found
    } catch (err) {
      const e = CovenantError.from(err)
      this.metrics.lookups.inc({ result: e.code === 'BLOCK_NOT_FOUND' ? 'not-found' : e.code })
      throw e
    }
  }

  /** One network lookup: predicted holders, then DHT providers, all under `deadline`. */
  private async lookup(cid: CID, deadline: AbortSignal, timeoutMs: number): Promise<GetResult> {
    const tried = new Set<string>([this.self])
    const storers = this.init.peers
      .live()
      .filter((p) => p.covenant.config.store.enabled)
      .map((p) => p.id)
    const predicted = this.positions.rank(cid.bytes, storers).slice(0, this.replicas * 2)
    let found = await this.askInTurn(cid, predicted, tried, deadline)
    if (found !== undefined) return { ...found, source: 'peer' }
    if (!deadline.aborted) {
      const providers = await this.init.net
        .findProviders(cid, { timeoutMs, signal: deadline, limit: 8 })
        .catch(() => [])
      found = await this.askInTurn(
        cid,
        providers.filter((p) => !tried.has(p)),
        tried,
        deadline,
      )
      if (found !== undefined) return { ...found, source: 'dht' }
    }
    // Only an answer is remembered: every source asked said no. A lookup cut short by its
    // deadline says nothing about the block, only about a slow network.
    if (deadline.aborted)
      throw new CovenantError('BLOCK_NOT_FOUND', `no node answered with ${cid} within ${timeoutMs} ms`)
    this.lookups.noteMiss(cid.toString())
    throw new CovenantError('BLOCK_NOT_FOUND', `no node answered with ${cid}`)
  }

  /** Asks `peers` `lookupFanout` at a time; the first good copy wins and the others are abandoned. */
  private async askInTurn(
    cid: CID,
    peers: string[],
    tried: Set<string>,
    deadline: AbortSignal,
  ): Promise<Omit<GetResult, 'source'> | undefined> {
    const fanout = this.options.lookupFanout
    for (let i = 0; i < peers.length && !deadline.aborted; i += fanout) {
      const batch = peers.slice(i, i + fanout)
      const done = new AbortController()
      const signal = AbortSignal.any([deadline, done.signal])
      try {
        const found = await firstFound(
          batch.map((peer) => {
            tried.add(peer)
            return this.askFor(peer, cid, signal)
          }),
        )
        if (found !== undefined) return found
      } finally {
        done.abort()
      }
    }
    return undefined
  }

  /** One peer's copy, hash-checked, with its tags read from the signed manifests it came with. */
  private async askFor(
    peer: string,
    cid: CID,
    signal: AbortSignal,
  ): Promise<Omit<GetResult, 'source'> | undefined> {
    try {
      const reply = await this.init.net.request(
        peer,
        BLOCK_PROTOCOL,
        { type: 'get', cid: cid.toString() },
        {
          timeoutMs: this.options.transferTimeoutMs,
          signal,
          maxReplyBytes: MAX_BLOCK_MESSAGE_BYTES,
          schema: getReplySchema,
        },
      )
      if (!verifyBlock(cid, reply.bytes)) {
        this.init.logger.warn({ event: 'hash-mismatch', peer, cid: cid.toString() })
        return undefined
      }
      const labels = reply.manifests.flatMap((m) => {
        try {
          return this.labelsFor(cid, [m])
        } catch {
          return []
        }
      })
      return { bytes: reply.bytes, tags: this.tagsOf(cid, reply.bytes, labels) }
    } catch {
      return undefined
    }
  }

  async locate(cid: CID): Promise<string[]> {
    const deadline = AbortSignal.timeout(this.options.lookupTimeoutMs)
    return this.lookups.run(`holders ${cid}`, deadline, async () => {
      const peers = this.init.peers
        .live()
        .slice(0, 64)
        .map((p) => p.id)
      const answers = await Promise.all(peers.map((p) => this.hasOn(p, [cid.toString()], deadline)))
      const holders = peers.filter((_, i) => answers[i]?.[0] === true)
      if (this.init.store.has(cid)) holders.push(this.self)
      return this.positions.rank(cid.bytes, holders)
    })
  }

  private async hasOn(peer: string, cids: string[], signal?: AbortSignal): Promise<boolean[] | undefined> {
    try {
      const reply = await this.init.net.request(
        peer,
        BLOCK_PROTOCOL,
        { type: 'has', cids },
        { timeoutMs: 3000, signal, schema: hasReplySchema },
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
    const live = this.init.peers.live()
    const held = this.init.store.list(opts).map((info) => {
      const ordered = this.ordered(parseCid(info.cid), info.tags, info.size, true, live)
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

  /** Every block held, a page at a time in CID order, the event loop free between pages. */
  private async repairRound(): Promise<RepairResult> {
    const started = Date.now()
    const queue: StorageDescription['repair']['queue'] = []
    const totals: RepairResult = { checked: 0, pushed: 0, dropped: 0 }
    let after = ''
    while (this.running) {
      const page = this.init.store.list({ after, limit: this.options.repairPageSize })
      if (page.length === 0) break
      after = page[page.length - 1].cid
      await this.repairPage(page, totals, queue)
      await nextTurn()
    }
    this.lastRepair = { last: { at: Date.now(), ms: Date.now() - started, ...totals }, queue }
    return totals
  }

  private async repairPage(
    page: StoredBlockInfo[],
    totals: RepairResult,
    queue: StorageDescription['repair']['queue'],
  ): Promise<void> {
    const live = this.init.peers.live()
    const plans = page.map((info) => {
      const cid = parseCid(info.cid)
      const desired = this.ordered(cid, info.tags, info.size, true, live).slice(0, this.replicas)
      return { info, cid, desired }
    })
    // One `has` per desired holder for the whole page (a page is at most MAX_HAS_CIDS blocks).
    const perPeer = new Map<string, string[]>()
    for (const plan of plans)
      for (const p of plan.desired)
        if (p !== this.self) perPeer.set(p, [...(perPeer.get(p) ?? []), plan.info.cid])
    const holds = new Map<string, Map<string, boolean>>()
    await Promise.all(
      [...perPeer].map(async ([peer, cids]) => {
        const has = await this.hasOn(peer, cids)
        if (has !== undefined) holds.set(peer, new Map(cids.map((c, j) => [c, has[j]])))
      }),
    )
    for (const plan of plans) {
      if (!this.running) return
      totals.checked++
      const state = plan.desired.map((p) => (p === this.self ? true : holds.get(p)?.get(plan.info.cid)))
      const mine = plan.desired.indexOf(this.self)
      const firstHolder = state.indexOf(true)
      const coordinator = mine >= 0 ? firstHolder === mine : firstHolder === -1
      if (!coordinator && queue.length < MAX_REPAIR_QUEUE) {
        const waiting = plan.desired.filter((p, i) => p !== this.self && state[i] !== true)
        if (waiting.length > 0) queue.push({ cid: plan.info.cid, missing: waiting, action: 'wait' })
      }
      if (coordinator) {
        // A peer that refused earlier in this page is left for the next round, which places the
        // block past it.
        const missing = plan.desired.filter(
          (p, i) => p !== this.self && state[i] === false && !this.refusals.blocked(p, plan.info.cid),
        )
        if (missing.length === 0) continue
        const unpushed = new Set(missing)
        const bytes = this.init.store.get(plan.cid)
        if (bytes === undefined) continue
        const manifests = this.init.store.labelsOf(plan.cid)
        for (const peer of missing) {
          try {
            await this.pushTo(peer, plan.cid, bytes, manifests)
            unpushed.delete(peer)
            totals.pushed++
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
        totals.dropped++
        this.updateGauges()
        this.init.logger.info({ event: 'replica-dropped', cid: plan.info.cid })
      }
    }
  }

  /** Re-announces what this node holds (provider records live in memory on other nodes). */
  private async announceHeld(): Promise<void> {
    let after = ''
    while (this.running) {
      const page = this.init.store.list({ after, limit: 1000 })
      if (page.length === 0) return
      after = page[page.length - 1].cid
      for (const info of page) if (!this.enqueueProvide(info.cid)) return
      await nextTurn()
    }
  }

  /** Queues an announcement; false if the queue is full. */
  private enqueueProvide(cid: string): boolean {
    if (this.provideQueue.size >= 100_000) return false
    this.provideQueue.add(cid)
    if (!this.providing) void this.drainProvides()
    return true
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
