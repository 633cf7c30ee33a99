/**
 * The datastore service: datastores on the network. A namespace is held by the `replicas` (k) live
 * nodes closest to its id whose covenant stores (in this node's view: its peer table and itself);
 * the closest is its *primary*. The holder's state machine is `src/datastore`; this service is its
 * node side: the store protocol `/covenant/store/1.0.0`, the HTTP routes `/v1/stores…`, the
 * primary's commit, and the catch-up and hand-over loop. docs/apps.md tells the protocol.
 *
 * - **Commit.** Any node takes a commit and hands it to the primary (the next holder if the
 *   primary cannot be reached). The primary checks it and builds the next entry without applying
 *   it, offers the entry to every other live holder, and applies it itself only once each of them
 *   took it (one that cannot be reached in time is left to catch up) and they are a majority of the
 *   namespace's k holders with it (COMMIT_UNCONFIRMED otherwise). So the primary never holds an
 *   entry the other live holders lack, if it dies mid-commit the entry is on all live holders or
 *   on none, and an acknowledged entry is on a majority. A holder promises one entry per seq to
 *   the primary that offered it, for a while.
 * - **Catch-up.** Every holder compares heads with the other holders every sync interval and when
 *   the peer table changes, pulls entries it lacks (revocations are entries too), and when two
 *   histories fork adopts the branch a majority of the k holders hold where they part (else the
 *   longer; of two as long, the one whose head CID sorts first), so no acknowledged entry is
 *   dropped while the holders agree on who the k are.
 * - **Hand-over.** A node that holds a namespace gives the genesis to holders that lack it (they
 *   then pull the rest); a node that is no longer a holder drops its copy once every holder
 *   confirmed its head.
 */
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { Counter, Gauge, Histogram } from 'prom-client'
import { equals } from 'uint8arrays/equals'
import { z } from 'zod'
import {
  commitRoute,
  createStoreRoute,
  getKeyRoute,
  historyRoute,
  keyHistoryRoute,
  listKeysRoute,
  revocationsRoute,
  revokeRoute,
  storeInfoRoute,
} from '../../api/index.ts'
import { CanonicalCidSchema } from '../../caps/index.ts'
import { type Manifest, parseCid } from '../../content/index.ts'
import { closestPeers } from '../../covenant/index.ts'
import {
  BranchReplySchema,
  CidsReplySchema,
  type Commit,
  type CommitReply,
  CommitReplySchema,
  checkRead,
  createPromiseBook,
  createRevocationCommit,
  type Datastore,
  type DraftedCommit,
  decodeEntry,
  descriptorCid,
  EntriesReplySchema,
  entryCid,
  GetReplySchema,
  type HeadReply,
  HeadReplySchema,
  HistoryReplySchema,
  InfoReplySchema,
  KeyHistoryReplySchema,
  ListReplySchema,
  MAX_STORE_MESSAGE_BYTES,
  MAX_STORE_REPLY_BYTES,
  MAX_VALUE_BYTES,
  namespaceId,
  namespaceKeyBytes,
  OkReplySchema,
  openDatastore,
  PROMISE_MS,
  type PreparedCommit,
  parseCommit,
  RevocationsReplySchema,
  STORE_PAGE_BYTES,
  STORE_PROTOCOL,
  type StoreRequest,
  StoreRequestSchema,
  type VerifyRun,
  verifyDescriptor,
} from '../../datastore/index.ts'
import { bytesFieldsFromJSON, bytesFieldsToJSON, fromBase64, toBase64 } from '../../encoding/index.ts'
import { CovenantError, type ErrorCode } from '../../errors/index.ts'
import {
  type Certificate,
  createManifestCache,
  MAX_CLOCK_SKEW_MS,
  MAX_DEADLINE_AHEAD_MS,
  OutputSchema,
  type SignedRequest,
  type View,
  verifyCertificate,
  verifyCertificateSignatures,
} from '../../exec/index.ts'
import { checkJob, matchDispatch } from '../../jobs/index.ts'
import { route } from '../http.ts'
import { knownView } from '../known-view.ts'
import type { NodeComponents, NodeService, NodeServiceFactory } from '../service.ts'

/** Devnet faults of this service (node option `fault`, refused outside a devnet). */
export const STORE_FAULT_KINDS = [
  /** a primary dies (SIGKILL) as soon as the first other holder took a commit's entry */
  'store-crash-after-first-ack',
  /** a holder dies (SIGKILL) when a primary offers it an entry, before applying it */
  'store-crash-on-append',
  /**
   * in this node's commits (as gateway, primary and holder) every namespace's primary, when it is
   * another node, seems dead: a split view, so two nodes act as a namespace's primary at once.
   * Its peer table, its catch-up and its view of who the k holders are stay whole.
   */
  'store-primary-seems-dead',
  /**
   * this node never catches up on its own (its sync rounds and the nudges it gets do nothing): it
   * takes only what primaries offer it, so a copy it was left out of stays stale
   */
  'store-no-catch-up',
  /**
   * as a namespace's primary, once its check round found a majority able to take a commit's entry,
   * it never asks them to apply it: it offers the entry to check again every few seconds while it
   * lives, so the holders that checked it keep their promise of that seq to it
   */
  'store-stall-after-check',
] as const
export type StoreFaultKind = (typeof STORE_FAULT_KINDS)[number]

export interface DatastoreServiceOptions {
  /** what a `store-crash-*` fault does @default SIGKILL of this process */
  onCrash?: () => void
  /** how long a primary waits for a holder to take an entry @default 5000 */
  replicateTimeoutMs?: number
  /** how often every namespace held is compared with its other holders @default the storage repair interval */
  syncIntervalMs?: number
}

export type DatastoreServiceComponents = Pick<
  NodeComponents,
  | 'peerId'
  | 'dataDir'
  | 'covenant'
  | 'net'
  | 'peers'
  | 'storage'
  | 'getBlock'
  | 'http'
  | 'logger'
  | 'metrics'
  | 'fault'
  | 'stores'
>

/** The datastore file in a node's data directory. */
export const DATASTORE_FILE = 'datastore.db'

/** How long a gateway waits for the primary's answer to a commit: offers, catch-up and retries. */
const COMMIT_TIMEOUT_MS = 60_000
/** How long a read or a catch-up request to another holder may take. */
const READ_TIMEOUT_MS = 10_000
/** A primary tries a commit this many times when holders forked or refused it. */
const MAX_COMMIT_ATTEMPTS = 3
/** A holder that lacks at most this many entries is brought up to date by the primary inline. */
const MAX_INLINE_CATCH_UP = 64
/** Entries (and CIDs) asked for per catch-up request. */
const PULL_PAGE = 100

/**
 * The requests of a commit's path (a gateway's commit, a primary's offers, the heads it compares)
 * and a one-key read (`get`, `info`: a function's reads at fixed versions), whose replies are
 * small: they go on the holder's session of the store protocol (net/session.ts), one frame each
 * way instead of a new stream each. Pages of entries, keys and versions, whose replies may take
 * megabytes, keep their own streams, so they never hold up a commit's reply behind them.
 */
const ON_SESSION: ReadonlySet<StoreRequest['type']> = new Set([
  'commit',
  'check',
  'append',
  'head',
  'nudge',
  'info',
  'get',
])
/** The most a reply to one of {@link ON_SESSION} may take: one value of the largest size, with its envelope. */
const MAX_SESSION_REPLY_BYTES = MAX_VALUE_BYTES + 64 * 1024

/** Namespaces whose holders a node keeps worked out (see `holdersOf`). */
const HOLDERS_KEPT = 4096
/**
 * Entries offered for checking that a holder keeps until they are offered to be applied (see
 * `knowFunctionOfEntry`): at most this many, each at most this large (a few MiB in all).
 */
const OFFERED_KEPT = 64
const OFFERED_KEPT_BYTES = 64 * 1024

/** Errors after which a gateway asks the next holder: the one it asked is gone, busy, or new. */
const FAILOVER: ReadonlySet<ErrorCode> = new Set([
  'PEER_UNREACHABLE',
  'PEER_TIMEOUT',
  'PEER_BUSY',
  'NOT_STARTED',
  'NAMESPACE_NOT_FOUND',
])

/**
 * Errors after which a primary leaves a holder out of a commit (it catches up later), rather than
 * refusing the commit: it is gone, busy, new, behind, or not a holder in its own view.
 */
const LEFT_OUT: ReadonlySet<ErrorCode> = new Set([
  ...FAILOVER,
  'ENTRY_GAP',
  'ENTRY_PROMISED',
  'NOT_A_HOLDER',
  'COVENANT_REFUSED',
  'PROTOCOL_ERROR',
  'MESSAGE_TOO_LARGE',
  'INTERNAL',
])

/** The built-in datastore service; `createNode` adds it to every node. */
export function datastoreService(
  options: DatastoreServiceOptions = {},
): NodeServiceFactory<DatastoreServiceComponents> {
  return (c) => createDatastoreService(c, options)
}

/**
 * Which of two forked histories a holder adopts when no branch is held by a majority of the k
 * holders (so no entry of either was acknowledged): the longer, else the one whose head CID sorts first.
 */
function wins(a: { seq: number; cid: string }, b: { seq: number; cid: string }): boolean {
  return a.seq > b.seq || (a.seq === b.seq && a.cid < b.cid)
}

/** The first items of a page whose DAG-CBOR adds up to at most {@link STORE_PAGE_BYTES} (at least one). */
function withinPage<T>(items: readonly T[], size: (item: T) => number): { page: T[]; cut: boolean } {
  const page: T[] = []
  let total = 0
  for (const item of items) {
    const s = size(item)
    if (page.length > 0 && total + s > STORE_PAGE_BYTES) return { page, cut: true }
    page.push(item)
    total += s
  }
  return { page, cut: false }
}

const cborSize = (value: unknown): number => dagCbor.encode(value).length

/** Bytes that were base64 of DAG-CBOR, decoded; `what` names them in the refusal. */
function decodeBase64Cbor(text: string, what: string, code: ErrorCode): unknown {
  const bytes = fromBase64(text)
  if (bytes === undefined) throw new CovenantError(code, `${what} is not base64`)
  try {
    return dagCbor.decode(bytes)
  } catch (err) {
    throw new CovenantError(code, `${what} is not DAG-CBOR`, { cause: err })
  }
}

function parseNs(text: string): string {
  if (!CanonicalCidSchema.safeParse(text).success)
    throw new CovenantError('INVALID_INPUT', `not a namespace id: ${JSON.stringify(text.slice(0, 80))}`)
  return text
}

/** The function a certificate names (only that: exec's checks read the rest). */
const FunctionOfCertificateSchema = z.object({ request: z.object({ fn: z.string().max(128) }) })

/** The function a commit or entry names, if it is a function's. */
const FunctionProofSchema = z.object({
  kind: z.literal('function'),
  proof: z.object({ certificate: FunctionOfCertificateSchema }),
})

/**
 * How long after its time an entry is judged against the holder's view of the network: the longest
 * a request lives, with the clock skew a checker allows. After that, its executors may have left
 * every view, so a holder that replays it (catching up, or new) judges it by its signatures.
 */
export const FRESH_ENTRY_MS = MAX_DEADLINE_AHEAD_MS + MAX_CLOCK_SKEW_MS

/**
 * The one adapter between a holder and exec's certificate checks. A function entry less than
 * {@link FRESH_ENTRY_MS} old (a new commit, an entry a primary offers, one a holder catches up on
 * soon after) is checked against this node's view: exec's `verifyCertificate` with the function's
 * manifest (which must be known already: the check is synchronous) and the output, so its signers
 * must be the executors the selection rule picks. An older one is checked by its signatures alone
 * (`verifyCertificateSignatures`): it was checked against the views of the primary and of every
 * live holder when it was new, and a holder replaying it later cannot know who the executors were
 * then (docs/apps.md says what this trusts). Either way the output must hash to what the receipts
 * sign, and carry effects on `namespace` whose reads lie at or below the version the request fixed.
 * The datastore then applies the policy's k, q and vouchers, the grants and the MVCC check; the
 * quorum is the policy's business, so exec's own minimum is 1 here. A commit that carries a job's
 * record is keyed by the job's id, if the certified request is an attempt of exactly that record.
 */
export function verifyRunWithExec(c: {
  view: () => View
  manifest: (fn: string) => Manifest | undefined
  /** @default Date.now */
  now?: () => number
}): VerifyRun {
  const now = c.now ?? Date.now
  const refuse = (message: string): never => {
    throw new CovenantError('INVALID_CERTIFICATE', message)
  }
  return (proof, { namespace, at }) => {
    const output = OutputSchema.safeParse(proof.output)
    if (!output.success) return refuse(`malformed output: ${z.prettifyError(output.error)}`)
    // exec's checks parse the certificate (once): only the function is read before, to find its
    // manifest, and verifyCertificate then holds the certificate to that very function
    let checked: Certificate
    if (now() - at < FRESH_ENTRY_MS) {
      const fn = FunctionOfCertificateSchema.safeParse(proof.certificate)
      if (!fn.success) return refuse('malformed certificate')
      const manifest = c.manifest(fn.data.request.fn)
      if (manifest === undefined) return refuse(`function ${fn.data.request.fn} is unknown to this holder`)
      checked = verifyCertificate(proof.certificate, {
        view: c.view(),
        manifest,
        output: output.data,
        minQuorum: 1,
      }).certificate
      if (checked.request.fn !== fn.data.request.fn)
        return refuse('the certificate changed while it was checked')
    } else
      checked = verifyCertificateSignatures(proof.certificate, {
        output: output.data,
        minQuorum: 1,
      }).certificate
    const { request, id, receipts } = checked
    const effects = output.data.store?.find((e) => e.ns === namespace)
    if (effects === undefined) return refuse('the certified output does not write this namespace')
    const fixed = request.reads?.[namespace]
    const unfixed = effects.reads.find((r) => fixed === undefined || r.version > fixed)
    if (unfixed !== undefined)
      refuse(`the run read ${JSON.stringify(unfixed.key)} at a version the request did not fix`)
    return {
      fn: request.fn,
      // a job's attempt commits under the job's id, once its request is shown to ask what the job does
      request: proof.job === undefined ? id : jobOfAttempt(proof.job, request),
      effects,
      replicas: request.k,
      certifiers: receipts.map((r) => r.executor),
    }
  }
}

/** The id of the job `record` names, if `request` is an attempt of it (docs/jobs.md); JOB_INVALID if not. */
function jobOfAttempt(record: unknown, request: SignedRequest): string {
  const job = checkJob(record)
  matchDispatch(job, request)
  return job.id
}

function storeMetrics(c: Pick<NodeComponents, 'metrics'>, namespaces: () => number) {
  const registers = [c.metrics.registry]
  return {
    commits: new Counter({
      name: 'covenant_store_commits_total',
      help: 'commits this node applied as a primary, by outcome (applied, duplicate or error code)',
      labelNames: ['outcome'],
      registers,
    }),
    appends: new Counter({
      name: 'covenant_store_appends_total',
      help: 'entries offered to this node by a primary, by outcome (checked, applied, duplicate or error code)',
      labelNames: ['outcome'],
      registers,
    }),
    stages: new Histogram({
      name: 'covenant_store_commit_stage_seconds',
      help: 'where the commits this node applied as a primary spent their time: waiting for the namespace lock, building the entry (prepare), every holder checking it, this one meanwhile (check), the other holders applying it (append), applying it here (apply)',
      labelNames: ['kind', 'stage'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    pulled: new Counter({
      name: 'covenant_store_pulled_entries_total',
      help: 'entries this node pulled from other holders while catching up',
      registers,
    }),
    truncations: new Counter({
      name: 'covenant_store_truncations_total',
      help: 'times this node left a forked history for the winning one',
      registers,
    }),
    dropped: new Counter({
      name: 'covenant_store_dropped_total',
      help: 'namespaces this node handed over and dropped',
      registers,
    }),
    held: new Gauge({
      name: 'covenant_store_namespaces',
      help: 'namespaces held by this node',
      registers,
      collect() {
        this.set(namespaces())
      },
    }),
  }
}

async function createDatastoreService(
  c: DatastoreServiceComponents,
  options: DatastoreServiceOptions,
): Promise<NodeService> {
  const { net, logger } = c
  const self = c.peerId
  const replicas = c.storage.options.replicas
  const replicateTimeoutMs = options.replicateTimeoutMs ?? 5000
  const syncIntervalMs = options.syncIntervalMs ?? c.storage.options.repairIntervalMs
  const fault = (STORE_FAULT_KINDS as readonly string[]).includes(c.fault ?? '')
    ? (c.fault as StoreFaultKind)
    : undefined
  const crash =
    options.onCrash ??
    (() => {
      logger.fatal({ event: 'store-crash-fault', fault })
      process.kill(process.pid, 'SIGKILL')
    })

  // The certificate check is synchronous (it runs inside the datastore's transaction), so the
  // manifests it needs are fetched before and kept here.
  const manifests = new Map<string, Manifest>()
  const fetchManifest = createManifestCache({ getBlock: (cid) => c.getBlock(parseCid(cid)) })
  // Fresh function entries are judged against this node's view with the peers it knows but
  // believes dead kept in it, as dead (known-view.ts): a holder that takes or catches up on an
  // entry after one of its signers died (a primary killed mid-commit may have been one) does not
  // refuse it until it is old.
  const known = knownView(c)
  const store: Datastore = openDatastore({
    path: join(c.dataDir, DATASTORE_FILE),
    verifyRun: verifyRunWithExec({ view: known.view, manifest: (fn) => manifests.get(fn) }),
  })
  let heldCount = 0
  const countHeld = (): number => {
    heldCount = 0
    for (let after = ''; ; ) {
      const page = store.namespaces({ after, limit: 1000 })
      heldCount += page.length
      if (page.length < 1000) return heldCount
      after = page[page.length - 1]
    }
  }
  const metrics = storeMetrics(c, () => (running ? countHeld() : heldCount))

  /** Fetches the manifest a function commit or entry names, so its synchronous check can find it. */
  async function knowFunctionOf(value: unknown): Promise<string | undefined> {
    const parsed = FunctionProofSchema.safeParse(value)
    if (!parsed.success) return undefined
    const fn = parsed.data.proof.certificate.request.fn
    await knowManifest(fn)
    return fn
  }

  async function knowManifest(fn: string): Promise<void> {
    if (manifests.has(fn)) return
    try {
      const manifest = await fetchManifest(fn)
      if (manifests.size >= 1024) manifests.delete(manifests.keys().next().value as string)
      manifests.set(fn, manifest)
    } catch {
      // an unknown function: the check refuses the commit with INVALID_CERTIFICATE
    }
  }

  /**
   * The entry a primary offered each namespace to check, with the function it names: offered
   * again to be applied (the same bytes), it is not decoded again to find the function.
   */
  const offeredToCheck = new Map<string, { bytes: Uint8Array; fn: string | undefined }>()

  async function knowFunctionOfEntry(bytes: Uint8Array, ns?: string): Promise<string | undefined> {
    const offered = ns === undefined ? undefined : offeredToCheck.get(ns)
    if (offered !== undefined && equals(offered.bytes, bytes)) {
      if (offered.fn !== undefined) await knowManifest(offered.fn)
      return offered.fn
    }
    let entry: unknown
    try {
      // read as the check will read it, which then finds it read (`readEntry`)
      entry = store.readEntry(bytes)
    } catch {
      return undefined // the datastore refuses the entry itself, typed
    }
    return knowFunctionOf(entry)
  }

  // ── who holds what ──────────────────────────────────────────────────────────────────────────

  const storesHere = (): boolean => c.covenant().config.store.enabled

  // A namespace's holders change only when the peer table or this node's covenant does, yet every
  // commit asked for them on each holder at each round (closestPeers hashes every peer's id): they
  // are kept per namespace until either changes (the peer table's onChange clears them).
  const holdersKept = new Map<string, { live: readonly string[]; known: readonly string[] }>()
  let holdersUnder: unknown
  const forgetHolders = c.peers.onChange(() => holdersKept.clear())

  // A restarted node's peer table starts empty: counting only the peers it has heard again, it
  // would be a namespace's only holder (k = 1) and acknowledge commits alone on a stale copy. It
  // counts the other holders it kept (`keepHolders`) that its table does not list yet, as dead
  // ones, for as long as its table keeps a dead peer (`forgetAfterMs`): then as its table would,
  // it forgets those it never heard from.
  const rememberedUntil = Date.now() + c.peers.options.forgetAfterMs
  let forgetRemembered: NodeJS.Timeout | undefined

  function placement(ns: string): { live: readonly string[]; known: readonly string[] } {
    const covenant = c.covenant()
    if (holdersUnder !== covenant) {
      holdersKept.clear()
      holdersUnder = covenant
    }
    let kept = holdersKept.get(ns)
    if (kept === undefined) {
      const live = storesHere() ? [self] : []
      const known = [...live]
      for (const p of c.peers.list())
        if (p.covenant.config.store.enabled) {
          known.push(p.id)
          if (p.alive) live.push(p.id)
        }
      const held = storesHere() && store.namespace(ns) !== undefined
      const remembered = held ? store.holders(ns) : []
      if (Date.now() < rememberedUntil)
        for (const id of remembered) if (id !== self && c.peers.get(id) === undefined) known.push(id)
      const key = namespaceKeyBytes(ns)
      kept = { live: closestPeers(key, live, replicas), known: closestPeers(key, known, replicas) }
      const others = kept.known.filter((p) => p !== self)
      if (held && (others.length !== remembered.length || others.some((p, i) => p !== remembered[i])))
        store.keepHolders(ns, others)
      if (holdersKept.size >= HOLDERS_KEPT) holdersKept.delete(holdersKept.keys().next().value as string)
      holdersKept.set(ns, kept)
    }
    return kept
  }

  /** The namespace's holders in this node's view, the primary first. */
  function holdersOf(ns: string): string[] {
    return [...placement(ns).live]
  }

  /**
   * The namespace's *k* holders a commit needs a majority of: the `replicas` closest among this
   * node and every storing peer its table knows, dead ones too (a table forgets a peer dead for
   * 10 minutes). A holder that died stays one of the k, so a primary that lost sight of the
   * others cannot commit alone; in a network with fewer storing nodes than `replicas`, k is their
   * number (a one-node devnet commits alone, a two-node one needs both).
   */
  function quorumOf(ns: string): { holders: readonly string[]; majority: number } {
    const holders = placement(ns).known
    return { holders, majority: Math.floor(holders.length / 2) + 1 }
  }

  /** The holders a commit goes to in this node's view: all of them, but for a devnet fault. */
  function commitHoldersOf(ns: string): string[] {
    const holders = holdersOf(ns)
    if (fault !== 'store-primary-seems-dead') return holders
    const primary = quorumOf(ns).holders[0]
    return primary === self ? holders : holders.filter((p) => p !== primary)
  }

  function assertHolder(ns: string, from?: string): void {
    if (!storesHere()) throw new CovenantError('COVENANT_REFUSED', 'this node does not store namespaces')
    const holders = from === undefined ? holdersOf(ns) : commitHoldersOf(ns)
    if (!holders.includes(self)) throw new CovenantError('NOT_A_HOLDER', `this node is not a holder of ${ns}`)
    if (from !== undefined && !holders.includes(from))
      throw new CovenantError('NOT_A_HOLDER', `${from} is not a holder of ${ns} in this node's view`)
  }

  /** The CID of this holder's entry at `seq` (the genesis descriptor's at 0), if it has one. */
  function cidAt(ns: string, seq: number): string | null {
    const info = store.namespace(ns)
    if (info === undefined || seq > info.head.seq) return null
    if (seq === 0) return descriptorCid(info.genesis)
    return store.cidsSince(ns, seq - 1, 1)[0]?.cid ?? null
  }

  function headReply(ns: string, at?: number): HeadReply {
    const head = store.head(ns)
    return { head, cidAt: at === undefined || at === head.seq ? head.cid : cidAt(ns, at) }
  }

  // ── one entry per seq: what a holder promised a primary ──────────────────────────────────

  /**
   * Per namespace, the entry this node last checked, took or offered as primary (to itself), at
   * which seq, for which primary; a fence (no entry) while a fork is decided (`branch`).
   */
  const promises = createPromiseBook({
    self,
    alive: (peer) => c.peers.get(peer)?.alive === true,
    max: HOLDERS_KEPT,
  })
  const promiseAt = promises.at
  const keepPromise = promises.keep
  const promise = promises.promise

  /**
   * What this node holds and promised at `seq` (`branch`). Holding neither, it promises `asker`
   * to take no other primary's entry there for a while: the asker is deciding a fork on the
   * answers, which must not change under it.
   */
  function branchReply(
    ns: string,
    seq: number,
    asker: string,
  ): { cid: string | null; promised: string | null } {
    if (store.namespace(ns) === undefined)
      throw new CovenantError('NAMESPACE_NOT_FOUND', `this node does not hold ${ns}`)
    const cid = cidAt(ns, seq)
    const p = promiseAt(ns, seq)
    // (it replaces a promise at a lower seq: the answers a fork is decided on come first)
    if (cid === null && p === undefined) promise(ns, { seq, cid: '', id: '' }, asker)
    return { cid, promised: p === undefined || p.cid === '' ? null : p.cid }
  }

  // ── one lock per namespace: a primary's commit, an entry taken, a page pulled, a truncation ──

  const locks = new Map<string, Promise<void>>()
  async function locked<T>(ns: string, body: () => Promise<T> | T): Promise<T> {
    const previous = locks.get(ns) ?? Promise.resolve()
    let release = (): void => {}
    const mine = new Promise<void>((r) => {
      release = r
    })
    const tail = previous.then(() => mine)
    locks.set(ns, tail)
    await previous
    try {
      return await body()
    } finally {
      release()
      if (locks.get(ns) === tail) locks.delete(ns)
    }
  }

  function ask<T>(
    peer: string,
    msg: StoreRequest,
    schema: z.ZodType<T>,
    timeoutMs = READ_TIMEOUT_MS,
  ): Promise<T> {
    // DAG-CBOR has no `undefined`: an option not given is a field not sent
    const sent = Object.fromEntries(Object.entries(msg).filter(([, v]) => v !== undefined))
    const session = ON_SESSION.has(msg.type)
    return net.request(peer, STORE_PROTOCOL, sent, {
      timeoutMs,
      maxReplyBytes: session ? MAX_SESSION_REPLY_BYTES : MAX_STORE_REPLY_BYTES,
      schema,
      session,
    })
  }

  /** A holder's head, `'missing'` if it does not hold the namespace, undefined if it did not answer. */
  async function headOf(peer: string, ns: string, at?: number): Promise<HeadReply | 'missing' | undefined> {
    try {
      return await ask(peer, { type: 'head', ns, at }, HeadReplySchema)
    } catch (err) {
      return CovenantError.from(err).code === 'NAMESPACE_NOT_FOUND' ? 'missing' : undefined
    }
  }

  // ── the primary ─────────────────────────────────────────────────────────────────────────────

  type Offer = {
    peer: string
    outcome: 'accepted' | 'left-out' | 'forked' | 'refused'
    error?: CovenantError
  }

  function classify(peer: string, err: unknown): Offer {
    const error = CovenantError.from(err)
    if (error.code === 'ENTRY_FORK') return { peer, outcome: 'forked', error }
    if (LEFT_OUT.has(error.code)) return { peer, outcome: 'left-out', error }
    return { peer, outcome: 'refused', error }
  }

  /**
   * Brings a holder that lacks the namespace or a few entries up to `upTo`: the genesis, then the
   * entries it lacks, if its head is on this node's history. False if it cannot be done inline.
   */
  async function bringUp(peer: string, ns: string, upTo: number): Promise<boolean> {
    let theirs = await headOf(peer, ns)
    if (theirs === undefined) return false
    if (theirs === 'missing') {
      const info = store.namespace(ns)
      if (info === undefined) return false
      try {
        theirs = await ask(peer, { type: 'create', genesis: info.genesis }, HeadReplySchema)
      } catch {
        return false
      }
    }
    const from = theirs.head.seq
    if (from > upTo || upTo - from > MAX_INLINE_CATCH_UP || cidAt(ns, from) !== theirs.head.cid) return false
    for (const e of from < upTo ? store.entriesSince(ns, from, upTo - from) : []) {
      try {
        await ask(peer, { type: 'append', ns, entry: e.bytes }, HeadReplySchema, replicateTimeoutMs)
      } catch {
        return false
      }
    }
    return true
  }

  /**
   * Offers an entry to a holder: `check` asks whether it would apply it (after bringing a holder
   * that lacks the namespace or a few entries up to date), `append` has it applied.
   */
  async function offer(
    phase: 'check' | 'append',
    peer: string,
    ns: string,
    seq: number,
    entry: Uint8Array,
  ): Promise<Offer> {
    const send = () => ask(peer, { type: phase, ns, entry }, z.unknown(), replicateTimeoutMs)
    try {
      await send()
      return { peer, outcome: 'accepted' }
    } catch (err) {
      const code = CovenantError.from(err).code
      if (
        phase === 'append' ||
        (code !== 'ENTRY_GAP' && code !== 'NAMESPACE_NOT_FOUND') ||
        !(await bringUp(peer, ns, seq - 1))
      )
        return classify(peer, err)
      try {
        await send()
        return { peer, outcome: 'accepted' }
      } catch (again) {
        return classify(peer, again)
      }
    }
  }

  /** How many of the k holders took an entry: those of `offers` that accepted, and this node. */
  function counted(offers: readonly Offer[], quorum: { holders: readonly string[] }): number {
    let n = quorum.holders.includes(self) ? 1 : 0
    for (const o of offers) if (o.outcome === 'accepted' && quorum.holders.includes(o.peer)) n++
    return n
  }

  /** COMMIT_UNCONFIRMED: `others` of the k holders besides this one took the entry at `seq`. */
  function unconfirmed(
    ns: string,
    seq: number,
    others: number,
    quorum: { holders: readonly string[]; majority: number },
    why: string,
  ): CovenantError {
    const k = quorum.holders.length
    logger.warn({ event: 'store-commit-unconfirmed', ns, seq, others, k, why })
    return new CovenantError(
      'COMMIT_UNCONFIRMED',
      `the entry at seq ${seq} reached ${others} other of the ${k} holders of ${ns}, and ${quorum.majority} of them must take it: ${why}`,
      { details: { seq, others, k, majority: quorum.majority } },
    )
  }

  /**
   * Applies a commit as the namespace's primary, in two rounds over the other live holders: each
   * checks the entry (nothing applied anywhere yet), then each that would take it applies it, and
   * this node applies it last. A holder that would refuse the entry refuses the commit, with its
   * reason, before anything is applied; a holder whose history forked makes this node adopt the
   * winning history and try again; a holder that cannot be reached in time is left out and
   * catches up later. Fewer than a majority of the k holders able to take it, or having applied
   * it, fail the commit with COMMIT_UNCONFIRMED, this node applying nothing.
   */
  async function commitAsPrimary(value: unknown): Promise<CommitReply> {
    const commit: Commit = parseCommit(value)
    const ns = commit.ns
    if (store.namespace(ns) === undefined)
      throw new CovenantError('NAMESPACE_NOT_FOUND', `this node does not hold ${ns}`)
    await knowFunctionOf(commit)
    let outcome = 'applied'
    let seqApplied: number | undefined
    // what each stage cost, for the log line (like the gateway's `invoke`) and the stage histogram
    const started = performance.now()
    const ms: Record<string, number> = {}
    let mark = started
    const lap = (stage: string): void => {
      const t = performance.now()
      ms[stage] = (ms[stage] ?? 0) + (t - mark)
      mark = t
    }
    try {
      return await locked(ns, async () => {
        lap('lock')
        try {
          return await commitLocked()
        } catch (err) {
          // this node did not apply an entry: its own offer no longer holds other primaries off
          if (promises.last(ns)?.to === self) promises.forget(ns)
          throw err
        }
      })
      async function commitLocked(): Promise<CommitReply> {
        if (quorumOf(ns).holders[0] !== self) await catchUpAsStandIn(ns)
        for (let attempt = 1; ; attempt++) {
          // The entry is built and offered to the other holders at once, and this node runs its
          // own checks (the very ones they run) while they run theirs. A commit that is a
          // duplicate, whose reads are stale or that cannot be built is judged here first, as a
          // full prepare, so no holder checks it for nothing.
          let drafted: DraftedCommit | undefined
          try {
            drafted = store.draft(commit)
          } catch {
            drafted = undefined
          }
          const prepared: PreparedCommit | DraftedCommit =
            drafted === undefined || (!drafted.duplicate && drafted.stale) ? store.prepare(commit) : drafted
          lap('prepare')
          if (prepared.duplicate) {
            outcome = 'duplicate'
            return { ...prepared, holders: [self] }
          }
          const { seq, bytes } = prepared
          const quorum = quorumOf(ns)
          const entry = { seq, cid: prepared.cid, id: prepared.id }
          try {
            keepPromise(ns, entry, self)
          } catch (err) {
            throw unconfirmed(ns, seq, 0, quorum, CovenantError.from(err).message)
          }
          promise(ns, entry, self)
          const followers = commitHoldersOf(ns).filter((p) => p !== self)
          const checking = Promise.all(followers.map((p) => offer('check', p, ns, seq, bytes)))
          if (prepared === drafted) {
            // the offers leave first (their writes go out at the end of this tick)
            await new Promise((r) => setImmediate(r))
            try {
              store.checkReplicated(bytes)
            } catch (err) {
              await checking
              throw err
            }
          }
          const checks = await checking
          lap('check')
          const refused = checks.find((o) => o.outcome === 'refused')
          if (refused !== undefined) throw refused.error!
          const forked = checks.filter((o) => o.outcome === 'forked')
          if (attempt < MAX_COMMIT_ATTEMPTS && forked.length > 0) {
            const before = store.head(ns).cid
            for (const o of forked) await reconcile(o.peer, ns, { alreadyLocked: true })
            if (store.head(ns).cid !== before) {
              logger.info({ event: 'store-commit-retry', ns, attempt, forked: forked.length })
              continue
            }
          }
          // A majority of the k holders (this one counting) must be able to take it, or none is asked to.
          const taking = counted(checks, quorum)
          if (taking < quorum.majority) throw unconfirmed(ns, seq, 0, quorum, 'nothing was applied')
          if (fault === 'store-stall-after-check') await stallAfterCheck(ns, seq, bytes, checks)
          let acked = false
          const ready = checks.filter((o) => o.outcome === 'accepted')
          const appends = await Promise.all(
            ready.map(async ({ peer }) => {
              const o = await offer('append', peer, ns, seq, bytes)
              if (o.outcome === 'accepted' && !acked) {
                acked = true
                if (fault === 'store-crash-after-first-ack') crash()
              }
              return o
            }),
          )
          lap('append')
          for (const o of [...checks, ...appends])
            if (o.outcome !== 'accepted')
              logger.info({ event: 'store-left-out', ns, seq, peer: o.peer, code: o.error?.code })
          const took = counted(appends, quorum)
          if (took < quorum.majority)
            throw unconfirmed(ns, seq, took - counted([], quorum), quorum, 'it may have landed there')
          const applied = store.appendReplicated(bytes)
          lap('apply')
          seqApplied = seq
          const holders = [self, ...appends.filter((o) => o.outcome === 'accepted').map((o) => o.peer)]
          return { ns, seq, cid: applied.cid, id: applied.id, duplicate: false, holders }
        }
      }
    } catch (err) {
      outcome = CovenantError.from(err).code
      throw err
    } finally {
      metrics.commits.inc({ outcome })
      if (outcome === 'applied')
        for (const [stage, t] of Object.entries(ms))
          metrics.stages.observe({ kind: commit.kind, stage }, t / 1000)
      const total = Math.round(performance.now() - started)
      logger.info({
        event: 'store-commit',
        ns,
        id: commit.id,
        seq: seqApplied,
        outcome,
        ms: { ...Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(v)])), total },
      })
    }
  }

  /** The `store-stall-after-check` fault: a primary that checked an entry and never applies it. */
  async function stallAfterCheck(ns: string, seq: number, bytes: Uint8Array, checks: Offer[]): Promise<void> {
    logger.warn({ event: 'store-stall-fault', ns, seq })
    const ready = checks.filter((o) => o.outcome === 'accepted').map((o) => o.peer)
    for (;;) {
      // (the timer does not keep a stopping node alive)
      await new Promise((r) => setTimeout(r, PROMISE_MS / 5).unref())
      await Promise.all(ready.map((peer) => offer('check', peer, ns, seq, bytes)))
    }
  }

  /**
   * A stand-in primary (the first of the namespace's k holders is out of this node's sight) may
   * have been left out of that primary's last commits: before it judges a commit on its copy, it
   * pulls what the other live holders have beyond it (under the namespace's lock). A holder that
   * does not answer or forked is left to the commit's own rounds.
   */
  async function catchUpAsStandIn(ns: string): Promise<void> {
    const before = store.head(ns).seq
    for (const peer of commitHoldersOf(ns)) {
      if (peer === self) continue
      try {
        await pullFrom(peer, ns, { alreadyLocked: true })
      } catch {
        // the check round reaches it again, or leaves it out
      }
    }
    const after = store.head(ns).seq
    if (after !== before) logger.info({ event: 'store-stand-in-pulled', ns, from: before, to: after })
  }

  /** A gateway's commit: to the primary, else the next holder that answers. */
  async function commitThroughHolders(commit: Commit): Promise<CommitReply> {
    let last: CovenantError | undefined
    for (const peer of commitHoldersOf(commit.ns)) {
      try {
        if (peer === self) return await commitAsPrimary(commit)
        return await ask(peer, { type: 'commit', commit }, CommitReplySchema, COMMIT_TIMEOUT_MS)
      } catch (err) {
        const e = CovenantError.from(err)
        if (!FAILOVER.has(e.code)) throw e
        last = e
      }
    }
    throw last ?? new CovenantError('COVENANT_REFUSED', 'no live node stores namespaces')
  }

  // ── a holder ────────────────────────────────────────────────────────────────────────────────

  /** An entry a primary offers: checked only, or applied. */
  async function takeEntry(
    phase: 'check' | 'append',
    ns: string,
    bytes: Uint8Array,
    from: string,
  ): Promise<HeadReply> {
    let outcome = phase === 'check' ? 'checked' : 'applied'
    try {
      assertHolder(ns, from)
      if (phase === 'append' && fault === 'store-crash-on-append') crash()
      const fn = await knowFunctionOfEntry(bytes, ns)
      if (phase === 'check') {
        offeredToCheck.delete(ns)
        if (bytes.byteLength <= OFFERED_KEPT_BYTES) {
          if (offeredToCheck.size >= OFFERED_KEPT)
            offeredToCheck.delete(offeredToCheck.keys().next().value as string)
          offeredToCheck.set(ns, { bytes, fn })
        }
      } else offeredToCheck.delete(ns)
      return await locked(ns, () => {
        // one entry per seq: the entry this node promised (checked) is applied at once; any other
        // is checked first, to find its seq, and refused if that seq is promised to another's
        const promised = phase === 'append' && promises.last(ns)?.cid === entryCid(bytes)
        const result = promised ? store.appendReplicated(bytes) : store.checkReplicated(bytes)
        if (result.duplicate) outcome = 'duplicate'
        else if (!promised) {
          keepPromise(ns, result, from)
          if (phase === 'append') store.appendReplicated(bytes)
          promise(ns, result, from)
        }
        return headReply(ns)
      })
    } catch (err) {
      outcome = CovenantError.from(err).code
      throw err
    } finally {
      metrics.appends.inc({ outcome })
    }
  }

  function hold(genesis: unknown): HeadReply {
    const d = verifyDescriptor(genesis)
    const ns = namespaceId(d.owner, d.name)
    assertHolder(ns)
    const isNew = store.namespace(ns) === undefined
    store.create(d)
    if (isNew) {
      // placed before it was held: placed again, which keeps its holders
      holdersKept.delete(ns)
      placement(ns)
      syncSoon(ns)
    }
    return headReply(ns)
  }

  // ── catch-up and hand-over ─────────────────────────────────────────────────────────────────

  /** Pulls `peer`'s entries after this node's head while they extend it. */
  async function pullFrom(
    peer: string,
    ns: string,
    opts: { alreadyLocked?: boolean } = {},
  ): Promise<'done' | 'forked' | 'stuck'> {
    const under = <T>(body: () => T): Promise<T> =>
      opts.alreadyLocked ? Promise.resolve(body()) : locked(ns, body)
    while (running) {
      const after = store.head(ns).seq
      const { entries } = await ask(
        peer,
        { type: 'entries', ns, after, limit: PULL_PAGE },
        EntriesReplySchema,
      )
      if (entries.length === 0) return 'done'
      for (const bytes of entries) await knowFunctionOfEntry(bytes)
      const stop = await under((): 'forked' | 'stuck' | undefined => {
        for (const bytes of entries) {
          try {
            store.appendReplicated(bytes)
            metrics.pulled.inc()
          } catch (err) {
            const e = CovenantError.from(err)
            if (e.code === 'ENTRY_FORK') return 'forked'
            logger.warn({ event: 'store-pull-stuck', ns, peer, code: e.code, message: e.message })
            return 'stuck'
          }
        }
        return undefined
      })
      if (stop !== undefined) return stop
      await new Promise((r) => setImmediate(r))
    }
    return 'done'
  }

  /** The highest seq at which this node and `peer` hold the same entry. */
  async function commonAncestor(peer: string, ns: string, upTo: number): Promise<number> {
    for (let hi = upTo; hi > 0; ) {
      const lo = Math.max(0, hi - PULL_PAGE)
      const { cids } = await ask(peer, { type: 'cids', ns, after: lo, limit: hi - lo }, CidsReplySchema)
      const theirs = new Map(cids.map((e) => [e.seq, e.cid]))
      const mine = new Map(store.cidsSince(ns, lo, hi - lo).map((e) => [e.seq, e.cid]))
      for (let s = hi; s > lo; s--) if (theirs.has(s) && theirs.get(s) === mine.get(s)) return s
      hi = lo
    }
    return 0
  }

  function nudge(peer: string, ns: string): void {
    ask(peer, { type: 'nudge', ns }, OkReplySchema).catch(() => {})
  }

  /**
   * Which entry at `seq` a majority of the namespace's k holders hold (each is asked; this node
   * answers from its own copy): its CID; `'none'` when no entry there can have a majority, even
   * counting the entries promised there and the holders that did not answer, so none was
   * acknowledged; `'unknown'` otherwise. A holder that holds and promised nothing at `seq` promises
   * to take nothing there for a while (`branch`), so the answers hold while this node acts on them.
   */
  async function majorityAt(ns: string, seq: number): Promise<string | 'none' | 'unknown'> {
    const { holders, majority } = quorumOf(ns)
    const answers = await Promise.all(
      holders.map(async (p) => {
        if (p === self) return branchReply(ns, seq, self)
        try {
          return await ask(p, { type: 'branch', ns, seq }, BranchReplySchema)
        } catch {
          return undefined
        }
      }),
    )
    const held = new Map<string, number>()
    const possible = new Map<string, number>()
    let silent = 0
    for (const a of answers) {
      if (a === undefined) silent++
      else {
        if (a.cid !== null) held.set(a.cid, (held.get(a.cid) ?? 0) + 1)
        const may = a.cid ?? a.promised
        if (may !== null) possible.set(may, (possible.get(may) ?? 0) + 1)
      }
    }
    for (const [cid, n] of held) if (n >= majority) return cid
    if (silent >= majority || [...possible.values()].some((n) => n + silent >= majority)) return 'unknown'
    return 'none'
  }

  /**
   * Makes this node's history of `ns` agree with `peer`'s: pulls what extends it; if they forked,
   * adopts the branch a majority of the k holders hold where they part (else, when no branch can
   * have a majority there, the longer history, see {@link wins}): truncates to where they part and
   * pulls; keeping its own, tells `peer` to compare with this node. A fork the holders' answers
   * cannot decide yet is left for a later round.
   */
  async function reconcile(
    peer: string,
    ns: string,
    opts: { alreadyLocked?: boolean; theirs?: HeadReply } = {},
  ): Promise<void> {
    const theirs = opts.theirs ?? (await headOf(peer, ns))
    if (theirs === undefined || theirs === 'missing') return
    const mine = store.head(ns)
    if (theirs.head.seq === mine.seq && theirs.head.cid === mine.cid) return
    if (theirs.head.seq > mine.seq && (await pullFrom(peer, ns, opts)) !== 'forked') return
    const now = store.head(ns)
    if (theirs.head.seq <= now.seq && cidAt(ns, theirs.head.seq) === theirs.head.cid) {
      nudge(peer, ns)
      return
    }
    const ancestor = await commonAncestor(peer, ns, Math.min(now.seq, theirs.head.seq))
    // The first page of the other history, which replaces this node's in the same transaction if
    // it wins: a history this node would refuse never costs it its own.
    const { entries } = await ask(
      peer,
      { type: 'entries', ns, after: ancestor, limit: PULL_PAGE },
      EntriesReplySchema,
    )
    // the peer may have moved meanwhile (adopted this node's branch): then they part no longer there
    if (entries.length === 0 || entryCid(entries[0]) === cidAt(ns, ancestor + 1)) return
    const asked = performance.now()
    const majority = await majorityAt(ns, ancestor + 1)
    if (majority === 'unknown') {
      logger.info({ event: 'store-fork-undecided', ns, peer, seq: ancestor + 1 })
      return
    }
    if (majority === 'none' ? !wins(theirs.head, now) : majority !== entryCid(entries[0])) {
      if (majority === 'none' || majority === cidAt(ns, ancestor + 1)) nudge(peer, ns)
      return
    }
    for (const bytes of entries) await knowFunctionOfEntry(bytes)
    const cut = (): boolean => {
      if (store.head(ns).cid !== now.cid) return false
      // the holders' promises not to change their answers last PROMISE_MS
      if (performance.now() - asked > PROMISE_MS / 2) {
        logger.info({ event: 'store-fork-undecided', ns, peer, seq: ancestor + 1, stale: true })
        return false
      }
      try {
        store.truncate(ns, ancestor, entries)
        return true
      } catch (err) {
        const e = CovenantError.from(err)
        logger.warn({ event: 'store-fork-refused', ns, peer, code: e.code, message: e.message })
        return false
      }
    }
    if (!(opts.alreadyLocked ? cut() : await locked(ns, cut))) return
    metrics.truncations.inc()
    logger.warn({
      event: 'store-truncate',
      ns,
      from: now.seq,
      to: ancestor,
      winner: peer,
      by: majority === 'none' ? 'longer' : 'majority',
      theirHead: theirs.head,
    })
    await pullFrom(peer, ns, opts)
  }

  /** Compares one namespace with its holders: gives the genesis, pulls, adopts, hands over, drops. */
  async function syncNamespace(ns: string): Promise<void> {
    const info = store.namespace(ns)
    if (info === undefined) return
    const desired = holdersOf(ns)
    const holder = desired.includes(self)
    const others = desired.filter((p) => p !== self)
    const mine = store.head(ns)
    const heads = await Promise.all(others.map((p) => headOf(p, ns, mine.seq)))
    for (const [i, theirs] of heads.entries()) {
      if (theirs !== 'missing') continue
      try {
        heads[i] = await ask(others[i], { type: 'create', genesis: info.genesis }, HeadReplySchema)
      } catch {
        heads[i] = undefined
      }
    }
    if (holder) {
      for (const [i, theirs] of heads.entries())
        if (typeof theirs === 'object') await reconcile(others[i], ns, { theirs })
      return
    }
    // Not a holder in this view: the holders pull from this node until they have all it has.
    const now = store.head(ns)
    let handedOver = others.length > 0 && (others.length >= replicas || !storesHere())
    for (const [i, theirs] of heads.entries()) {
      const has = typeof theirs === 'object' && theirs.head.seq >= now.seq && theirs.cidAt === now.cid
      if (!has) {
        handedOver = false
        if (typeof theirs === 'object') nudge(others[i], ns)
      }
    }
    if (handedOver && now.seq === mine.seq) {
      const dropped = await locked(ns, () => store.head(ns).cid === now.cid && store.drop(ns))
      if (dropped) {
        metrics.dropped.inc()
        logger.info({ event: 'store-dropped', ns, seq: now.seq, holders: others })
      }
    }
  }

  let running = false
  let syncing: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  let soonTimer: NodeJS.Timeout | undefined
  let unsubscribe: (() => void) | undefined
  const pending = new Map<string, Promise<void>>()

  /** One round over every namespace held, a page at a time, yielding between namespaces. */
  function syncRound(): Promise<void> {
    if (syncing !== undefined) return syncing
    syncing = (async () => {
      for (let after = ''; running; ) {
        const page = store.namespaces({ after, limit: 100 })
        for (const ns of page) {
          if (!running) break
          await syncOne(ns)
          await new Promise((r) => setImmediate(r))
        }
        if (page.length < 100) break
        after = page[page.length - 1]
      }
    })().finally(() => {
      syncing = undefined
    })
    return syncing
  }

  /** Syncs one namespace, at most once at a time. */
  function syncOne(ns: string, with_?: string): Promise<void> {
    if (fault === 'store-no-catch-up') return Promise.resolve()
    const key = with_ === undefined ? ns : `${ns} ${with_}`
    const running_ = pending.get(key)
    if (running_ !== undefined) return running_
    const p = (async () => {
      try {
        if (with_ === undefined) await syncNamespace(ns)
        else if (store.namespace(ns) !== undefined) {
          const theirs = await headOf(with_, ns)
          if (typeof theirs === 'object') await reconcile(with_, ns, { theirs })
        }
      } catch (err) {
        const e = CovenantError.from(err)
        if (running)
          logger.warn({ event: 'store-sync-failed', ns, peer: with_, code: e.code, message: e.message })
      }
    })().finally(() => pending.delete(key))
    pending.set(key, p)
    return p
  }

  function syncSoon(ns?: string): void {
    if (!running) return
    if (ns !== undefined) {
      setImmediate(() => void syncOne(ns))
      return
    }
    if (soonTimer !== undefined) return
    soonTimer = setTimeout(() => {
      soonTimer = undefined
      void syncRound()
    }, 100)
    soonTimer.unref()
  }

  // ── reads ───────────────────────────────────────────────────────────────────────────────────

  type ReadRequest = Extract<
    StoreRequest,
    { type: 'info' | 'get' | 'list' | 'history' | 'keyHistory' | 'revocations' }
  >

  /** A page of `rows` that fits a reply, and the cursor of the next one (null at the end). */
  function paged<T, C>(rows: T[], limit: number, cursor: (last: T) => C): { page: T[]; next: C | null } {
    const { page, cut } = withinPage(rows, cborSize)
    const more = cut || rows.length === limit
    return { page, next: more && page.length > 0 ? cursor(page[page.length - 1]) : null }
  }

  /** A read served from this node's own copy; a private namespace's only with its owner's signed read. */
  function readHere(msg: ReadRequest): unknown {
    const info = store.namespace(msg.ns)
    if (info === undefined)
      throw new CovenantError('NAMESPACE_NOT_FOUND', `this node does not hold ${msg.ns}`)
    if (msg.type === 'info') return { descriptor: info.descriptor, head: info.head }
    checkRead(info, msg.reader)
    const at = ('at' in msg ? msg.at : undefined) ?? info.head.seq
    switch (msg.type) {
      case 'get':
        return { ...store.get(msg.ns, msg.key, { at }), at }
      case 'list': {
        const after = msg.after === '' ? undefined : msg.after
        const rows = store.list(msg.ns, { prefix: msg.prefix, at, after, limit: msg.limit })
        const { page, next } = paged(rows, msg.limit, (r) => r.key)
        return { at, keys: page, next }
      }
      case 'history': {
        const rows = store.history(msg.ns, { after: msg.after, limit: msg.limit })
        const { page, next } = paged(rows, msg.limit, (r) => r.seq)
        return { head: info.head, entries: page, next }
      }
      case 'keyHistory': {
        const rows = store.keyHistory(msg.ns, msg.key, { before: msg.before, limit: msg.limit })
        const { page, next } = paged(rows, msg.limit, (r) => r.version)
        return { versions: page, next }
      }
      case 'revocations': {
        const rows = store.revocations(msg.ns, { after: msg.after, limit: msg.limit })
        const { page, next } = paged(rows, msg.limit, (r) => r.cid)
        return { revocations: page, next }
      }
    }
  }

  /** How telling a read's failure is: a holder's own answer beats one that lacks the namespace or is gone. */
  const rank = (e: CovenantError): number =>
    FAILOVER.has(e.code) ? (e.code === 'NAMESPACE_NOT_FOUND' ? 1 : 0) : 2

  /**
   * Serves a read from this node's copy when it is a holder and has reached version `at`, else
   * from the holders, closest first; a copy this node keeps but no longer should is the last resort.
   */
  async function serveRead<T>(msg: ReadRequest, schema: z.ZodType<T>): Promise<T & { servedBy: string }> {
    const held = store.namespace(msg.ns)
    const holders = holdersOf(msg.ns)
    const at = 'at' in msg ? msg.at : undefined
    const mine = () => ({ ...(readHere(msg) as T), servedBy: self })
    if (held !== undefined && (at === undefined || at <= held.head.seq) && holders.includes(self))
      return mine()
    let best: CovenantError | undefined
    for (const peer of holders) {
      if (peer === self) continue
      try {
        return { ...(await ask(peer, msg, schema)), servedBy: peer }
      } catch (err) {
        const e = CovenantError.from(err)
        if (e.code === 'READ_REFUSED') throw e
        if (best === undefined || rank(e) > rank(best)) best = e
      }
    }
    if (held !== undefined) return mine()
    throw best ?? new CovenantError('NAMESPACE_NOT_FOUND', `no holder of ${msg.ns} answered`)
  }

  // ── the protocol ────────────────────────────────────────────────────────────────────────────

  async function onRequest(msg: StoreRequest, from: string): Promise<unknown> {
    switch (msg.type) {
      case 'commit':
        return commitAsPrimary(msg.commit)
      case 'create':
        return hold(msg.genesis)
      case 'check':
      case 'append':
        return takeEntry(msg.type, msg.ns, msg.entry, from)
      case 'head':
        return headReply(msg.ns, msg.at)
      case 'entries': {
        const rows = store.entriesSince(msg.ns, msg.after, msg.limit)
        return { entries: withinPage(rows, (e) => e.bytes.length).page.map((e) => e.bytes) }
      }
      case 'cids':
        return { cids: store.cidsSince(msg.ns, msg.after, msg.limit) }
      case 'branch':
        return branchReply(msg.ns, msg.seq, from)
      case 'nudge':
        if (store.namespace(msg.ns) === undefined)
          throw new CovenantError('NAMESPACE_NOT_FOUND', `this node does not hold ${msg.ns}`)
        if (running) setImmediate(() => void syncOne(msg.ns, from))
        return { ok: true }
      case 'info':
      case 'get':
      case 'list':
      case 'history':
      case 'keyHistory':
      case 'revocations':
        return readHere(msg)
    }
  }

  c.stores.serve({
    async read(ns, key, at) {
      const { value, version } = await serveRead({ type: 'get', ns, key, at }, GetReplySchema)
      return { value, version }
    },
    commit: (commit) => commitThroughHolders(parseCommit(commit)),
    async head(ns) {
      return (await serveRead({ type: 'info', ns }, InfoReplySchema)).head.seq
    },
    async entry(ns, seq) {
      const held = store.namespace(ns)
      if (held !== undefined && held.head.seq >= seq) {
        const [mine] = store.entriesSince(ns, seq - 1, 1)
        if (mine !== undefined) return decodeEntry(mine.bytes)
      }
      for (const peer of holdersOf(ns)) {
        if (peer === self) continue
        try {
          const { entries } = await ask(
            peer,
            { type: 'entries', ns, after: seq - 1, limit: 1 },
            EntriesReplySchema,
          )
          if (entries[0] !== undefined) return decodeEntry(entries[0])
        } catch {
          // the next holder may have it
        }
      }
      throw new CovenantError('NAMESPACE_NOT_FOUND', `no holder of ${ns} answered with entry ${seq}`)
    },
  })

  await net.handle(STORE_PROTOCOL, {
    schema: StoreRequestSchema,
    maxBytes: MAX_STORE_MESSAGE_BYTES,
    maxInboundStreams: 32,
    runTimeoutMs: COMMIT_TIMEOUT_MS,
    sessions: true,
    handler: onRequest,
  })

  // ── HTTP ────────────────────────────────────────────────────────────────────────────────────

  const readerOf = (text: string | undefined): unknown =>
    text === undefined ? undefined : decodeBase64Cbor(text, 'the signed read', 'READ_REFUSED')

  route(c.http, createStoreRoute, async function createStore({ body }) {
    const genesis = verifyDescriptor(bytesFieldsFromJSON(body.descriptor, ['signature']))
    if (genesis.version !== 1)
      throw new CovenantError('NAMESPACE_INVALID', 'a namespace starts from its version 1 descriptor')
    const ns = namespaceId(genesis.owner, genesis.name)
    const holders = holdersOf(ns)
    if (holders.length === 0) throw new CovenantError('COVENANT_REFUSED', 'no live node stores namespaces')
    const results = await Promise.allSettled(
      holders.map((p) =>
        p === self ? Promise.resolve(hold(genesis)) : ask(p, { type: 'create', genesis }, HeadReplySchema),
      ),
    )
    const confirmed = holders.filter((_, i) => results[i].status === 'fulfilled')
    const first = results.find((r) => r.status === 'fulfilled')
    if (first === undefined) throw (results[0] as PromiseRejectedResult).reason
    return { ns, holders: confirmed, wanted: replicas, head: first.value.head }
  })

  route(c.http, storeInfoRoute, async function storeInfo({ params }) {
    const ns = parseNs(params.ns)
    const { descriptor, head, servedBy } = await serveRead({ type: 'info', ns }, InfoReplySchema)
    return {
      ns,
      owner: descriptor.owner,
      name: descriptor.name,
      public: descriptor.public,
      version: descriptor.version,
      policy: descriptor.policy,
      descriptor: bytesFieldsToJSON(descriptor),
      head,
      holders: holdersOf(ns),
      servedBy,
    }
  })

  route(c.http, getKeyRoute, async function getKey({ params, query }) {
    const ns = parseNs(params.ns)
    const reader = readerOf(query.reader)
    const msg = { type: 'get' as const, ns, key: params.key, at: query.at, reader }
    const { servedBy: _, ...got } = await serveRead(msg, GetReplySchema)
    return { ns, key: params.key, ...got }
  })

  route(c.http, listKeysRoute, async function listKeys({ params, query }) {
    const ns = parseNs(params.ns)
    const msg = { type: 'list' as const, ns, ...query, reader: readerOf(query.reader) }
    const { servedBy: _, ...page } = await serveRead(msg, ListReplySchema)
    return { ns, ...page }
  })

  route(c.http, historyRoute, async function history({ params, query }) {
    const ns = parseNs(params.ns)
    const msg = { type: 'history' as const, ns, ...query, reader: readerOf(query.reader) }
    const { servedBy: _, ...page } = await serveRead(msg, HistoryReplySchema)
    return { ns, ...page }
  })

  route(c.http, keyHistoryRoute, async function keyHistory({ params, query }) {
    const ns = parseNs(params.ns)
    const msg = { type: 'keyHistory' as const, ns, key: params.key, ...query, reader: readerOf(query.reader) }
    const { servedBy: _, ...page } = await serveRead(msg, KeyHistoryReplySchema)
    return { ns, key: params.key, ...page }
  })

  route(c.http, commitRoute, async function commitStore({ params, body }) {
    const ns = parseNs(params.ns)
    const commit = parseCommit(decodeBase64Cbor(body.commit, 'the commit', 'ENTRY_INVALID'))
    if (commit.ns !== ns)
      throw new CovenantError('INVALID_INPUT', `the commit is for ${commit.ns}, not ${ns}`)
    return commitThroughHolders(commit)
  })

  route(c.http, revokeRoute, async function revokeGrant({ params, body }) {
    const ns = parseNs(params.ns)
    const revocation = decodeBase64Cbor(body.revocation, 'the revocation', 'GRANT_MALFORMED')
    return commitThroughHolders(createRevocationCommit(ns, revocation))
  })

  route(c.http, revocationsRoute, async function revocations({ params, query }) {
    const ns = parseNs(params.ns)
    const msg = { type: 'revocations' as const, ns, ...query, reader: readerOf(query.reader) }
    const { revocations, next } = await serveRead(msg, RevocationsReplySchema)
    return {
      ns,
      revocations: revocations.map((r) => ({
        cid: r.cid,
        seq: r.seq,
        revocation: toBase64(dagCbor.encode(r.revocation)),
      })),
      next,
    }
  })

  return {
    name: 'datastore',
    async start() {
      running = true
      unsubscribe = c.peers.onChange(() => {
        known.forget()
        syncSoon()
      })
      timer = setInterval(() => void syncRound(), syncIntervalMs)
      timer.unref()
      forgetRemembered = setTimeout(() => holdersKept.clear(), Math.max(0, rememberedUntil - Date.now()))
      forgetRemembered.unref()
      syncSoon()
    },
    async stop() {
      running = false
      unsubscribe?.()
      forgetHolders()
      if (timer !== undefined) clearInterval(timer)
      if (soonTimer !== undefined) clearTimeout(soonTimer)
      if (forgetRemembered !== undefined) clearTimeout(forgetRemembered)
      await net.unhandle(STORE_PROTOCOL).catch(() => {})
      await syncing?.catch(() => {})
      await Promise.allSettled([...pending.values()])
      store.close()
    },
  }
}
