/**
 * A job's state, as its keepers hold it, and the transitions the dispatching keeper makes:
 *
 *   queued ──dispatch──▶ running ──certified run, effects committed──▶ succeeded (committed: false → true)
 *     ▲                     │
 *     └──retry (backoff)────┤ an attempt failed and retries remain, or its writes conflicted
 *                           └──▶ failed (no retries left, a final error, or past the deadline)
 *   queued | running ──enqueuer's cancellation──▶ cancelled
 *
 * Every transition is a whole new state with the version one higher. Keepers never edit a state:
 * they keep whichever of two states {@link wins}, so they converge whatever order they hear in,
 * and hearing a state twice changes nothing. The one exception is `paid`, what each keeper charged
 * the enqueuer: it is merged from both ({@link mergeStates}), since a state that loses may carry a
 * charge its keeper made. A terminal state beats any state still in progress,
 * and a success beats every other end: its effects may have been committed, and effects never
 * come undone. A success is recorded (`committed: false`) before its further jobs are created,
 * and marked `committed` after; a keeper that finds it uncommitted creates them again, which is
 * a no-op for those already there (their ids follow from the run).
 */
import { z } from 'zod'
import { cidForBytes } from '../content/index.ts'
import { CovenantError, type ErrorCode, isErrorCode } from '../errors/index.ts'
import { CertificateSchema, OutputSchema, ReceiptSchema } from '../exec/index.ts'
import { canonicalBytes, KeyIdSchema } from '../keys/index.ts'
import { JobCancelSchema, type JobRecord } from './record.ts'

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
export type JobStatus = (typeof JOB_STATUSES)[number]

const Time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
export const JobErrorSchema = z.strictObject({
  code: z.string().min(1).max(64),
  message: z.string().max(4096),
})
export type JobError = z.infer<typeof JobErrorSchema>

/** Keepers a job's charges are kept for; a job whose dispatchers changed more often fails (JOB_INVALID). */
export const MAX_CHARGING_KEEPERS = 16

type Charges = JobState['charges']
/** Charges as read from anywhere: a state, or a job's info. */
type ChargesRead = ReadonlyArray<{ readonly keeper: string; readonly amount: number }>

/** What `charges` add up to. */
export function chargedOf(state: Pick<JobState, 'charges'>): number {
  return state.charges.reduce((sum, c) => sum + c.amount, 0)
}

/**
 * Each keeper's highest total among `lists`, by keeper id. A keeper past the
 * {@link MAX_CHARGING_KEEPERS} first ids is dropped, so every keeper drops the same ones.
 */
export function maxCharges(...lists: ChargesRead[]): Charges {
  const most = new Map<string, number>()
  for (const list of lists)
    for (const c of list) if (c.amount > (most.get(c.keeper) ?? -1)) most.set(c.keeper, c.amount)
  return [...most]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, MAX_CHARGING_KEEPERS)
    .map(([keeper, amount]) => ({ keeper, amount }))
}

/**
 * What each keeper has charged the enqueuer for the job, by every state of it this node has seen,
 * winning or not: the job's payment, which keepers charge from and the SDK records (docs/jobs.md).
 */
export function paidOf(state: { charges: ChargesRead; paid: ChargesRead }): Charges {
  return maxCharges(state.paid, state.charges)
}

/**
 * What {@link paidOf} adds up to. Every change to `paid` raises it (each keeper's amount only
 * grows), though the state's version stays: keepers compare it to know a fellow keeper lacks a
 * change to `paid` alone.
 */
export function paidTotal(state: { charges: ChargesRead; paid: ChargesRead }): number {
  return chargedOf({ charges: paidOf(state) })
}

/**
 * What the enqueuer was charged for the job in all, by {@link paidOf}: what its SDK records.
 * JOB_INVALID past `budget`, the most the enqueuer signed for: such totals are forged, or two
 * keepers that both dispatched each charged near the budget, and are not recorded.
 */
export function paidWithin(
  state: { charges: ChargesRead; paid: ChargesRead },
  budget: number,
  what = 'the job',
): Charges {
  const paid = paidOf(state)
  const total = chargedOf({ charges: paid })
  if (total > budget)
    throw new CovenantError(
      'JOB_INVALID',
      `${what} is charged ${total} ncr, more than its budget of ${budget} ncr: not recorded`,
    )
  return paid
}

/**
 * The charges (of this state and, grow-only, of all) with `cost` more for `keeper`'s attempt,
 * capped so that all charged stays within `budget`; and what was charged for the attempt.
 *
 * `own` is what the keeper itself knows it charged before (its own note, see docs/jobs.md): what
 * the state says of it may be another keeper's word, so its new total is `own` + the charge, never
 * more. Other keepers' entries are taken as they are; they can only make it charge less.
 */
function addCharge(
  state: JobState,
  keeper: string,
  cost: number,
  budget: number,
  own: number | undefined,
): { charges: Charges; paid: Charges; charged: number } {
  const paid = paidOf(state)
  const before = own ?? paid.find((c) => c.keeper === keeper)?.amount ?? 0
  const others = chargedOf({ charges: paid.filter((c) => c.keeper !== keeper) })
  const charged = Math.max(0, Math.min(cost, budget - others - before))
  const total = before + charged
  const add = (list: Charges): Charges | undefined => {
    const known = list.some((c) => c.keeper === keeper)
    if (!known && list.length >= MAX_CHARGING_KEEPERS) return undefined
    const out = list.map((c) => (c.keeper === keeper ? { ...c, amount: total } : c))
    if (!known) out.push({ keeper, amount: total })
    return out
  }
  const charges = add(state.charges)
  const paidNow = add(paid)
  if (charged === 0 || charges === undefined || paidNow === undefined)
    return { charges: state.charges, paid: state.paid, charged: 0 }
  return { charges, paid: maxCharges(state.paid, paidNow), charged }
}

/** Attempts kept in a state: the most recent ones (conflicting writers may cause many). */
export const MAX_ATTEMPTS_KEPT = 32

export const ATTEMPT_OUTCOMES = [
  'running',
  'succeeded',
  'failed',
  'conflict',
  'deferred',
  'abandoned',
] as const

/** One attempt: an invocation of the job by one keeper, and what came of it. */
export const AttemptRecordSchema = z.strictObject({
  n: z.number().int().min(1),
  dispatcher: KeyIdSchema,
  /** the request's id */
  request: z.string().max(128),
  startedAt: Time,
  endedAt: Time.nullable(),
  /**
   * running; succeeded (certified, effects committed); failed (no certificate, or a certified
   * failure of the function); conflict (certified, but what it read changed before its writes
   * could commit); deferred (the network had no room for it: too few executors, or all busy);
   * abandoned (its dispatcher died or lost the job, another took over)
   */
  outcome: z.enum(ATTEMPT_OUTCOMES),
  error: JobErrorSchema.nullable(),
  /** every signed receipt the attempt got, agreeing or not */
  receipts: z.array(ReceiptSchema).max(64),
  /** ncr its dispatcher charged the enqueuer for it: what its executors cost, within the budget */
  charged: Count.default(0),
  /** the executors asked, and how each answered (the gateway's word) */
  tried: z
    .array(
      z.strictObject({
        peer: z.string().max(128),
        outcome: z.string().max(32),
        error: z.string().max(64).nullable(),
      }),
    )
    .max(64),
})
export type AttemptRecord = z.infer<typeof AttemptRecordSchema>

/** A namespace the run's writes were committed to (the datastore's answer). */
export const EffectCommitSchema = z.strictObject({
  ns: z.string().max(128),
  seq: Count,
  cid: z.string().max(128),
  /** another attempt's writes were committed under this job's id already */
  duplicate: z.boolean(),
})
export type EffectCommit = z.infer<typeof EffectCommitSchema>

export const JobResultSchema = z.strictObject({
  certificate: CertificateSchema,
  /** the certified output; it may carry effects beside `json`, `logs` and `error` */
  output: z.looseObject(OutputSchema.shape),
  /** the writes committed, one per namespace */
  commits: z.array(EffectCommitSchema).max(16),
  /** the further jobs it enqueued are created */
  committed: z.boolean(),
})
export type JobResult = z.infer<typeof JobResultSchema>

export const JobStateSchema = z.strictObject({
  v: z.literal(1),
  status: z.enum(JOB_STATUSES),
  version: z.number().int().min(1),
  /** queued: no attempt before; running: when the dispatcher's lease ends */
  runAt: Time,
  /** the keeper running the current attempt */
  dispatcher: KeyIdSchema.nullable(),
  /** attempts started, ever */
  started: Count,
  /** attempts that failed; more than the record's `retries` fails the job */
  failures: Count,
  /** attempts whose writes conflicted with another writer's; they do not count as failures */
  conflicts: Count,
  attempts: z.array(AttemptRecordSchema).max(MAX_ATTEMPTS_KEPT),
  /**
   * what each keeper charged the enqueuer for the attempts it dispatched, in all (ncr): the job's
   * payment, which keepers agree on as they agree on the rest of the state, and which the
   * enqueuer's ledger and each keeper's record once per job and keeper (docs/jobs.md)
   */
  charges: z
    .array(z.strictObject({ keeper: KeyIdSchema, amount: Count }))
    .max(MAX_CHARGING_KEEPERS)
    .default([]),
  /**
   * what each keeper charged the enqueuer for the job by any state of it, its own or one that lost
   * (ncr): grow-only, each keeper's highest, merged from every state a keeper sees and left out of
   * which state {@link wins}; keepers charge and the SDK records from it ({@link paidOf})
   */
  paid: z
    .array(z.strictObject({ keeper: KeyIdSchema, amount: Count }))
    .max(MAX_CHARGING_KEEPERS)
    .default([]),
  result: JobResultSchema.nullable(),
  /** why it failed or was cancelled */
  error: JobErrorSchema.nullable(),
  cancel: JobCancelSchema.nullable(),
  updatedAt: Time,
})
export type JobState = z.infer<typeof JobStateSchema>

/** Reads a state from elsewhere; JOB_INVALID if it is not one. */
export function parseState(value: unknown): JobState {
  const parsed = JobStateSchema.safeParse(value)
  if (!parsed.success)
    throw new CovenantError('JOB_INVALID', `invalid job state: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/**
 * States already encoded, by object: a keeper compares, encodes and stores one state several times
 * as it takes it (see {@link wins}, {@link sameState}). States are never changed in place: each
 * change makes a new object (see {@link next}), so an object's bytes never change.
 */
const encoded = new WeakMap<JobState, Uint8Array>()
/** Each state's CID with `paid` left out, as {@link wins} compares them. */
const withoutPaid = new WeakMap<JobState, Uint8Array>()

/** A state's bytes: canonical DAG-CBOR. */
export function encodeState(state: JobState): Uint8Array {
  let bytes = encoded.get(state)
  if (bytes === undefined) {
    bytes = canonicalBytes(state)
    encoded.set(state, bytes)
  }
  return bytes
}

/** Whether `bytes` are the encoding of `state`. */
export function isEncodingOf(state: JobState, bytes: Uint8Array): boolean {
  const own = encodeState(state)
  return own.length === bytes.length && own.every((v, i) => v === bytes[i])
}

/** Whether two states are the same, byte for byte. */
export function sameState(a: JobState, b: JobState): boolean {
  if (a.version !== b.version) return false
  return a === b || isEncodingOf(a, encodeState(b))
}

/** Whether the job needs no more work: ended, and (a success) its further jobs created. */
export function isSettled(state: JobState): boolean {
  if (state.status === 'succeeded') return state.result?.committed === true
  return state.status === 'failed' || state.status === 'cancelled'
}

export function isTerminal(status: JobStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled'
}

/** How far along a state is: in progress, ended without effects, succeeded, succeeded and committed. */
function rank(state: JobState): number {
  if (state.status === 'succeeded') return state.result?.committed === true ? 3 : 2
  return state.status === 'failed' || state.status === 'cancelled' ? 1 : 0
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

/**
 * Whether state `a` wins over state `b` (the one a keeper keeps): the further along (see the
 * module comment), then the higher version, then, for two different states of the same version
 * (two keepers that each thought they dispatched), the one whose CID, `paid` left out, sorts
 * first. Every keeper decides alike. A state never wins over itself.
 */
export function wins(a: JobState, b: JobState): boolean {
  const ra = rank(a)
  const rb = rank(b)
  if (ra !== rb) return ra > rb
  if (a.version !== b.version) return a.version > b.version
  return compareBytes(cidWithoutPaid(a), cidWithoutPaid(b)) < 0
}

function cidWithoutPaid(state: JobState): Uint8Array {
  let cid = withoutPaid.get(state)
  if (cid === undefined) {
    cid = cidForBytes(canonicalBytes({ ...state, paid: [] }), 'dag-cbor').bytes
    withoutPaid.set(state, cid)
  }
  return cid
}

/**
 * What a keeper holding `held` keeps when it hears `offered`: the state that {@link wins}, with
 * `paid` merged from both (each keeper's highest), so a losing state's charges are never lost.
 * Whatever order a keeper hears states in, it ends with the same state.
 */
export function mergeStates(held: JobState, offered: JobState): JobState {
  const winner = wins(offered, held) ? offered : held
  return { ...winner, paid: maxCharges(held.paid, held.charges, offered.paid, offered.charges) }
}

/**
 * The state of a job just enqueued. It follows from the record alone, so every keeper starts from
 * the same bytes.
 */
export function initialState(record: JobRecord): JobState {
  return {
    v: 1,
    status: 'queued',
    version: 1,
    runAt: record.runAfter,
    dispatcher: null,
    started: 0,
    failures: 0,
    conflicts: 0,
    attempts: [],
    charges: [],
    paid: [],
    result: null,
    error: null,
    cancel: null,
    updatedAt: record.createdAt,
  }
}

function next(state: JobState, now: number, change: Partial<JobState>): JobState {
  return { ...state, ...change, version: state.version + 1, updatedAt: Math.max(now, state.updatedAt) }
}

function keepLast(attempts: AttemptRecord[]): AttemptRecord[] {
  return attempts.slice(-MAX_ATTEMPTS_KEPT)
}

/** The attempts with the running one (if any) ended as `outcome`. */
function endRunning(
  attempts: AttemptRecord[],
  now: number,
  end: Pick<AttemptRecord, 'outcome' | 'error'> &
    Partial<Pick<AttemptRecord, 'receipts' | 'tried' | 'charged'>>,
  n?: number,
): AttemptRecord[] {
  return attempts.map((a) =>
    a.outcome === 'running' && (n === undefined || a.n === n) ? { ...a, ...end, endedAt: now } : a,
  )
}

/**
 * Attempt `started + 1` begins, dispatched by `dispatcher` with request `request`, its lease
 * ending at `leaseUntil`. An attempt still marked running (its dispatcher died or lost the job) is
 * abandoned: it does not count as a failure.
 */
export function startAttempt(
  state: JobState,
  init: { dispatcher: string; request: string; now: number; leaseUntil: number },
): JobState {
  const n = state.started + 1
  const attempts = endRunning(state.attempts, init.now, {
    outcome: 'abandoned',
    error: { code: 'PEER_UNREACHABLE', message: `taken over by ${init.dispatcher}` },
  })
  attempts.push({
    n,
    dispatcher: init.dispatcher,
    request: init.request,
    startedAt: init.now,
    endedAt: null,
    outcome: 'running',
    error: null,
    receipts: [],
    charged: 0,
    tried: [],
  })
  return next(state, init.now, {
    status: 'running',
    runAt: init.leaseUntil,
    dispatcher: init.dispatcher,
    started: n,
    attempts: keepLast(attempts),
  })
}

/**
 * Outcomes that another attempt would repeat: the function's own deterministic failures, and a
 * job or commit that can never be accepted. Everything else (no quorum, no executors in time, a
 * thrown error that may depend on what the function read, a namespace not reachable) is retried.
 */
export const FINAL_ERRORS: ReadonlySet<string> = new Set<ErrorCode>([
  'FUEL_EXHAUSTED',
  'MEMORY_LIMIT',
  'STACK_OVERFLOW',
  'OUTPUT_TOO_LARGE',
  'LOG_LIMIT',
  'INVALID_ARGS',
  'INVALID_CODE',
  'NEVER_SETTLED',
  'NO_SUCH_EXPORT',
  'BUNDLE_TOO_LARGE',
  'INVALID_REQUEST',
  'JOB_INVALID',
  'GRANT_MALFORMED',
  'GRANT_FORGED',
  'GRANT_EXPIRED',
  'GRANT_WIDENED',
  'GRANT_REVOKED',
  'GRANT_WRONG_AUDIENCE',
  'GRANT_BROKEN_CHAIN',
  'GRANT_MISSING',
  'WRITE_POLICY_UNMET',
  'STORE_LIMIT',
])

/** Whether another attempt could end otherwise than one that failed with `code`. */
export function isRetryable(code: string): boolean {
  return !FINAL_ERRORS.has(code)
}

/** How the waits between attempts grow. */
export interface Backoff {
  /** the wait after the first failure @default 1000 */
  baseMs: number
  /** the longest wait @default 300000 */
  maxMs: number
  /** the wait after the first write conflict @default 50 */
  conflictBaseMs: number
  /** the longest wait after write conflicts @default 5000 */
  conflictMaxMs: number
}

export const DEFAULT_BACKOFF: Readonly<Backoff> = Object.freeze({
  baseMs: 1000,
  maxMs: 300_000,
  conflictBaseMs: 50,
  conflictMaxMs: 5000,
})

/**
 * Exponential backoff with jitter: after the `n`-th failure (n ≥ 1) a wait drawn uniformly from
 * [d/2, d], d = min(max, base · 2^(n−1)). The jitter spreads attempts that failed together (every
 * job of a busy executor, every writer of one key) so they do not collide again.
 */
export function backoffMs(n: number, baseMs: number, maxMs: number, random: () => number): number {
  const d = Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, n - 1)))
  return Math.round(d / 2 + (random() * d) / 2)
}

export interface AttemptEnd {
  /** the attempt that ended */
  n: number
  now: number
  error: JobError
  receipts?: AttemptRecord['receipts']
  tried?: AttemptRecord['tried']
  /** what its executors cost (a certified run), charged to the enqueuer within the budget @default 0 */
  cost?: number
  /**
   * what the dispatcher knows it charged for the job before, by its own note @default what the
   * state says
   */
  own?: number
  random: () => number
  backoff?: Partial<Backoff>
}

/** Attempt `n` ended as `end`: the attempts with it ended, and the job's charges with its cost. */
function ended(
  state: JobState,
  budget: number,
  n: number,
  now: number,
  end: Pick<AttemptRecord, 'outcome' | 'error' | 'receipts' | 'tried'>,
  cost: number,
  own: number | undefined,
): Pick<JobState, 'attempts' | 'charges' | 'paid'> {
  const dispatcher = state.attempts.find((a) => a.n === n && a.outcome === 'running')?.dispatcher
  const { charges, paid, charged } =
    dispatcher === undefined
      ? { charges: state.charges, paid: state.paid, charged: 0 }
      : addCharge(state, dispatcher, cost, budget, own)
  return { attempts: endRunning(state.attempts, now, { ...end, charged }, n), charges, paid }
}

/**
 * Errors that say the network had no room for an attempt rather than that the job failed: too few
 * live executors in the dispatcher's view, executors too busy to take it, or too few of a
 * namespace's holders reachable to commit its writes (they may have landed: the next attempt's
 * commit, keyed by the job id, is then a duplicate). An attempt that ends so is deferred (see
 * {@link attemptDeferred}).
 */
export const DEFERRING_ERRORS: ReadonlySet<string> = new Set<ErrorCode>([
  'NO_EXECUTORS',
  'PEER_BUSY',
  'COMMIT_UNCONFIRMED',
])

/**
 * Attempt `n` found no room on the network (a {@link DEFERRING_ERRORS} error, or no quorum because
 * executors were busy): the job runs again after a backoff that grows with the deferrals in a row,
 * without using a retry, so an overloaded network delays jobs instead of failing them. It fails
 * with that error only if the deadline comes first.
 */
export function attemptDeferred(state: JobState, record: JobRecord, end: AttemptEnd): JobState {
  const b = { ...DEFAULT_BACKOFF, ...end.backoff }
  const { attempts, ...payment } = ended(
    state,
    record.budget,
    end.n,
    end.now,
    { outcome: 'deferred', error: end.error, receipts: end.receipts ?? [], tried: end.tried ?? [] },
    end.cost ?? 0,
    end.own,
  )
  let inARow = 0
  for (let i = attempts.length - 1; i >= 0 && attempts[i].outcome === 'deferred'; i--) inARow++
  const runAt = end.now + backoffMs(Math.max(1, inARow), b.baseMs, b.maxMs, end.random)
  if (runAt >= record.deadline)
    return next(state, end.now, {
      status: 'failed',
      attempts,
      ...payment,
      dispatcher: null,
      error: end.error,
    })
  return next(state, end.now, { status: 'queued', attempts, ...payment, runAt, dispatcher: null })
}

/**
 * Attempt `n` failed: the job is queued again after a backoff, or fails when the error is final,
 * no retries are left, or the next attempt could not start before the deadline.
 */
export function attemptFailed(state: JobState, record: JobRecord, end: AttemptEnd): JobState {
  const b = { ...DEFAULT_BACKOFF, ...end.backoff }
  const { attempts, ...payment } = ended(
    state,
    record.budget,
    end.n,
    end.now,
    { outcome: 'failed', error: end.error, receipts: end.receipts ?? [], tried: end.tried ?? [] },
    end.cost ?? 0,
    end.own,
  )
  const failures = state.failures + 1
  const runAt = end.now + backoffMs(failures, b.baseMs, b.maxMs, end.random)
  const final = !isRetryable(end.error.code) || failures > record.retries || runAt >= record.deadline
  if (final)
    return next(state, end.now, {
      status: 'failed',
      attempts,
      ...payment,
      failures,
      dispatcher: null,
      error: end.error,
    })
  return next(state, end.now, { status: 'queued', attempts, ...payment, failures, runAt, dispatcher: null })
}

/**
 * Attempt `n` ran, but a key it read changed before its writes could commit: it runs again (reading
 * afresh) after a short backoff that grows with the conflicts, without using a retry. It fails
 * with WRITE_CONFLICT only if the deadline comes first.
 */
export function attemptConflicted(state: JobState, record: JobRecord, end: AttemptEnd): JobState {
  const b = { ...DEFAULT_BACKOFF, ...end.backoff }
  const { attempts, ...payment } = ended(
    state,
    record.budget,
    end.n,
    end.now,
    { outcome: 'conflict', error: end.error, receipts: end.receipts ?? [], tried: end.tried ?? [] },
    end.cost ?? 0,
    end.own,
  )
  const conflicts = state.conflicts + 1
  const runAt = end.now + backoffMs(conflicts, b.conflictBaseMs, b.conflictMaxMs, end.random)
  if (runAt >= record.deadline)
    return next(state, end.now, {
      status: 'failed',
      attempts,
      ...payment,
      conflicts,
      dispatcher: null,
      error: end.error,
    })
  return next(state, end.now, { status: 'queued', attempts, ...payment, conflicts, runAt, dispatcher: null })
}

/** The job ends, never having succeeded: past its deadline before an attempt could start. */
export function failJob(state: JobState, error: JobError, now: number): JobState {
  return next(state, now, {
    status: 'failed',
    dispatcher: null,
    error,
    attempts: endRunning(state.attempts, now, { outcome: 'abandoned', error }),
  })
}

/**
 * Attempt `n` succeeded: certified, and its writes (if any) committed. The result is recorded
 * before the further jobs it enqueued are created (`committed: false`).
 */
export function succeed(
  state: JobState,
  init: {
    n: number
    now: number
    result: Omit<JobResult, 'committed'>
    receipts: AttemptRecord['receipts']
    tried?: AttemptRecord['tried']
    /** what its executors cost, charged to the enqueuer within `budget` @default 0 */
    cost?: number
    /** what the dispatcher knows it charged for the job before (see {@link AttemptEnd}) */
    own?: number
    /** the record's budget @default 0: nothing charged */
    budget?: number
  },
): JobState {
  const { attempts, ...payment } = ended(
    state,
    init.budget ?? 0,
    init.n,
    init.now,
    { outcome: 'succeeded', error: null, receipts: init.receipts, tried: init.tried ?? [] },
    init.cost ?? 0,
    init.own,
  )
  return next(state, init.now, {
    status: 'succeeded',
    ...payment,
    attempts: endRunning(attempts, init.now, { outcome: 'abandoned', error: null }),
    dispatcher: null,
    result: { ...init.result, committed: false },
    error: null,
  })
}

/** The success's further jobs are created: nothing is left to do. */
export function markCommitted(state: JobState, now: number): JobState {
  if (state.status !== 'succeeded' || state.result === null)
    throw new CovenantError('INTERNAL', 'only a success is committed')
  return next(state, now, { result: { ...state.result, committed: true } })
}

/** The enqueuer cancelled the job; one that has ended stays as it is. */
export function cancelJob(state: JobState, cancel: NonNullable<JobState['cancel']>, now: number): JobState {
  if (isTerminal(state.status)) return state
  const error = { code: 'JOB_CANCELLED', message: `cancelled by ${cancel.by}` }
  return next(state, now, {
    status: 'cancelled',
    dispatcher: null,
    cancel,
    error,
    attempts: endRunning(state.attempts, now, { outcome: 'abandoned', error }),
  })
}

/** The error a caller waiting for a job that did not succeed gets: its own code when Covenant knows it. */
export function jobFailure(id: string, state: JobState): CovenantError {
  const e = state.error ?? { code: 'INTERNAL', message: 'the job ended without an error' }
  return new CovenantError(isErrorCode(e.code) ? e.code : 'USER_ERROR', e.message, {
    details: { job: id, status: state.status },
  })
}
