/**
 * Jobs through a node's HTTP API: enqueue one (signed here with the caller's key) and get its id
 * at once, then — from this client or any other, now or much later — read its state, watch it,
 * wait for its result or cancel it (`client.job(id)`). Every request is built from its route's
 * spec in `src/api` and every reply parsed with it.
 *
 * A result is not taken on a node's word: `wait()` checks that the record hashes to the job id,
 * that the certificate is for an attempt of exactly that job, and that it verifies against the
 * client's own view of the network, as `invoke` does.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { z } from 'zod'
import {
  cancelJobRoute,
  type EnqueueJobReply,
  type EnqueueRunReply,
  enqueueJobRoute,
  enqueueRunRoute,
  type JobInfo,
  jobEventsRoute,
  jobRoute,
  type RouteSpec,
} from '../api/index.ts'
import { fromBase64, toBase64 } from '../encoding/index.ts'
import { CovenantError, isErrorCode } from '../errors/index.ts'
import {
  type Certificate,
  certificateFromJSON,
  certificateToJSON,
  type Output,
  type TrustInput,
  type VerifiedCertificate,
} from '../exec/index.ts'
import { checkJob, createJob, JobDocSchema, matchDispatch, signCancel } from '../jobs/index.ts'
import type { PrivateKey } from '../keys/index.ts'
import type { CallJson } from './store.ts'

export type { JobInfo }

/** How the client opens a route's raw response (for event streams). */
export type CallRaw = (
  spec: RouteSpec,
  init: { params?: Record<string, string>; signal?: AbortSignal },
) => Promise<Response>

export interface EnqueueOptions {
  /** executors per attempt (k) @default 3 */
  replicas?: number
  /** matching receipts needed (q) @default 2 */
  quorum?: number
  /** fuel per attempt, one of LIMIT_TIERS.fuel @default 2000 */
  fuel?: number
  /** memory per attempt, one of LIMIT_TIERS.memoryMiB @default 64 */
  memoryMiB?: number
  /** wall clock per attempt and executor, one of LIMIT_TIERS.timeoutMs @default 5000 */
  timeoutMs?: number
  /** how long after now the first attempt may start, ms @default 0 */
  runAfterMs?: number
  /** attempts after the first that may fail @default 3 */
  retries?: number
  /** how long after `runAfterMs` the job may keep trying, ms @default 1 h */
  windowMs?: number
  /** the namespaces the function reads: each attempt fixes each at its head when it starts */
  stores?: string[]
  /** the enqueuer's key @default the caller key file (Node only) */
  key?: PrivateKey
  /** the record's nonce @default random */
  nonce?: string
  /**
   * the most the enqueuer pays for the job, ncr: its keepers charge what the executors of its
   * attempts cost, up to this @default every try at the default covenant's price for the whole fuel
   */
  budget?: number
}

/** What `wait` resolves with: the value of the run whose effects took effect, and its proof. */
export interface JobOutcome {
  value: unknown
  output: Output & Record<string, unknown>
  certificate: Certificate
  job: JobInfo
}

export interface JobsInit {
  call: CallJson
  raw: CallRaw
  callerKey: () => Promise<PrivateKey>
  /** checks a certificate against the client's view (the client's `verify`) */
  verify: (
    certificate: Certificate,
    options: { output: Output; trust?: TrustInput },
  ) => Promise<VerifiedCertificate>
  /** reads an event stream with a route's event schema */
  events: <S extends z.ZodType>(res: Response, schema: S) => AsyncGenerator<z.output<S>>
  /** records the job's charges in its enqueuer's ledger, if this client holds the enqueuer's key */
  charged: (info: JobInfo) => Promise<void>
}

/**
 * Signs a job with the enqueuer's key and hands it to a node; resolves with its id as soon as its
 * keepers hold it. A node that cannot be reached, or cannot reach the keepers, is asked again (up
 * to 3 times) with the same record, which is the same job.
 */
export async function enqueueJob(
  init: JobsInit,
  fn: string,
  exportName: string,
  args: unknown[],
  options: EnqueueOptions = {},
): Promise<EnqueueJobReply> {
  const key = options.key ?? (await init.callerKey())
  const now = Date.now()
  const runAfter = now + (options.runAfterMs ?? 0)
  const { record, id } = createJob(
    key,
    {
      fn,
      export: exportName,
      args,
      fuel: options.fuel,
      memoryMiB: options.memoryMiB,
      timeoutMs: options.timeoutMs,
      k: options.replicas,
      q: options.quorum,
      stores: options.stores,
      runAfter,
      retries: options.retries,
      deadline: options.windowMs === undefined ? undefined : runAfter + options.windowMs,
      nonce: options.nonce,
      budget: options.budget,
    },
    now,
  )
  // The same signed record again is the same job: a try whose answer was lost is safe to repeat.
  const body = { job: toBase64(dagCbor.encode(record)) }
  let reply: EnqueueJobReply | undefined
  for (let attempt = 1; reply === undefined; attempt++) {
    try {
      reply = await init.call(enqueueJobRoute, { body })
    } catch (err) {
      const e = CovenantError.from(err)
      if (attempt >= ENQUEUE_TRIES || !PASSING.has(e.code)) throw e
      await new Promise((r) => setTimeout(r, 200 * attempt))
    }
  }
  if (reply.id !== id)
    throw new CovenantError('PROTOCOL_ERROR', `the node named the job ${reply.id}, not ${id}`)
  return reply
}

/** Hands the jobs a certified run enqueued (`ctx.enqueue`) to their keepers. */
export function enqueueRun(
  init: JobsInit,
  certificate: Certificate,
  output: Output,
): Promise<EnqueueRunReply> {
  return init.call(enqueueRunRoute, { body: { certificate: certificateToJSON(certificate), output } })
}

/** How many times `enqueue` hands the same record to a node that could not be reached. */
const ENQUEUE_TRIES = 3

/** Failures of a node or a stream, not of the job: `enqueue` and `wait` ask again. */
const PASSING: ReadonlySet<string> = new Set([
  'NODE_UNREACHABLE',
  'PROTOCOL_ERROR',
  'PEER_TIMEOUT',
  'PEER_UNREACHABLE',
])

const isDone = (info: JobInfo): boolean => info.status !== 'queued' && info.status !== 'running'

/** One job, by id, through one node. */
export class JobHandle {
  readonly id: string
  readonly #init: JobsInit

  constructor(id: string, init: JobsInit) {
    this.id = id
    this.#init = init
  }

  /**
   * The job's state: the best its live keepers hold. JOB_NOT_FOUND if none holds it. A client
   * holding the enqueuer's key records what the job was charged in its ledger.
   */
  async status(): Promise<JobInfo> {
    const info = await this.#init.call(jobRoute, { params: { id: this.id } })
    await this.#init.charged(info)
    return info
  }

  /**
   * The job's state now and at each change, until it settles (a success once the jobs it
   * enqueued are created) or `signal` aborts.
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<JobInfo> {
    const signal = options.signal ?? new AbortController().signal
    try {
      const res = await this.#init.raw(jobEventsRoute, { params: { id: this.id }, signal })
      yield* this.#init.events(res, jobEventsRoute.event)
    } catch (err) {
      if (!signal.aborted) throw err
    }
  }

  /**
   * Waits until the job succeeds, fails or is cancelled, following its events (and asking again
   * when a stream breaks). Resolves with the value of the succeeding run, checked here: the
   * record hashes to the id, the certificate is for an attempt of exactly this job, and it
   * verifies against this client's view. A job that failed throws its last error's code
   * (`FUEL_EXHAUSTED`, `NO_QUORUM`, …) with the job in `details`; a cancelled one JOB_CANCELLED.
   */
  async wait(
    options: {
      /** give up (PEER_TIMEOUT) after this long @default until the job's deadline passes */
      timeoutMs?: number
      signal?: AbortSignal
      /** each state as it comes */
      onUpdate?: (info: JobInfo) => void
      trust?: TrustInput
    } = {},
  ): Promise<JobOutcome> {
    const controller = new AbortController()
    const stop = () => controller.abort()
    options.signal?.addEventListener('abort', stop, { once: true })
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(stop, options.timeoutMs)
    try {
      let info: JobInfo | undefined
      while (!controller.signal.aborted) {
        try {
          for await (const event of this.events({ signal: controller.signal })) {
            info = event
            options.onUpdate?.(event)
            if (isDone(event)) break
          }
        } catch (err) {
          const e = CovenantError.from(err)
          if (!PASSING.has(e.code)) throw e
        }
        if (info !== undefined && isDone(info)) return await this.#outcome(info, options.trust)
        if (info !== undefined && info.deadline < Date.now() - 60_000 && options.timeoutMs === undefined)
          break
        // the stream broke (a node restarting): ask again shortly
        await new Promise((r) => setTimeout(r, 250))
      }
      throw new CovenantError('PEER_TIMEOUT', `job ${this.id} did not end in time`, {
        details: { job: this.id, status: info?.status },
      })
    } finally {
      if (timer !== undefined) clearTimeout(timer)
      options.signal?.removeEventListener('abort', stop)
    }
  }

  /** Cancels the job, signed by its enqueuer's key; a job that already ended stays as it is. */
  async cancel(options: { key?: PrivateKey } = {}): Promise<JobInfo> {
    const key = options.key ?? (await this.#init.callerKey())
    const cancel = signCancel(key, this.id)
    return this.#init.call(cancelJobRoute, {
      params: { id: this.id },
      body: { cancel: toBase64(dagCbor.encode(cancel)) },
    })
  }

  async #outcome(info: JobInfo, trust?: TrustInput): Promise<JobOutcome> {
    await this.#init.charged(info)
    if (info.status === 'failed') {
      const e = info.error ?? { code: 'INTERNAL', message: 'the job failed without an error' }
      throw new CovenantError(isErrorCode(e.code) ? e.code : 'USER_ERROR', e.message, {
        details: { job: this.id, attempts: info.attempts },
      })
    }
    if (info.status === 'cancelled') throw new CovenantError('JOB_CANCELLED', `job ${this.id} was cancelled`)
    if (info.result === null)
      throw new CovenantError('PROTOCOL_ERROR', 'a succeeded job came without its result')
    const bytes = fromBase64(info.doc)
    const doc = JobDocSchema.safeParse(bytes === undefined ? undefined : safeDecode(bytes))
    if (!doc.success) throw new CovenantError('PROTOCOL_ERROR', 'the node sent a malformed job record')
    const { record, id } = checkJob(doc.data.record)
    if (id !== this.id)
      throw new CovenantError('INVALID_CERTIFICATE', `the node sent the record of job ${id}`)
    const certificate = certificateFromJSON(info.result.certificate)
    matchDispatch({ record, id }, certificate.request)
    const output = info.result.output as JobOutcome['output']
    const { value } = await this.#init.verify(certificate, { output, trust })
    return { value, output, certificate, job: info }
  }
}

function safeDecode(bytes: Uint8Array): unknown {
  try {
    return dagCbor.decode(bytes)
  } catch {
    return undefined
  }
}
