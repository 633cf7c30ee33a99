/**
 * The jobs service: jobs on the network. A job is kept by the `replicas` (k) live nodes closest to
 * its id whose covenant stores (in this node's view: its peer table and itself), its *keepers*;
 * the closest is its *dispatcher*. `src/jobs` is the state machine; this service is its node
 * side: the jobs protocol `/covenant/jobs/1.0.0`, the HTTP routes `/v1/jobs…`, dispatch, takeover
 * and catch-up. docs/jobs.md tells the whole of it.
 *
 * - **Enqueue.** Any node takes a job and hands it to each of its keepers; each checks it and
 *   holds it, queued.
 * - **Dispatch.** The dispatcher runs each due attempt as an ordinary invocation through this
 *   node's gateway, signing the request with its own key and a nonce naming the job; it commits
 *   the run's writes keyed by the job id, records the outcome, and offers every new state to the
 *   other keepers, who keep whichever state wins (src/jobs/state.ts).
 * - **Takeover.** When a keeper's view changes (a node died or joined), it looks at its jobs
 *   again: the new dispatcher of a job starts the next attempt if no live dispatcher holds one.
 * - **Catch-up and hand-over.** Every sync interval, and soon after the view changes, a keeper
 *   offers each job's state to the keepers that have not confirmed it (a new keeper gets the
 *   record too), and a node that is no longer a keeper drops its copy once they all hold it.
 */
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { Counter, Gauge } from 'prom-client'
import {
  cancelJobRoute,
  enqueueJobRoute,
  enqueueRunRoute,
  type JobInfo,
  type JobSummary,
  jobEventsRoute,
  jobRoute,
  listJobsRoute,
} from '../../api/index.ts'
import { cidString } from '../../content/index.ts'
import { closestPeers } from '../../covenant/index.ts'
import { createFunctionCommit } from '../../datastore/index.ts'
import { fromBase64, toBase64 } from '../../encoding/index.ts'
import { CovenantError, type ErrorJSON } from '../../errors/index.ts'
import {
  type Certificate,
  CertificateSchema,
  certificateFromJSON,
  certificateToJSON,
  epochOf,
  type InvokeResult,
  MAX_CLOCK_SKEW_MS,
  MAX_DEADLINE_AHEAD_MS,
  mintTicket,
  type Output,
  OutputSchema,
  outputHash,
  type Receipt,
  ReceiptSchema,
  receiptToJSON,
  requestId,
  type Ticket,
  verifyCertificate,
  verifyCertificateSignatures,
} from '../../exec/index.ts'
import {
  type AttemptRecord,
  attemptConflicted,
  attemptDeferred,
  attemptFailed,
  BATCH_BYTES,
  type Backoff,
  cancelJob,
  checkDoc,
  DEFERRING_ERRORS,
  dispatchRequest,
  type EffectCommit,
  encodeState,
  enqueuedDocs,
  failJob,
  GetReplySchema,
  type ItemReply,
  ItemsReplySchema,
  initialState,
  isEncodingOf,
  isRetryable,
  isSettled,
  isTerminal,
  JOB_LIMITS,
  JOBS_PROTOCOL,
  type JobDoc,
  type JobRecord,
  type JobState,
  type JobStore,
  type JobsRequest,
  JobsRequestSchema,
  jobDepth,
  jobKeyBytes,
  jobsOf,
  MAX_BATCH,
  MAX_JOB_DEPTH,
  MAX_JOBS_MESSAGE_BYTES,
  markCommitted,
  matchDispatch,
  mergeStates,
  OutputWithJobsSchema,
  openJobStore,
  paidOf,
  paidTotal,
  parseState,
  type RunProof,
  type StoredJob,
  sameState,
  startAttempt,
  succeed,
  type VerifyRun,
  verifyCancel,
  verifyNewJob,
  wins,
} from '../../jobs/index.ts'
import { canonicalBytes } from '../../keys/index.ts'
import { chargeFor } from '../../ledger/index.ts'
import { route } from '../http.ts'
import { knownView } from '../known-view.ts'
import type { NodeComponents, NodeService, NodeServiceFactory } from '../service.ts'

/** Devnet faults of this service (node option `fault`, refused outside a devnet). */
export const JOBS_FAULT_KINDS = [
  /** a dispatcher dies (SIGKILL) right after its first attempt started: its keepers hold it running */
  'jobs-crash-on-dispatch',
  /**
   * a dispatcher dies (SIGKILL) right after an attempt's writes were committed, before it records
   * the success: its keepers hold it running, and the next attempt's writes are duplicates
   */
  'jobs-crash-after-commit',
] as const

/** The job file in a node's data directory. */
export const JOBS_FILE = 'jobs.db'

/** How often a dispatcher looks for due jobs, at most, unless told otherwise. */
export const JOBS_SCAN_INTERVAL_MS = 1000

export interface JobsServiceOptions {
  /** how often the dispatcher looks for due jobs, at most @default JOBS_SCAN_INTERVAL_MS */
  scanIntervalMs?: number
  /** how often each job held is compared with its other keepers @default 10000 */
  syncIntervalMs?: number
  /** attempts this node runs at once as a dispatcher @default 8 */
  maxRunning?: number
  /** how the waits between attempts grow @default DEFAULT_BACKOFF */
  backoff?: Partial<Backoff>
  /** how long a settled job is kept @default 7 days */
  retentionMs?: number
  /** how long a keeper waits for another to take a job or a state @default 5000 */
  replicateTimeoutMs?: number
  /** checks the run behind a job a function enqueued @default its certificate against this node's view */
  verifyRun?: VerifyRun
  /** what the `jobs-crash-*` fault does @default SIGKILL of this process */
  onCrash?: () => void
}

export type JobsServiceComponents = Pick<
  NodeComponents,
  | 'key'
  | 'peerId'
  | 'dataDir'
  | 'covenant'
  | 'net'
  | 'peers'
  | 'storage'
  | 'http'
  | 'logger'
  | 'metrics'
  | 'view'
  | 'manifest'
  | 'gateway'
  | 'stores'
  | 'fault'
  | 'ledger'
>

const DAY = 24 * 3600 * 1000
/** How long an attempt's dispatcher holds it past its request's deadline before another may take over. */
const LEASE_MARGIN_MS = 5000
/** How often a watcher of a job asks its keepers when it hears nothing. */
const WATCH_POLL_MS = 500
/** A keeper that is not a job's dispatcher looks at it again this many scan intervals later. */
const STANDBY_SCANS = 10
/** Nonces tried per slice when minting a ticket between other work. */
const MINT_SLICE = 4096
/** Jobs looked at per scan. */
const SCAN_PAGE = 64
/** Jobs compared per sync page. */
const SYNC_PAGE = 500

/** The built-in jobs service; `createNode` adds it to every node. */
export function jobsService(options: JobsServiceOptions = {}): NodeServiceFactory<JobsServiceComponents> {
  return (c) => createJobsService(c, options)
}

/**
 * The node's check of the run behind an enqueued job, as a namespace's holders check a function
 * entry (docs/apps.md): a run less than a request's lifetime old is checked against this node's
 * view and the function's manifest, so its signers must be the executors the selection rule picks;
 * an older one (a keeper that takes the job over days later) by its signatures alone. Either way
 * the output must hash to what the receipts sign, and so must the jobs it lists.
 */
export function verifyRunWithView(c: Pick<NodeComponents, 'view' | 'manifest'>): VerifyRun {
  const refuse = (message: string): never => {
    throw new CovenantError('INVALID_CERTIFICATE', message)
  }
  return async (proof) => {
    const cert = CertificateSchema.safeParse(proof.certificate)
    if (!cert.success) return refuse('malformed certificate')
    const output = OutputWithJobsSchema.safeParse(proof.output)
    if (!output.success) return refuse('the output lists no jobs')
    if (Date.now() - cert.data.request.timestamp < MAX_DEADLINE_AHEAD_MS + MAX_CLOCK_SKEW_MS) {
      const manifest = await c.manifest(cert.data.request.fn).catch(() => undefined)
      if (manifest === undefined) return refuse(`function ${cert.data.request.fn} cannot be had`)
      verifyCertificate(cert.data, { view: c.view(), manifest, output: output.data, minQuorum: 1 })
    } else verifyCertificateSignatures(cert.data, { output: output.data, minQuorum: 1 })
    return { request: cert.data.request, id: cert.data.id, jobs: output.data.jobs }
  }
}

/**
 * Commits a certified run's writes to each namespace it writes, through the node's datastores,
 * keyed by the job id (the commit carries the job's record, see createFunctionCommit), so another
 * attempt's commit of the same job is a duplicate that changes nothing. Throws WRITE_CONFLICT when
 * a key it read has moved (the job runs again, reading afresh), or why the holders refused.
 */
async function commitWrites(
  stores: NodeComponents['stores'],
  job: { id: string; record: JobRecord },
  run: { certificate: Certificate; output: Output },
): Promise<EffectCommit[]> {
  const commits: EffectCommit[] = []
  for (const effects of run.output.store ?? []) {
    if (effects.writes.length === 0) continue
    const commit = createFunctionCommit({
      request: job.id,
      effects,
      certificate: run.certificate,
      output: run.output,
      job: job.record,
    })
    const { ns, seq, cid, duplicate } = await stores.commit(commit)
    commits.push({ ns, seq, cid, duplicate })
  }
  return commits
}

/** Receipts of a run that did not reach a quorum, as the gateway's NO_QUORUM details carry them. */
function receiptsOf(err: CovenantError): Receipt[] {
  const raw = (err.details as { receipts?: unknown[] } | undefined)?.receipts ?? []
  const out: Receipt[] = []
  for (const r of raw.slice(0, 64)) {
    const json = r as { signature?: unknown }
    const signature = typeof json.signature === 'string' ? fromBase64(json.signature) : undefined
    const parsed = ReceiptSchema.safeParse({ ...json, signature })
    if (parsed.success) out.push(parsed.data)
  }
  return out
}

function triedOf(tried: readonly { peer: string; outcome: string; error?: ErrorJSON }[] | undefined) {
  return (tried ?? [])
    .slice(0, 64)
    .map((a) => ({ peer: a.peer, outcome: a.outcome, error: a.error?.code ?? null }))
}

function errorOf(err: unknown): { code: string; message: string } {
  const e = CovenantError.from(err)
  return { code: e.code, message: e.message.slice(0, 4096) }
}

/**
 * Collects items for one peer into messages of up to {@link MAX_BATCH} items or about
 * {@link BATCH_BYTES}, sent on the next turn of the event loop; each item's promise settles with
 * its own answer.
 */
class Batcher<I> {
  readonly #send: (items: I[]) => Promise<ItemReply[]>
  readonly #size: (item: I) => number
  #queue: Array<{ item: I; resolve: (r: ItemReply) => void; reject: (e: unknown) => void }> = []
  #bytes = 0
  #scheduled = false

  constructor(send: (items: I[]) => Promise<ItemReply[]>, size: (item: I) => number) {
    this.#send = send
    this.#size = size
  }

  push(item: I): Promise<ItemReply> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      this.#bytes += this.#size(item)
      if (this.#queue.length >= MAX_BATCH || this.#bytes >= BATCH_BYTES) this.#flush()
      else if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#scheduled = false
    while (this.#queue.length > 0) {
      let bytes = 0
      let n = 0
      while (
        n < this.#queue.length &&
        n < MAX_BATCH &&
        (n === 0 || bytes + this.#size(this.#queue[n].item) <= BATCH_BYTES)
      )
        bytes += this.#size(this.#queue[n++].item)
      const batch = this.#queue.splice(0, n)
      this.#bytes -= bytes
      this.#send(batch.map((b) => b.item)).then(
        (results) => {
          for (const [i, b] of batch.entries()) {
            const r = results[i]
            if (r === undefined)
              b.reject(new CovenantError('PROTOCOL_ERROR', 'a keeper answered fewer items than it was sent'))
            else b.resolve(r)
          }
        },
        (err) => {
          for (const b of batch) b.reject(err)
        },
      )
    }
  }
}

function metricsOf(c: Pick<NodeComponents, 'metrics'>, counts: () => Record<string, number>) {
  const registers = [c.metrics.registry]
  return {
    attempts: new Counter({
      name: 'covenant_jobs_attempts_total',
      help: 'job attempts this node dispatched, by outcome (succeeded, conflict, or the error code)',
      labelNames: ['outcome'],
      registers,
    }),
    takeovers: new Counter({
      name: 'covenant_jobs_takeovers_total',
      help: 'attempts this node started on a job whose running attempt another dispatcher had left',
      registers,
    }),
    jobs: new Gauge({
      name: 'covenant_jobs',
      help: 'jobs this node keeps, by status',
      labelNames: ['status'],
      registers,
      collect() {
        for (const [status, n] of Object.entries(counts())) this.set({ status }, n)
      },
    }),
  }
}

async function createJobsService(
  c: JobsServiceComponents,
  options: JobsServiceOptions,
): Promise<NodeService> {
  const { net, logger } = c
  const self = c.peerId
  const replicas = c.storage.options.replicas
  const scanIntervalMs = options.scanIntervalMs ?? JOBS_SCAN_INTERVAL_MS
  const syncIntervalMs = options.syncIntervalMs ?? 10_000
  const maxRunning = options.maxRunning ?? 8
  const retentionMs = options.retentionMs ?? 7 * DAY
  const replicateTimeoutMs = options.replicateTimeoutMs ?? 5000
  // a run is judged against the view with the peers this node believes dead kept in it, as dead,
  // so a keeper still takes a job whose run's signer died since (known-view.ts)
  const known = knownView(c)
  const verifyRun = options.verifyRun ?? verifyRunWithView({ view: known.view, manifest: c.manifest })
  const crashOnDispatch = c.fault === 'jobs-crash-on-dispatch'
  const crashAfterCommit = c.fault === 'jobs-crash-after-commit'
  const crash =
    options.onCrash ??
    (() => {
      logger.fatal({ event: 'jobs-crash-fault', fault: c.fault })
      process.kill(process.pid, 'SIGKILL')
    })

  const store: JobStore = openJobStore({ path: join(c.dataDir, JOBS_FILE) })
  const metrics = metricsOf(c, () => (running ? store.counts() : {}))
  let running = false

  // ── who keeps what ──────────────────────────────────────────────────────────────────────────

  const storesHere = (): boolean => c.covenant().config.store.enabled
  /** keepers by job id for the current view; forgotten whenever the view changes */
  const keepersMemo = new Map<string, string[]>()

  /** The job's keepers in this node's view, the dispatcher first. */
  function keepersOf(id: string): string[] {
    let keepers = keepersMemo.get(id)
    if (keepers === undefined) {
      const ids = storesHere() ? [self] : []
      for (const p of c.peers.live()) if (p.covenant.config.store.enabled) ids.push(p.id)
      keepers = closestPeers(jobKeyBytes(id), ids, replicas)
      if (keepersMemo.size >= 100_000) keepersMemo.clear()
      keepersMemo.set(id, keepers)
    }
    return keepers
  }

  const isLive = (peer: string): boolean => peer === self || c.peers.get(peer)?.alive === true

  // ── watchers: each job's local changes, for its event streams ──────────────────────────────

  const watchers = new Map<string, Set<() => void>>()
  function changed(id: string): void {
    for (const wake of watchers.get(id) ?? []) wake()
  }

  /**
   * Which state of each job each other keeper is known to hold (or one that beats it), by its mark
   * ({@link markOf}): a change to `paid` alone keeps the version, so the mark counts it too.
   */
  const confirmed = new Map<string, Map<string, string>>()
  const markOf = (s: { version: number; paid: number }): string => `${s.version}/${s.paid}`
  function confirm(id: string, peer: string, state: JobState): void {
    let byPeer = confirmed.get(id)
    if (byPeer === undefined) {
      if (confirmed.size >= 200_000) confirmed.clear()
      byPeer = new Map()
      confirmed.set(id, byPeer)
    }
    byPeer.set(peer, markOf({ version: state.version, paid: paidTotal(state) }))
  }

  /**
   * Charges the enqueuer `total` for the attempts of the job this node dispatched: its own note
   * (`chargedHere`) plus what it just charged for one, never what a state from another keeper says
   * of it. Once per job: the charge only grows.
   */
  function chargeEnqueuer(id: string, doc: JobDoc, total: number): void {
    store.noteCharged(id, total)
    // its enqueuer: for a job a run enqueued, whoever asked for the run (src/jobs/effects.ts)
    const payer = doc.record.enqueuer
    if (c.ledger === undefined) return
    try {
      c.ledger.payee.chargeJob(payer, `job:${id}`, total)
    } catch (err) {
      logger.warn({ event: 'job-charge-failed', id, code: CovenantError.from(err).code })
    }
  }

  /**
   * The check at enqueue: the enqueuer's account with this keeper can pay for one attempt (at this
   * node's price, within the job's budget), and the budget can. PAYMENT_REQUIRED otherwise, with
   * what to pay in its details, as an executor's admission has.
   */
  function admitJob(record: JobRecord): void {
    if (c.ledger === undefined || record.enqueuer === self) return
    const price = c.covenant().config.execute
    const least = record.k * price.basePrice
    const payee = c.ledger.payee
    if (record.budget < least)
      throw new CovenantError(
        'PAYMENT_REQUIRED',
        `the job's budget of ${record.budget} ncr cannot pay ${record.k} executors' base price of ${price.basePrice} ncr here`,
        { details: { payer: record.enqueuer, payee: self, budget: record.budget, least } },
      )
    const need = Math.min(record.budget, record.k * chargeFor(price, record.fuel))
    const account = payee.account(record.enqueuer)
    if (account.available < need)
      throw new CovenantError(
        'PAYMENT_REQUIRED',
        `${record.enqueuer} has ${account.available} ncr of credit left with ${self}, and an attempt of the job may cost ${need} ncr`,
        {
          details: {
            payer: record.enqueuer,
            payee: self,
            outstanding: account.outstanding,
            exposure: account.exposure,
            limit: account.limit,
            maxCharge: need,
            received: account.received,
            payUpTo: account.received + need - account.available,
          },
        },
      )
  }

  /** Keeps `state` if it wins over the held one; tells the watchers and the scan. */
  function keep(id: string, state: JobState): JobState | undefined {
    const merged = store.merge(id, state)
    if (merged === undefined) return undefined
    if (merged.changed) {
      changed(id)
      if (!isSettled(merged.state) && merged.state.runAt <= Date.now() + scanIntervalMs) scanSoon()
    }
    return merged.state
  }

  // ── checking what others hand this node ────────────────────────────────────────────────────

  /**
   * Checks a state another node offers for a job held here, as far as it can be checked without a
   * view: a cancellation is the enqueuer's, a success's certificate is for an attempt of this job
   * and certifies the output it comes with by q receipts. Readers check the certificate against
   * their own view (the SDK does); a keeper trusts its fellow keepers for the rest.
   */
  function checkState(job: { record: JobRecord; id: string }, state: JobState): void {
    if (state.status === 'cancelled') {
      if (state.cancel === null)
        throw new CovenantError('JOB_INVALID', 'a cancelled state carries its cancellation')
      verifyCancel(state.cancel, job)
    }
    if (state.status === 'succeeded') {
      const result = state.result
      if (result === null) throw new CovenantError('JOB_INVALID', 'a success carries its result')
      const cert = result.certificate
      matchDispatch(job, cert.request)
      if (requestId(cert.request) !== cert.id)
        throw new CovenantError('JOB_INVALID', 'the certificate’s id is not its request’s')
      if (outputHash(result.output) !== cert.outputHash)
        throw new CovenantError('JOB_INVALID', 'the result’s output is not the certified one')
      const signers = new Set(
        cert.receipts
          .filter((r) => r.request === cert.id && r.outputHash === cert.outputHash)
          .map((r) => r.executor),
      )
      if (signers.size < job.record.q)
        throw new CovenantError(
          'JOB_INVALID',
          `the certificate has fewer than ${job.record.q} agreeing receipts`,
        )
    }
  }

  /** Holds a job another node hands over (its doc, and its state if it has one); answers with what is held. */
  async function hold(docValue: unknown, stateValue: unknown | undefined): Promise<ItemReply> {
    return keepHeld(await checkHeld(docValue, stateValue))
  }

  type Held = { doc: JobDoc; id: string; offered: JobState }

  /** {@link hold}'s checks: the doc, the enqueuer's credit for a new job, the state handed with it. */
  async function checkHeld(docValue: unknown, stateValue: unknown | undefined): Promise<Held> {
    if (!storesHere()) throw new CovenantError('COVENANT_REFUSED', 'this node does not keep jobs')
    const { doc, record, id } = await checkDoc(docValue, verifyRun)
    let offered: JobState
    if (stateValue === undefined) {
      // a signed job handed in to be enqueued; a function's is paid for by whoever asked for its
      // run (its caller, or the job it was an attempt of), whose run is certified already: its jobs
      // are its effects, taken as they come (docs/jobs.md)
      if (!('origin' in record) && !store.has(id)) admitJob(record)
      offered = initialState(record)
    } else {
      offered = parseState(stateValue)
      checkState({ record, id }, offered)
    }
    return { doc, id, offered }
  }

  /** {@link hold}'s keeping, of a job checked. */
  function keepHeld({ doc, id, offered }: Held): ItemReply {
    const put = store.put(id, doc, offered)
    if (put.changed) {
      changed(id)
      if (!isSettled(put.state)) scanSoon()
    }
    return sameState(put.state, offered) ? { id, kept: true } : { id, state: encodeState(put.state) }
  }

  /** Takes a state offered for a job; `missing` when the job is not held here. */
  function takeOffer(id: string, bytes: Uint8Array): ItemReply {
    const stored = store.get(id)
    if (stored === undefined) return { id, missing: true }
    // the state held, offered again (a sync round, a fellow keeper's answer): nothing to take
    if (isEncodingOf(stored.state, bytes)) return { id, kept: true }
    const offered = parseState(dagCbor.decode(bytes))
    if (wins(offered, stored.state)) checkState(stored, offered)
    const held = keep(id, offered) ?? stored.state
    return sameState(held, offered) ? { id, kept: true } : { id, state: encodeState(held) }
  }

  // ── the protocol ────────────────────────────────────────────────────────────────────────────

  async function onRequest(msg: JobsRequest): Promise<unknown> {
    switch (msg.type) {
      case 'put': {
        // each job checked on its own (one refused leaves the others), then all kept in one commit
        const checked: Array<Held | { error: ItemReply }> = []
        for (const item of msg.jobs) {
          try {
            const doc = dagCbor.decode(item.doc)
            const state = item.state === undefined ? undefined : dagCbor.decode(item.state)
            checked.push(await checkHeld(doc, state))
          } catch (err) {
            checked.push({ error: { error: errorOf(err) } })
          }
        }
        return {
          results: store.batch(() =>
            checked.map((c) => {
              if ('error' in c) return c.error
              try {
                return keepHeld(c)
              } catch (err) {
                return { id: c.id, error: errorOf(err) }
              }
            }),
          ),
        }
      }
      case 'offer':
        // each state checked and kept on its own (one refused leaves the others), all in one commit
        return {
          results: store.batch(() =>
            msg.states.map((item) => {
              try {
                return takeOffer(item.id, item.state)
              } catch (err) {
                return { id: item.id, error: errorOf(err) }
              }
            }),
          ),
        }
      case 'get': {
        const jobs = []
        for (const id of msg.ids) {
          const stored = store.get(id)
          if (stored === undefined) continue
          jobs.push({
            id,
            state: encodeState(stored.state),
            ...(msg.docs ? { doc: canonicalBytes(stored.doc) } : {}),
          })
        }
        return { jobs }
      }
    }
  }

  await net.handle(JOBS_PROTOCOL, {
    schema: JobsRequestSchema,
    maxBytes: MAX_JOBS_MESSAGE_BYTES,
    maxInboundStreams: 32,
    maxPerPeer: 16,
    runTimeoutMs: 30_000,
    // keepers trade a few small messages per job attempt: one stream each way for all of them
    // (net/session.ts) instead of a new stream per message
    sessions: true,
    handler: (msg) => onRequest(msg),
  })

  // ── talking to other keepers ───────────────────────────────────────────────────────────────

  function ask(peer: string, msg: unknown): Promise<ItemReply[]> {
    return net
      .request(peer, JOBS_PROTOCOL, msg, {
        timeoutMs: replicateTimeoutMs,
        maxReplyBytes: MAX_JOBS_MESSAGE_BYTES,
        schema: ItemsReplySchema,
        session: true,
      })
      .then((r) => r.results)
  }

  type PutItem = { doc: Uint8Array; state?: Uint8Array }
  type OfferItem = { id: string; state: Uint8Array }
  const puts = new Map<string, Batcher<PutItem>>()
  const offers = new Map<string, Batcher<OfferItem>>()
  const putsTo = (peer: string): Batcher<PutItem> => {
    let b = puts.get(peer)
    if (b === undefined) {
      b = new Batcher(
        (jobs) => ask(peer, { type: 'put', jobs }),
        (i) => i.doc.length + (i.state?.length ?? 0),
      )
      puts.set(peer, b)
    }
    return b
  }
  const offersTo = (peer: string): Batcher<OfferItem> => {
    let b = offers.get(peer)
    if (b === undefined) {
      b = new Batcher(
        (states) => ask(peer, { type: 'offer', states }),
        (i) => i.state.length + 64,
      )
      offers.set(peer, b)
    }
    return b
  }

  /**
   * What a keeper's answer about one job means here: true if it holds the state `offered` to it
   * (`kept`) or a better one.
   */
  function heard(peer: string, id: string, reply: ItemReply, offered: JobState): boolean {
    if ('error' in reply) {
      logger.debug({ event: 'job-refused', id, peer, code: reply.error.code })
      return false
    }
    if ('kept' in reply) {
      // what it kept is what it was offered, which this node may have moved past meanwhile
      confirm(id, peer, offered)
      return true
    }
    if ('state' in reply) {
      const stored = store.get(id)
      if (stored === undefined) return false
      try {
        const theirs = parseState(dagCbor.decode(reply.state))
        if (wins(theirs, stored.state)) checkState(stored, theirs)
        // kept even when it loses: the charges it carries are merged (paid)
        keep(id, theirs)
        confirm(id, peer, theirs)
        return true
      } catch (err) {
        logger.warn({ event: 'job-state-refused', id, peer, code: CovenantError.from(err).code })
        return false
      }
    }
    return false
  }

  /** Offers this node's state of a job to one keeper (with the record, if it lacks the job). */
  async function offerTo(
    peer: string,
    stored: StoredJob,
    state = encodeState(stored.state),
  ): Promise<boolean> {
    let reply = await offersTo(peer).push({ id: stored.id, state })
    if ('missing' in reply) reply = await putsTo(peer).push({ doc: canonicalBytes(stored.doc), state })
    return heard(peer, stored.id, reply, stored.state)
  }

  /**
   * Offers the job's state to its other live keepers. With `wait`, resolves once each took it or
   * failed to in time, with those that hold it; otherwise in the background.
   */
  async function replicate(id: string, wait: boolean): Promise<string[]> {
    const stored = store.get(id)
    if (stored === undefined) return []
    const others = keepersOf(id).filter((p) => p !== self && isLive(p))
    const encoded = encodeState(stored.state)
    const sent = others.map((peer) =>
      offerTo(peer, stored, encoded).then(
        (ok) => (ok ? peer : undefined),
        (err) => {
          logger.debug({ event: 'job-offer-failed', id, peer, code: CovenantError.from(err).code })
          return undefined
        },
      ),
    )
    if (!wait) return []
    const held = await Promise.all(sent)
    return held.filter((p): p is string => p !== undefined)
  }

  /** Hands a new job to its keepers; resolves with those that took it, and why the others did not. */
  async function distribute(
    doc: JobDoc,
    id: string,
  ): Promise<{ keepers: string[]; errors: CovenantError[] }> {
    const keepers = keepersOf(id)
    if (keepers.length === 0) throw new CovenantError('COVENANT_REFUSED', 'no live node keeps jobs')
    const docBytes = canonicalBytes(doc)
    const errors: CovenantError[] = []
    const results = await Promise.all(
      keepers.map(async (peer) => {
        try {
          const reply =
            peer === self ? await hold(doc, undefined) : await putsTo(peer).push({ doc: docBytes })
          if ('error' in reply) throw CovenantError.fromJSON(reply.error)
          if (peer !== self) heard(peer, id, reply, initialState(doc.record))
          return peer
        } catch (err) {
          errors.push(CovenantError.from(err))
          return undefined
        }
      }),
    )
    return { keepers: results.filter((p): p is string => p !== undefined), errors }
  }

  // ── tickets: a fresh selection of executors after each failed attempt ──────────────────────

  let ticketEpoch = -1
  const tickets: Array<Promise<Ticket>> = []
  /** Mints, between other work, the first ticket from nonce `from` on. */
  async function mintSliced(epoch: number, from: number): Promise<Ticket> {
    for (let start = from; ; start += MINT_SLICE) {
      const t = mintTicket(self, epoch, start, MINT_SLICE)
      if (t !== undefined) return t
      await new Promise((r) => setImmediate(r))
    }
  }
  /**
   * This node's `i`-th ticket of the hour: the first attempts of every job it dispatches use the
   * 0th, an attempt after f failures the f-th, so the executors are chosen afresh (ranked by
   * another selection key) each time an attempt failed, and every verifier accepts them.
   */
  function ticket(i: number, now: number): Promise<Ticket> {
    const epoch = epochOf(now)
    if (epoch !== ticketEpoch) {
      ticketEpoch = epoch
      tickets.length = 0
    }
    while (tickets.length <= i) {
      const previous = tickets.at(-1)
      tickets.push(
        previous === undefined ? mintSliced(epoch, 0) : previous.then((t) => mintSliced(epoch, t.nonce + 1)),
      )
    }
    return tickets[i]
  }

  // ── dispatch ────────────────────────────────────────────────────────────────────────────────

  /** Jobs whose attempt (or commit) this node is working on now. */
  const working = new Set<string>()
  /**
   * One attempt at a time per namespace read, on this dispatcher, from reading its head to
   * committing: jobs that read a namespace usually write it, and of attempts that overlap on it
   * all but one would conflict. A lane is held by one job; the jobs that found it held wait in
   * order, and each release wakes the first (the others are looked at again after a while anyway).
   */
  const lanes = new Map<string, { holder: string; waiting: Set<string> }>()
  const random = Math.random
  /**
   * Attempts this node runs at once: halved each time one is deferred for want of room on the
   * network, grown by one with each that got an answer, up to `maxRunning`; so a dispatcher backs
   * off a network it overloads instead of failing its jobs.
   */
  let inFlight = maxRunning
  const slower = (): void => {
    inFlight = Math.max(1, Math.floor(inFlight / 2))
  }
  const faster = (): void => {
    inFlight = Math.min(maxRunning, inFlight + 1)
  }

  /** Releases the lanes `id` holds, waking the first job that waits for each. */
  function release(id: string, stores: readonly string[]): void {
    for (const ns of stores) {
      const lane = lanes.get(ns)
      if (lane?.holder !== id) continue
      lanes.delete(ns)
      for (const next of lane.waiting) {
        lane.waiting.delete(next)
        const waiter = running && !working.has(next) ? store.get(next) : undefined
        if (waiter === undefined || isSettled(waiter.state)) continue
        store.lookAt(next, Date.now())
        // the rest keep waiting behind it
        if (lane.waiting.size > 0) waitingFor.set(ns, lane.waiting)
        break
      }
    }
    if (running) scanSoon()
  }
  /** Jobs still waiting for a lane just released, until the job woken for it takes it. */
  const waitingFor = new Map<string, Set<string>>()

  /** Applies `change` to the job's current state, if it gives a new one; keeps it and returns it. */
  function transition(
    id: string,
    change: (state: JobState, stored: StoredJob) => JobState | undefined,
  ): JobState | undefined {
    const stored = store.get(id)
    if (stored === undefined) return undefined
    const next = change(stored.state, stored)
    if (next === undefined) return undefined
    return keep(id, next)
  }

  /** Whether attempt `n` of this node is still the job's current one. */
  const isMine = (state: JobState, n: number): boolean =>
    state.status === 'running' &&
    state.dispatcher === self &&
    state.attempts.some((a) => a.n === n && a.outcome === 'running' && a.dispatcher === self)

  /**
   * Ends attempt `n`, which this node dispatched: `end` makes the next state from the current one
   * and what this node charged for the job before (its own note), and the enqueuer is charged what
   * the attempt added. Returns the state kept, or undefined if `end` gave none.
   */
  function endOwn(
    id: string,
    n: number,
    end: (state: JobState, stored: StoredJob, own: number) => JobState | undefined,
  ): JobState | undefined {
    const stored = store.get(id)
    if (stored === undefined) return undefined
    const own = store.chargedHere(id)
    const next = end(stored.state, stored, own)
    if (next === undefined) return undefined
    const charged = next.attempts.find((a) => a.n === n && a.dispatcher === self)?.charged ?? 0
    const kept = keep(id, next)
    if (charged > 0) chargeEnqueuer(id, stored.doc, own + charged)
    return kept
  }

  /** An attempt that ended without a success: recorded if it is still the job's current one. */
  async function attemptEnded(
    id: string,
    n: number,
    end: (state: JobState, record: JobRecord, own: number) => JobState,
  ): Promise<void> {
    const next = endOwn(id, n, (state, stored, own) =>
      isMine(state, n) ? end(state, stored.record, own) : undefined,
    )
    if (next !== undefined) await replicate(id, true)
  }

  /**
   * Why the enqueuer cannot pay for another attempt, if it cannot: the job's budget is spent, or
   * its account with this dispatcher is past its credit (it pays ahead to go on).
   */
  function unpaidBy(doc: JobDoc, state: JobState): { code: string; message: string } | undefined {
    const record = doc.record
    const payer = record.enqueuer
    if (c.ledger === undefined || payer === self) return undefined
    // by every branch of the job this node has heard of: all of them spend the one budget
    const charged = paidTotal(state)
    if (charged >= record.budget)
      return {
        code: 'PAYMENT_REQUIRED',
        message: `the job's budget of ${record.budget} ncr is spent (${charged} ncr charged)`,
      }
    const account = c.ledger.payee.account(payer)
    if (account.outstanding >= account.limit)
      return {
        code: 'PAYMENT_REQUIRED',
        message: `${payer} owes ${self} ${account.outstanding} ncr, its whole credit of ${account.limit} ncr`,
      }
    return undefined
  }

  /** What a certified attempt cost in all; its executors are owed it. 0 with payments off. */
  function owe(id: string, certificate: Certificate, conflicts: InvokeResult['conflicts']): number {
    if (c.ledger === undefined) return 0
    try {
      return c.ledger.owe(certificate, conflicts)
    } catch (err) {
      // the run stands whatever befalls its accounting (an executor's covenant this node has not seen)
      logger.warn({ event: 'job-attempt-unpaid', id, code: CovenantError.from(err).code })
      return 0
    }
  }

  /**
   * Runs an attempt's request through this node's gateway. Executors that refuse it until paid
   * (this node, as the request's signer, is past its credit with them: its attempts in flight
   * there, or what it owes since its last payment) are paid what is owed and ahead what as many
   * such requests as it has attempts out lack, and the same request goes once more, as the SDK does for a caller: no
   * executor runs a request twice, and the dispatcher's want of credit is not the job's failure.
   */
  async function invokePaying(
    request: Parameters<typeof c.gateway.invoke>[0],
    fuel: number,
  ): Promise<InvokeResult> {
    try {
      return await c.gateway.invoke(request)
    } catch (err) {
      const e = CovenantError.from(err)
      const payees = (e.details as { payees?: unknown } | undefined)?.payees
      if (e.code !== 'PAYMENT_REQUIRED' || !Array.isArray(payees) || c.ledger === undefined) throw err
      const view = c.view()
      const need = (payee: string): number | undefined => {
        const covenant = view.peers.get(payee)?.covenant
        // ahead for as many attempts as this node has out now: its attempts refused together
        // (they ask the same executors, by its first ticket) each pay ahead, seeing one another's
        // payments or not, and go again together
        const attempts = Math.max(1, working.size)
        return covenant === undefined ? undefined : attempts * chargeFor(covenant.config.execute, fuel)
      }
      if (!(await c.ledger.payFor(payees.map(String), need))) throw err
      return c.gateway.invoke(request)
    }
  }

  /** One attempt of a job this node dispatches; see the module comment. */
  async function attempt(stored: StoredJob): Promise<void> {
    const { id, record } = stored
    const now = Date.now()
    if (now >= record.deadline) {
      transition(id, (s) =>
        failJob(s, { code: 'DEADLINE_EXCEEDED', message: 'the job’s deadline passed' }, now),
      )
      await replicate(id, true)
      return
    }
    const state = stored.state
    const unpaid = unpaidBy(stored.doc, state)
    if (unpaid !== undefined) {
      transition(id, (s) => (s.version === state.version ? failJob(s, unpaid, now) : undefined))
      await replicate(id, true)
      return
    }
    const tookOver = state.status === 'running' && state.dispatcher !== self
    const n = state.started + 1
    let made: ReturnType<typeof dispatchRequest>
    try {
      const t = await ticket(Math.min(state.failures, JOB_LIMITS.retries), now)
      const heads = await Promise.all(record.stores.map((ns) => c.stores.head(ns)))
      const reads = Object.fromEntries(record.stores.map((ns, i) => [ns, heads[i]]))
      made = dispatchRequest(c.key, { record, id }, n, t, Date.now(), reads)
    } catch (err) {
      // No attempt could be made: a job that never can fails now; otherwise it waits a scan or two.
      const e = CovenantError.from(err)
      if (isRetryable(e.code) && e.code !== 'INTERNAL') throw e
      transition(id, (s) => (s.version === state.version ? failJob(s, errorOf(e), Date.now()) : undefined))
      await replicate(id, true)
      return
    }
    const { request, id: req } = made
    const started = transition(id, (s) =>
      s.version === state.version
        ? startAttempt(s, {
            dispatcher: self,
            request: req,
            now: Date.now(),
            leaseUntil: request.deadline + LEASE_MARGIN_MS,
          })
        : undefined,
    )
    if (started === undefined) return // its state moved meanwhile; the next scan looks again
    if (tookOver) {
      metrics.takeovers.inc()
      logger.info({ event: 'job-takeover', id, attempt: n, from: state.dispatcher })
    }
    logger.debug({ event: 'job-dispatch', id, attempt: n, request: req })
    const invoked = invokePaying(request, record.fuel)
    invoked.catch(() => {})
    if (crashOnDispatch) {
      await replicate(id, true)
      crash()
    } else void replicate(id, false).catch(() => {})

    let result: InvokeResult
    try {
      result = await invoked
    } catch (err) {
      release(id, record.stores)
      const e = CovenantError.from(err)
      metrics.attempts.inc({ outcome: e.code })
      const tried = triedOf((e.details as { tried?: Parameters<typeof triedOf>[0] } | undefined)?.tried)
      // the network had no room for it (too few executors in view, or busy ones): not the job's failure
      const deferred =
        DEFERRING_ERRORS.has(e.code) || (e.code === 'NO_QUORUM' && tried.some((t) => t.error === 'PEER_BUSY'))
      if (deferred) slower()
      const end = {
        n,
        now: Date.now(),
        error: errorOf(e),
        receipts: receiptsOf(e),
        tried,
        random,
        backoff: options.backoff,
      }
      await attemptEnded(id, n, (s, r, own) =>
        deferred ? attemptDeferred(s, r, { ...end, own }) : attemptFailed(s, r, { ...end, own }),
      )
      return
    }
    faster()
    const { certificate, output } = result
    // This node signed the attempt's request: it owes its executors (docs/jobs.md, "Who pays for a job").
    const cost = owe(id, certificate, result.conflicts)
    const receipts = [...certificate.receipts, ...result.conflicts.map((x) => x.receipt)].slice(0, 64)
    const tried = triedOf(result.tried)
    if (output.error !== null) {
      release(id, record.stores)
      metrics.attempts.inc({ outcome: output.error.code })
      await attemptEnded(id, n, (s, r, own) =>
        attemptFailed(s, r, {
          n,
          now: Date.now(),
          error: output.error!,
          receipts,
          tried,
          cost,
          own,
          random,
          backoff: options.backoff,
        }),
      )
      return
    }
    // Cancelled, or another attempt's success recorded: this run's writes are not committed.
    const current = store.get(id)?.state.status
    if (current === undefined || current === 'cancelled' || current === 'succeeded') return
    await commit(stored, n, { certificate, output }, receipts, tried, cost)
  }

  /**
   * A certified run of attempt `n`: its writes committed keyed by the job id, then its success
   * recorded. When every namespace it writes answers that this job's writes are there already (an
   * earlier attempt's, whose dispatcher died before recording its success), the result is that
   * attempt's run, read from the entry: its value and the jobs it enqueued go with the writes that
   * took effect.
   */
  async function commit(
    stored: StoredJob,
    n: number,
    run: { certificate: Certificate; output: Output },
    receipts: Receipt[],
    tried: AttemptRecord['tried'],
    cost: number,
  ): Promise<void> {
    const { id } = stored
    let commits: EffectCommit[]
    try {
      // jobs nest only so deep (their keepers would refuse them): the run's writes do not commit
      if (jobsOf(run.output).length > 0 && jobDepth(stored.doc) >= MAX_JOB_DEPTH)
        throw new CovenantError(
          'JOB_INVALID',
          `job ${id} is ${MAX_JOB_DEPTH} jobs deep: the jobs its run enqueued would be deeper than jobs nest`,
        )
      commits = await commitWrites(c.stores, { id, record: stored.record }, run)
      release(id, stored.record.stores)
    } catch (err) {
      release(id, stored.record.stores)
      const e = CovenantError.from(err)
      const conflict = e.code === 'WRITE_CONFLICT'
      // too few holders reachable: not the job's failure (its writes may have landed, see DEFERRING_ERRORS)
      const deferred = DEFERRING_ERRORS.has(e.code)
      if (deferred) slower()
      metrics.attempts.inc({ outcome: conflict ? 'conflict' : e.code })
      const end = {
        n,
        now: Date.now(),
        error: errorOf(e),
        receipts,
        tried,
        cost,
        random,
        backoff: options.backoff,
      }
      await attemptEnded(id, n, (s, r, own) =>
        conflict
          ? attemptConflicted(s, r, { ...end, own })
          : deferred
            ? attemptDeferred(s, r, { ...end, own })
            : attemptFailed(s, r, { ...end, own }),
      )
      return
    }
    metrics.attempts.inc({ outcome: 'succeeded' })
    const wrote = commits.some((x) => !x.duplicate)
    if (crashAfterCommit && wrote) crash()
    const took = commits.length > 0 && !wrote ? await runOfEntry(id, commits[0]) : undefined
    const result = { ...(took ?? run), commits }
    const sealed = endOwn(id, n, (s, _, own) =>
      s.status === 'succeeded' || (s.status === 'cancelled' && !wrote)
        ? undefined
        : succeed(s, {
            n,
            now: Date.now(),
            result,
            receipts,
            tried,
            cost,
            own,
            budget: stored.record.budget,
          }),
    )
    if (sealed === undefined) return
    // A success with jobs to hand on is replicated before they are: a keeper that takes over
    // finishes handing them. One without is marked committed at once, and replicated once.
    if (jobsOf(result.output).length > 0) await replicate(id, true)
    await finish(id)
  }

  /** The run whose writes a namespace committed under job `id` (its entry's proof), if it can be read. */
  async function runOfEntry(
    id: string,
    at: EffectCommit,
  ): Promise<{ certificate: Certificate; output: Output } | undefined> {
    try {
      const entry = await c.stores.entry(at.ns, at.seq)
      if (entry.kind !== 'function' || entry.id !== id) return undefined
      const certificate = CertificateSchema.safeParse(entry.proof.certificate)
      const output = OutputSchema.safeParse(entry.proof.output)
      if (!certificate.success || !output.success) return undefined
      return { certificate: certificate.data, output: output.data }
    } catch (err) {
      logger.warn({ event: 'job-entry-unread', id, ns: at.ns, code: CovenantError.from(err).code })
      return undefined
    }
  }

  /** A success's further jobs: handed to their keepers, then the success marked committed. */
  async function finish(id: string): Promise<void> {
    const stored = store.get(id)
    const result = stored?.state.result
    if (stored === undefined || result === null || result === undefined || result.committed) return
    if (jobsOf(result.output).length > 0) {
      // the job's doc goes with its run's jobs: its enqueuer pays for them
      const docs = await enqueuedDocs(
        { certificate: result.certificate, output: result.output, job: stored.doc },
        verifyRun,
      )
      for (const { doc, id: child } of docs) {
        const { keepers, errors } = await distribute(doc, child)
        if (keepers.length === 0)
          throw errors[0] ?? new CovenantError('COVENANT_REFUSED', 'no live node keeps jobs')
      }
    }
    transition(id, (s) =>
      s.status === 'succeeded' && s.result?.committed === false ? markCommitted(s, Date.now()) : undefined,
    )
    // Not waited for: the dispatcher's slot goes to the next job now. A keeper that misses it is
    // offered it again by the next sync round (its confirmation is what the round compares), and
    // until then holds the job running under this dispatcher's lease, or succeeded.
    void replicate(id, false).catch(() => {})
  }

  /** Works on one due job: its next attempt, or a success's commit. `stores` are the lanes it holds. */
  async function work(id: string, stores: readonly string[]): Promise<void> {
    working.add(id)
    for (const ns of stores) {
      lanes.set(ns, { holder: id, waiting: waitingFor.get(ns) ?? new Set() })
      waitingFor.delete(ns)
    }
    try {
      const stored = store.get(id)
      if (stored === undefined || isSettled(stored.state)) return
      if (stored.state.status === 'succeeded') await finish(id)
      else if (!isTerminal(stored.state.status)) await attempt(stored)
    } catch (err) {
      if (!running) return // stopped mid-attempt: its keepers take it up again
      const e = CovenantError.from(err)
      logger.warn({ event: 'job-work-failed', id, code: e.code, message: e.message })
      store.lookAt(id, Date.now() + scanIntervalMs)
    } finally {
      working.delete(id)
      release(id, stores)
    }
  }

  // ── the scan: what is due, and whose it is ─────────────────────────────────────────────────

  let scanning = false
  let rescan = false
  let scanTimer: NodeJS.Timeout | undefined

  function scanSoon(): void {
    if (!running) return
    if (scanning) {
      rescan = true
      return
    }
    if (scanTimer !== undefined) clearTimeout(scanTimer)
    scanTimer = setTimeout(scan, 0)
  }

  /** Starts every due job this node dispatches, up to `maxRunning` at once; puts off the others. */
  function scan(): void {
    scanTimer = undefined
    if (!running) return
    scanning = true
    let full = false
    try {
      const now = Date.now()
      for (const id of store.due(now, SCAN_PAGE)) {
        if (working.has(id)) {
          store.lookAt(id, now + scanIntervalMs)
          continue
        }
        const stored = store.get(id)
        if (stored === undefined) continue
        const s = stored.state
        if (keepersOf(id)[0] !== self) {
          store.lookAt(id, now + STANDBY_SCANS * scanIntervalMs)
          continue
        }
        // another live keeper runs it (it was the dispatcher before this node's view changed)
        if (
          s.status === 'running' &&
          s.dispatcher !== self &&
          s.dispatcher !== null &&
          isLive(s.dispatcher) &&
          s.runAt > now
        ) {
          store.lookAt(id, s.runAt)
          continue
        }
        if (working.size >= inFlight) {
          full = true
          break
        }
        const held = stored.record.stores.map((ns) => lanes.get(ns)).find((l) => l !== undefined)
        if (held !== undefined && s.status !== 'succeeded') {
          held.waiting.add(id)
          store.lookAt(id, now + STANDBY_SCANS * scanIntervalMs)
          continue
        }
        store.lookAt(id, now + scanIntervalMs)
        void work(id, s.status === 'succeeded' ? [] : stored.record.stores).catch(() => {})
      }
    } finally {
      scanning = false
    }
    if (rescan) {
      rescan = false
      scanSoon()
      return
    }
    // With every slot taken, the next attempt to end scans again.
    const next = full ? undefined : store.nextLook()
    const wait =
      next === undefined ? scanIntervalMs : Math.min(scanIntervalMs, Math.max(5, next - Date.now()))
    scanTimer = setTimeout(scan, wait)
    scanTimer.unref()
  }

  // ── catch-up and hand-over ─────────────────────────────────────────────────────────────────

  let syncing: Promise<void> | undefined
  let syncTimer: NodeJS.Timeout | undefined
  let soonTimer: NodeJS.Timeout | undefined

  /** One round over every job held: offers each to the keepers that lack its state, drops what is handed over, prunes. */
  function syncRound(): Promise<void> {
    if (syncing !== undefined) return syncing
    syncing = (async () => {
      for (let after = ''; running; ) {
        const page = store.versions({ after, limit: SYNC_PAGE })
        const sent: Array<Promise<unknown>> = []
        for (const row of page) {
          const keepers = keepersOf(row.id)
          const others = keepers.filter((p) => p !== self)
          const byPeer = confirmed.get(row.id)
          const lacking = others.filter((p) => byPeer?.get(p) !== markOf(row))
          if (!keepers.includes(self) && lacking.length === 0 && others.length > 0 && !working.has(row.id)) {
            store.drop(row.id)
            confirmed.delete(row.id)
            logger.debug({ event: 'job-handed-over', id: row.id, keepers: others })
            continue
          }
          if (lacking.length === 0) continue
          const stored = store.get(row.id)
          if (stored === undefined) continue
          for (const peer of lacking) sent.push(offerTo(peer, stored).catch(() => false))
        }
        await Promise.all(sent)
        if (page.length < SYNC_PAGE) break
        after = page[page.length - 1].id
        await new Promise((r) => setImmediate(r))
      }
      while (running && store.prune(Date.now() - retentionMs, 1000) === 1000)
        await new Promise((r) => setImmediate(r))
    })().finally(() => {
      syncing = undefined
    })
    return syncing
  }

  function syncSoon(): void {
    if (!running || soonTimer !== undefined) return
    soonTimer = setTimeout(() => {
      soonTimer = undefined
      void syncRound().catch((err) =>
        logger.warn({ event: 'job-sync-failed', code: CovenantError.from(err).code }),
      )
    }, 100)
    soonTimer.unref()
  }

  /**
   * The view changed: keepers are recomputed, every job is looked at again when due, the jobs a
   * dead peer was running at once, and the keepers compare states soon.
   */
  function viewChanged(peer: string, alive: boolean): void {
    keepersMemo.clear()
    known.forget()
    store.lookAgain()
    if (!alive) for (const id of store.dispatchedBy(peer, 100_000)) store.lookAt(id, Date.now())
    scanSoon()
    syncSoon()
  }

  // ── reading a job: the best state its keepers hold ─────────────────────────────────────────

  /**
   * The job as its live keepers hold it (the winning state), asking every live peer if none of
   * them does. JOB_NOT_FOUND if none holds it; PEER_TIMEOUT if none that answered does and some
   * did not answer.
   */
  async function lookup(id: string): Promise<{ stored: StoredJob; servedBy: string }> {
    let best: { stored: StoredJob; servedBy: string } | undefined
    let silent = 0
    const mine = store.get(id)
    if (mine !== undefined) best = { stored: mine, servedBy: self }
    const consider = (peer: string, state: JobState, doc: JobDoc | undefined): void => {
      if (best === undefined) {
        if (doc !== undefined) best = { stored: { id, doc, record: doc.record, state }, servedBy: peer }
      } else {
        // the winner, with what every state read says each keeper charged (the SDK records that)
        const merged = mergeStates(best.stored.state, state)
        const servedBy = wins(state, best.stored.state) ? peer : best.servedBy
        best = { stored: { ...best.stored, state: merged }, servedBy }
      }
    }
    const askAll = async (peers: string[]): Promise<void> => {
      await Promise.all(
        peers.map(async (peer) => {
          try {
            const reply = await net.request(
              peer,
              JOBS_PROTOCOL,
              { type: 'get', ids: [id], docs: best === undefined },
              {
                timeoutMs: replicateTimeoutMs,
                maxReplyBytes: MAX_JOBS_MESSAGE_BYTES,
                schema: GetReplySchema,
                session: true,
              },
            )
            const got = reply.jobs.find((j) => j.id === id)
            if (got === undefined) return
            const state = parseState(dagCbor.decode(got.state))
            let doc: JobDoc | undefined
            if (got.doc !== undefined) {
              const checked = await checkDoc(dagCbor.decode(got.doc), verifyRun)
              if (checked.id !== id) return
              doc = checked.doc
            }
            const record = doc?.record ?? best?.stored.record
            if (record !== undefined) checkState({ record, id }, state)
            consider(peer, state, doc)
          } catch {
            // a keeper that does not answer, or answers badly, is left out
            silent++
          }
        }),
      )
    }
    const keepers = keepersOf(id).filter((p) => p !== self && isLive(p))
    await askAll(keepers)
    if (best === undefined)
      await askAll(
        c.peers
          .live()
          .map((p) => p.id)
          .filter((p) => !keepers.includes(p)),
      )
    if (best === undefined && silent > 0)
      throw new CovenantError(
        'PEER_TIMEOUT',
        `no node that answered holds job ${id}, and ${silent} did not answer`,
      )
    if (best === undefined) throw new CovenantError('JOB_NOT_FOUND', `no keeper holds job ${id}`)
    return best
  }

  function infoOf(found: { stored: StoredJob; servedBy: string }): JobInfo {
    const { stored, servedBy } = found
    const { record, state } = stored
    return {
      id: stored.id,
      status: state.status,
      version: state.version,
      fn: record.fn,
      export: record.export,
      enqueuer: record.enqueuer,
      origin: 'origin' in record ? record.origin : null,
      createdAt: record.createdAt,
      runAfter: record.runAfter,
      deadline: record.deadline,
      retries: record.retries,
      k: record.k,
      q: record.q,
      budget: record.budget,
      charges: state.charges,
      paid: paidOf(state),
      runAt: state.runAt,
      dispatcher: state.dispatcher,
      started: state.started,
      failures: state.failures,
      conflicts: state.conflicts,
      attempts: state.attempts.map((a) => ({ ...a, receipts: a.receipts.map(receiptToJSON) })),
      result:
        state.result === null
          ? null
          : {
              output: state.result.output,
              certificate: certificateToJSON(state.result.certificate),
              commits: state.result.commits,
              committed: state.result.committed,
            },
      error: state.error,
      updatedAt: state.updatedAt,
      doc: toBase64(canonicalBytes(stored.doc)),
      keepers: keepersOf(stored.id),
      servedBy,
    }
  }

  function summaryOf(stored: StoredJob): JobSummary {
    const { record, state } = stored
    return {
      id: stored.id,
      status: state.status,
      version: state.version,
      fn: record.fn,
      export: record.export,
      enqueuer: record.enqueuer,
      createdAt: record.createdAt,
      runAt: state.runAt,
      updatedAt: state.updatedAt,
      started: state.started,
      failures: state.failures,
      error: state.error,
    }
  }

  const JobIdSchema = cidString('dag-cbor')
  function parseId(text: string): string {
    if (!JobIdSchema.safeParse(text).success)
      throw new CovenantError('INVALID_INPUT', `not a job id: ${JSON.stringify(text.slice(0, 80))}`)
    return text
  }

  function decodeBase64Cbor(text: string, what: string): unknown {
    const bytes = fromBase64(text)
    if (bytes === undefined) throw new CovenantError('JOB_INVALID', `${what} is not base64`)
    try {
      return dagCbor.decode(bytes)
    } catch (err) {
      throw new CovenantError('JOB_INVALID', `${what} is not DAG-CBOR`, { cause: err })
    }
  }

  /** A job's state now and at each change, until it settles or `signal` aborts. */
  async function* watch(first: JobInfo, signal: AbortSignal): AsyncGenerator<JobInfo> {
    const id = first.id
    let info = first
    let last = -1
    const wakers = watchers.get(id) ?? new Set()
    watchers.set(id, wakers)
    let wake = (): void => {}
    const waker = () => wake()
    wakers.add(waker)
    try {
      while (!signal.aborted && running) {
        if (info.version !== last) {
          last = info.version
          yield info
        }
        if (isTerminal(info.status) && (info.status !== 'succeeded' || info.result?.committed === true))
          return
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer)
            signal.removeEventListener('abort', done)
            resolve()
          }
          const timer = setTimeout(done, WATCH_POLL_MS)
          wake = done
          signal.addEventListener('abort', done, { once: true })
        })
        if (signal.aborted) return
        info = infoOf(await lookup(id))
      }
    } finally {
      wakers.delete(waker)
      if (wakers.size === 0) watchers.delete(id)
    }
  }

  // ── HTTP ────────────────────────────────────────────────────────────────────────────────────

  route(c.http, enqueueJobRoute, async function enqueueJob({ body }) {
    const { record, id } = verifyNewJob(decodeBase64Cbor(body.job, 'the job'))
    if ('origin' in record)
      throw new CovenantError(
        'JOB_INVALID',
        'a job a function enqueued comes with its run: POST /v1/jobs/enqueued',
      )
    const { keepers, errors } = await distribute({ record }, id)
    if (keepers.length === 0)
      throw errors[0] ?? new CovenantError('COVENANT_REFUSED', 'no live node keeps jobs')
    return { id, keepers, wanted: replicas }
  })

  /** Hands the jobs a certified run enqueued to their keepers; a no-op for those already there. */
  async function enqueueRun(run: RunProof): Promise<Array<{ id: string; keepers: string[] }>> {
    const docs = await enqueuedDocs(run, verifyRun)
    const jobs = []
    for (const { doc, id } of docs) {
      const { keepers, errors } = await distribute(doc, id)
      if (keepers.length === 0)
        throw errors[0] ?? new CovenantError('COVENANT_REFUSED', 'no live node keeps jobs')
      jobs.push({ id, keepers })
    }
    return jobs
  }
  c.gateway.provideJobs(enqueueRun)

  route(c.http, enqueueRunRoute, async function enqueueRunJobs({ body }) {
    let certificate: Certificate
    try {
      certificate = certificateFromJSON(body.certificate)
    } catch (err) {
      throw new CovenantError('INVALID_CERTIFICATE', 'malformed certificate', { cause: err })
    }
    return { jobs: await enqueueRun({ certificate, output: body.output }) }
  })

  route(c.http, jobRoute, async function job({ params }) {
    return infoOf(await lookup(parseId(params.id)))
  })

  route(c.http, jobEventsRoute, async function jobEvents({ params }, _reply, gone) {
    // an unknown job is an error reply, not an empty stream
    return watch(infoOf(await lookup(parseId(params.id))), gone)
  })

  route(c.http, cancelJobRoute, async function cancel({ params, body }) {
    const id = parseId(params.id)
    const found = await lookup(id)
    const signed = verifyCancel(decodeBase64Cbor(body.cancel, 'the cancellation'), {
      record: found.stored.record,
      id,
    })
    if (isTerminal(found.stored.state.status)) return infoOf(found)
    const cancelled = cancelJob(found.stored.state, signed, Date.now())
    const encoded = encodeState(cancelled)
    const keepers = keepersOf(id)
    await Promise.all(
      keepers.map(async (peer) => {
        try {
          if (peer === self) {
            if (store.has(id)) keep(id, cancelled)
            else await hold(found.stored.doc, cancelled)
          } else {
            let reply = await offersTo(peer).push({ id, state: encoded })
            if ('missing' in reply)
              reply = await putsTo(peer).push({ doc: canonicalBytes(found.stored.doc), state: encoded })
          }
        } catch {
          // a keeper that missed it learns it from the others
        }
      }),
    )
    return infoOf(await lookup(id))
  })

  route(c.http, listJobsRoute, async function listJobs({ query }) {
    const rows = store.list({
      status: query.status,
      enqueuer: query.enqueuer,
      after: query.after,
      limit: query.limit,
    })
    return {
      jobs: rows.map(summaryOf),
      next: rows.length === query.limit ? rows[rows.length - 1].id : null,
      counts: store.counts(),
      servedBy: self,
    }
  })

  let unsubscribe: (() => void) | undefined
  return {
    name: 'jobs',
    async start() {
      running = true
      unsubscribe = c.peers.onChange((peer, entry) => viewChanged(peer, entry.alive))
      syncTimer = setInterval(() => void syncRound().catch(() => {}), syncIntervalMs)
      syncTimer.unref()
      // the hour's first ticket, minted ahead between other work
      void ticket(0, Date.now())
      store.lookAgain()
      scanSoon()
      syncSoon()
    },
    async stop() {
      running = false
      unsubscribe?.()
      for (const t of [scanTimer, soonTimer]) if (t !== undefined) clearTimeout(t)
      if (syncTimer !== undefined) clearInterval(syncTimer)
      for (const wakers of watchers.values()) for (const wake of wakers) wake()
      await net.unhandle(JOBS_PROTOCOL).catch(() => {})
      await syncing?.catch(() => {})
      store.close()
    },
  }
}
