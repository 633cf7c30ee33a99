/**
 * The job record: what a job is, fixed when it is enqueued. Its id is the CID of the record, so a
 * record cannot change under its id, and its keepers (the nodes closest to the id) follow from it.
 *
 * A record comes one of two ways:
 * - **signed** by its enqueuer (`net.enqueue`, `covenant job enqueue`, `POST /v1/jobs`): every
 *   field, and the enqueuer's Ed25519 signature over the rest;
 * - **enqueued by a function** (`ctx.enqueue`): no signature. Every field follows from the run
 *   that enqueued it (its request and the job's place in the output's `jobs`), and the record
 *   travels with that run's certificate and output as its proof, which every keeper checks.
 */
import { z } from 'zod'
import { cidForBytes, cidString, ExportNameSchema, parseCid } from '../content/index.ts'
import { DEFAULT_COVENANT } from '../covenant/index.ts'
import { isJsonValue } from '../encoding/index.ts'
import { CovenantError, issueCode } from '../errors/index.ts'
import {
  createRequest,
  DEFAULT_QUORUM,
  DEFAULT_REPLICAS,
  DEFAULT_REQUEST_LIMITS,
  MAX_CLOCK_SKEW_MS,
  MAX_DEADLINE_AHEAD_MS,
  MAX_REPLICAS,
  RequestBodySchema,
  type SignedRequest,
  type Ticket,
} from '../exec/index.ts'
import {
  canonicalBytes,
  KeyIdSchema,
  keyId,
  type PrivateKey,
  SignatureSchema,
  signValue,
  verifyValue,
} from '../keys/index.ts'
import { chargeFor } from '../ledger/index.ts'

const SECOND = 1000
const HOUR = 3600 * SECOND
const DAY = 24 * HOUR

/** Bounds on a job record; constants of the protocol, so every keeper judges a record alike. */
export const JOB_LIMITS = Object.freeze({
  /** DAG-CBOR bytes of a job's arguments: a job carries keys to its data, not the data */
  argsBytes: 64 * 1024,
  /** attempts after the first that failed (conflicts with other writers do not count) */
  retries: 16,
  /** how far after its creation a job may first run */
  runAfterMs: 30 * DAY,
  /** how long after `runAfter` a job may keep trying */
  windowMs: 30 * DAY,
  /** how far a signed record's `createdAt` may lie ahead of a keeper's clock */
  clockSkewMs: MAX_CLOCK_SKEW_MS,
  /** how old a signed record may be when it is enqueued (it may wait in a client's outbox) */
  maxAgeMs: HOUR,
})

/**
 * The budget a job gets when none is stated: every try (`retries` + 1) of `k` executors at the
 * default covenant's price for the job's whole fuel. Executors that charge more than the default
 * need a budget stated; write conflicts, which retry without counting, spend it too.
 */
export function defaultBudget(r: { k: number; retries: number; fuel: number }): number {
  return Math.min(
    Number.MAX_SAFE_INTEGER,
    r.k * (r.retries + 1) * chargeFor(DEFAULT_COVENANT.execute, r.fuel),
  )
}

/** Defaults of a record, written once: what `createJob` and `ctx.enqueue` fill in. */
export const JOB_DEFAULTS = Object.freeze({
  retries: 3,
  /** a job keeps trying for an hour after `runAfter` */
  windowMs: HOUR,
  k: DEFAULT_REPLICAS,
  q: DEFAULT_QUORUM,
  ...DEFAULT_REQUEST_LIMITS,
})

const Time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const { fuel, memoryMiB, timeoutMs } = RequestBodySchema.shape
/** The most namespaces a job reads (exec's bound on the versions one request fixes). */
const JOB_MAX_STORES = 16

const JobBodyShape = {
  v: z.literal(1),
  /** the function's manifest CID */
  fn: cidString('dag-cbor'),
  export: ExportNameSchema,
  args: z
    .array(z.unknown())
    .max(4096)
    .superRefine((args, ctx) => {
      if (!isJsonValue(args)) ctx.addIssue({ code: 'custom', message: 'args must be JSON values' })
      else if (canonicalBytes(args).length > JOB_LIMITS.argsBytes)
        ctx.addIssue({
          code: 'custom',
          message: `args are at most ${JOB_LIMITS.argsBytes} bytes of DAG-CBOR`,
        })
    }),
  /** limits each attempt asks for, on exec's tiers */
  fuel,
  memoryMiB,
  timeoutMs,
  /**
   * the namespaces the function reads: each attempt's request fixes each at the head its holders
   * report when the attempt starts, so every executor of it reads the same thing
   */
  stores: z.array(cidString('dag-cbor')).max(JOB_MAX_STORES),
  /** executors per attempt, and matching receipts needed */
  k: z.number().int().min(1).max(MAX_REPLICAS),
  q: z.number().int().min(1).max(MAX_REPLICAS),
  /** ms since the epoch: no attempt starts before */
  runAfter: Time,
  /** attempts after the first that may fail before the job does */
  retries: z.number().int().min(0).max(JOB_LIMITS.retries),
  /** ms since the epoch: no attempt starts after; the job then fails with DEADLINE_EXCEEDED */
  deadline: Time,
  createdAt: Time,
  /** makes two identical jobs two jobs */
  nonce: z.string().min(8).max(128),
  /** who asked for the job: may cancel it, and pays for it */
  enqueuer: KeyIdSchema,
  /**
   * the most the enqueuer pays for the job in all, in ncr: its keepers charge it what the
   * executors of its attempts cost, up to this (docs/jobs.md, "Who pays for a job")
   */
  budget: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}

/** A record signed by its enqueuer. */
export const SignedJobRecordSchema = z.strictObject({ ...JobBodyShape, signature: SignatureSchema })
export type SignedJobRecord = z.infer<typeof SignedJobRecordSchema>

/** Where a job enqueued by a function comes from: a run's request and its index in `jobs`. */
export const JobOriginSchema = z.strictObject({
  request: cidString('dag-cbor'),
  index: z.number().int().min(0).max(255),
})
export type JobOrigin = z.infer<typeof JobOriginSchema>

/** A record enqueued by a function (`ctx.enqueue`): no signature, an origin instead. */
export const EnqueuedJobRecordSchema = z.strictObject({ ...JobBodyShape, origin: JobOriginSchema })
export type EnqueuedJobRecord = z.infer<typeof EnqueuedJobRecordSchema>

export const JobRecordSchema = z.union([SignedJobRecordSchema, EnqueuedJobRecordSchema])
export type JobRecord = z.infer<typeof JobRecordSchema>
export type JobBody = Omit<SignedJobRecord, 'signature'>

function invalid(error: z.ZodError, what: string): CovenantError {
  return new CovenantError(issueCode(error, 'JOB_INVALID'), `${what}: ${z.prettifyError(error)}`, {
    details: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  })
}

/** The job id: the CIDv1 (dag-cbor, sha2-256) of the record's DAG-CBOR, in base32. */
export function jobId(record: JobRecord): string {
  return cidForBytes(canonicalBytes(record), 'dag-cbor').toString()
}

/** The point in XOR space whose closest nodes keep the job. */
export function jobKeyBytes(id: string): Uint8Array {
  return parseCid(id).bytes
}

function checkBounds(r: JobBody): void {
  if (r.q > r.k) throw new CovenantError('JOB_INVALID', `quorum q=${r.q} is larger than replicas k=${r.k}`)
  if (r.runAfter < r.createdAt || r.runAfter - r.createdAt > JOB_LIMITS.runAfterMs)
    throw new CovenantError(
      'JOB_INVALID',
      `runAfter is from createdAt to ${JOB_LIMITS.runAfterMs} ms after it`,
    )
  if (r.deadline <= r.runAfter || r.deadline - r.runAfter > JOB_LIMITS.windowMs)
    throw new CovenantError(
      'JOB_INVALID',
      `the deadline is after runAfter, and at most ${JOB_LIMITS.windowMs} ms after it`,
    )
}

/**
 * Checks a record without a clock: its shape and bounds, and a signed record's signature (an
 * enqueued one is checked against its proof, see effects.ts). Returns it with its id.
 */
export function checkJob(value: unknown): { record: JobRecord; id: string } {
  const parsed = JobRecordSchema.safeParse(value)
  if (!parsed.success) throw invalid(parsed.error, 'invalid job')
  const record = parsed.data
  checkBounds(record)
  if ('signature' in record) {
    const { signature, ...body } = record
    if (!verifyValue(record.enqueuer, body, signature))
      throw new CovenantError('INVALID_SIGNATURE', `the job is not signed by its enqueuer ${record.enqueuer}`)
  }
  return { record, id: jobId(record) }
}

/**
 * Checks a signed record handed in at time `now`: {@link checkJob}, then that it was made recently
 * (at most {@link JOB_LIMITS.maxAgeMs} ago, at most the clock skew ahead) and can still run.
 */
export function verifyNewJob(value: unknown, now: number = Date.now()): { record: JobRecord; id: string } {
  const checked = checkJob(value)
  const { createdAt, deadline } = checked.record
  if (createdAt > now + JOB_LIMITS.clockSkewMs)
    throw new CovenantError('JOB_INVALID', 'the job was created in the future')
  if (createdAt < now - JOB_LIMITS.maxAgeMs)
    throw new CovenantError('JOB_INVALID', `the job was created more than ${JOB_LIMITS.maxAgeMs} ms ago`)
  if (deadline <= now) throw new CovenantError('DEADLINE_EXCEEDED', 'the job’s deadline has passed')
  return checked
}

/** What `createJob` takes; everything but `fn` and `export` has a default. */
export const JobInitSchema = z.strictObject({
  fn: z.string(),
  export: z.string(),
  args: z.array(z.unknown()).default([]),
  fuel: z.number().default(JOB_DEFAULTS.fuel),
  memoryMiB: z.number().default(JOB_DEFAULTS.memoryMiB),
  timeoutMs: z.number().default(JOB_DEFAULTS.timeoutMs),
  k: z.number().default(JOB_DEFAULTS.k),
  q: z.number().default(JOB_DEFAULTS.q),
  /** the namespaces the function reads @default none */
  stores: z.array(z.string()).default([]),
  /** ms since the epoch @default createdAt */
  runAfter: z.number().optional(),
  retries: z.number().default(JOB_DEFAULTS.retries),
  /** ms since the epoch @default runAfter + 1 h */
  deadline: z.number().optional(),
  /** @default random */
  nonce: z.string().optional(),
  /** the most the enqueuer pays for the job, ncr @default {@link defaultBudget} */
  budget: z.number().optional(),
})
export type JobInit = z.input<typeof JobInitSchema>

function randomNonce(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join(
    '',
  )
}

/** Builds and signs a job record with the enqueuer's key; `now` is its `createdAt`. */
export function createJob(
  key: PrivateKey,
  init: JobInit,
  now: number = Date.now(),
): { record: SignedJobRecord; id: string } {
  const parsed = JobInitSchema.safeParse(init)
  if (!parsed.success) throw invalid(parsed.error, 'invalid job options')
  const i = parsed.data
  const runAfter = i.runAfter ?? now
  const body = {
    v: 1 as const,
    fn: i.fn,
    export: i.export,
    args: i.args,
    fuel: i.fuel,
    memoryMiB: i.memoryMiB,
    timeoutMs: i.timeoutMs,
    stores: i.stores,
    k: i.k,
    q: i.q,
    runAfter,
    retries: i.retries,
    deadline: i.deadline ?? runAfter + JOB_DEFAULTS.windowMs,
    createdAt: now,
    nonce: i.nonce ?? randomNonce(),
    enqueuer: keyId(key),
    budget: i.budget ?? defaultBudget(i),
  }
  const parsedBody = z.strictObject(JobBodyShape).safeParse(body)
  if (!parsedBody.success) throw invalid(parsedBody.error, 'invalid job')
  checkBounds(parsedBody.data)
  const record: SignedJobRecord = { ...parsedBody.data, signature: signValue(key, parsedBody.data) }
  return { record, id: jobId(record) }
}

// ── dispatch: an attempt is an ordinary request, signed by the keeper that dispatches it ───────

const DISPATCH_PREFIX = 'job/'

/**
 * The nonce of attempt `n` of job `id`: `job/<id>/<n>`. It names the job inside the request the
 * executors sign, so a certificate says which job it ran (see {@link matchDispatch}).
 */
export function dispatchNonce(id: string, attempt: number): string {
  return `${DISPATCH_PREFIX}${id}/${attempt}`
}

/** The job and attempt a request's nonce names, if it is a job's dispatch. */
export function dispatchOf(
  request: Pick<SignedRequest, 'nonce'>,
): { job: string; attempt: number } | undefined {
  const m = /^job\/([a-z2-7]{59})\/([1-9]\d{0,8})$/.exec(request.nonce)
  return m === null ? undefined : { job: m[1], attempt: Number(m[2]) }
}

/** How long one attempt may take, from its start to its deadline. */
export function attemptWindowMs(record: Pick<JobBody, 'timeoutMs'>): number {
  return Math.min(MAX_DEADLINE_AHEAD_MS, Math.max(30 * SECOND, 3 * record.timeoutMs))
}

/**
 * The request of attempt `attempt` of a job, signed by the dispatching keeper with its ticket: the
 * record's function, export, arguments, limits, k and q, and a nonce naming the job; with `reads`,
 * the versions it fixes for the namespaces the record names (their heads when the attempt starts).
 * Its deadline is the attempt window, never past the job's own.
 */
export function dispatchRequest(
  key: PrivateKey,
  job: { record: JobRecord; id: string },
  attempt: number,
  ticket: Ticket,
  now: number = Date.now(),
  reads: Record<string, number> = {},
): { request: SignedRequest; id: string } {
  const { record } = job
  if (record.stores.some((ns) => reads[ns] === undefined))
    throw new CovenantError('INTERNAL', 'an attempt fixes the version of every namespace its job reads')
  const deadline = Math.min(record.deadline, now + attemptWindowMs(record))
  if (deadline <= now) throw new CovenantError('DEADLINE_EXCEEDED', 'the job’s deadline has passed')
  return createRequest(
    key,
    {
      fn: record.fn,
      export: record.export,
      args: record.args,
      fuel: record.fuel,
      memoryMiB: record.memoryMiB,
      timeoutMs: record.timeoutMs,
      k: record.k,
      q: record.q,
      deadline,
      nonce: dispatchNonce(job.id, attempt),
      ticket,
      // only when it reads: a request that reads no namespace is the same on every base
      ...(record.stores.length === 0 ? {} : { reads }),
    },
    now,
  )
}

/**
 * Checks that `request` is an attempt of the job `id` with record `record`: its nonce names the
 * job, and it asks exactly what the record does (function, export, arguments, limits, k, q, the
 * namespaces whose versions it fixes).
 * Whoever signed it, a certificate for such a request is a run of this job. A holder committing
 * effects keyed by the job id checks this. Throws JOB_INVALID.
 */
export function matchDispatch(job: { record: JobRecord; id: string }, request: SignedRequest): number {
  const named = dispatchOf(request)
  if (named === undefined || named.job !== job.id)
    throw new CovenantError('JOB_INVALID', `the request is not an attempt of job ${job.id}`)
  const r = job.record
  const same =
    request.fn === r.fn &&
    request.export === r.export &&
    request.fuel === r.fuel &&
    request.memoryMiB === r.memoryMiB &&
    request.timeoutMs === r.timeoutMs &&
    request.k === r.k &&
    request.q === r.q
  const fixed = Object.keys(request.reads ?? {}).sort()
  const reads = [...r.stores].sort()
  if (
    !same ||
    !bytesEqual(canonicalBytes(request.args), canonicalBytes(r.args)) ||
    fixed.length !== reads.length ||
    fixed.some((ns, i) => ns !== reads[i])
  )
    throw new CovenantError('JOB_INVALID', `the request does not ask what job ${job.id} does`)
  return named.attempt
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

// ── cancellation ──────────────────────────────────────────────────────────────────────────────

const CancelBodyShape = {
  v: z.literal(1),
  job: cidString('dag-cbor'),
  /** ms since the epoch */
  at: Time,
  by: KeyIdSchema,
}
export const JobCancelSchema = z.strictObject({ ...CancelBodyShape, signature: SignatureSchema })
export type JobCancel = z.infer<typeof JobCancelSchema>

/** The enqueuer's signed request to cancel job `id`. */
export function signCancel(key: PrivateKey, id: string, now: number = Date.now()): JobCancel {
  const body = { v: 1 as const, job: id, at: now, by: keyId(key) }
  return { ...body, signature: signValue(key, body) }
}

/** Checks a cancellation of job `id` against its record: signed by its enqueuer. Throws JOB_INVALID. */
export function verifyCancel(value: unknown, job: { record: JobRecord; id: string }): JobCancel {
  const parsed = JobCancelSchema.safeParse(value)
  if (!parsed.success) throw invalid(parsed.error, 'invalid cancellation')
  const cancel = parsed.data
  if (cancel.job !== job.id) throw new CovenantError('JOB_INVALID', `the cancellation names another job`)
  if (cancel.by !== job.record.enqueuer)
    throw new CovenantError('JOB_INVALID', 'only the job’s enqueuer may cancel it')
  const { signature, ...body } = cancel
  if (!verifyValue(cancel.by, body, signature))
    throw new CovenantError('INVALID_SIGNATURE', 'the cancellation is not signed by its signer')
  return cancel
}
