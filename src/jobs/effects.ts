/**
 * Jobs a function enqueues (`ctx.enqueue`), and what a job's keepers hold for a job: its record,
 * with the proof an enqueued record needs.
 *
 * A run's output lists the jobs it enqueued (`jobs`, beside `json`, `logs` and `error`), and the
 * receipts sign the output, so the certificate of the run is what authorizes them: nobody can
 * add a job to a run, and the same run always gives the same records, whose ids follow from the
 * run's request id and each job's index. Handing the same run's jobs to their keepers twice is a
 * no-op. Checking a certificate needs a view of the network, so the checker is injected
 * ({@link VerifyRun}); the node's checks the certificate against its own view.
 *
 * Whoever asked for the run pays for its jobs: their enqueuer is the run's caller, or, for a run
 * that is an attempt of a job (a keeper signed its request, naming the job in its nonce), that
 * job's enqueuer. Such a run's jobs travel with the job's own doc (`proof.job`), which every keeper
 * checks as it checks any job's (signed by its enqueuer, or enqueued by a run it checks in turn),
 * and which the run must be an attempt of. Jobs enqueued by jobs nest at most
 * {@link MAX_JOB_DEPTH} deep.
 */
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { OutputSchema, type SignedRequest } from '../exec/index.ts'
import { canonicalBytes } from '../keys/index.ts'
import { EFFECT_LIMITS, type EffectJob, EffectJobSchema } from '../sandbox/index.ts'
import {
  checkJob,
  defaultBudget,
  dispatchOf,
  type EnqueuedJobRecord,
  EnqueuedJobRecordSchema,
  JOB_DEFAULTS,
  type JobRecord,
  jobId,
  matchDispatch,
  SignedJobRecordSchema,
} from './record.ts'

/** exec's output with the jobs the run enqueued, which its receipts sign. Other effects may ride along. */
export const OutputWithJobsSchema = z.looseObject({
  ...OutputSchema.shape,
  jobs: z.array(EffectJobSchema).max(EFFECT_LIMITS.jobs),
})

/** What a run's certificate and output are, checked: the request, its id, and the jobs the receipts sign. */
export interface CertifiedRun {
  request: SignedRequest
  id: string
  jobs: EffectJob[]
}

/** A run's certificate and the output it certifies; for a job's attempt, that job's doc too. */
export interface RunProof {
  certificate: unknown
  output: unknown
  job?: unknown
}

/** How many jobs deep a job enqueued by a job may be (the first job a caller enqueued or a run's is 0). */
export const MAX_JOB_DEPTH = 8

/**
 * Checks a run for whoever holds a view: the certificate against that view, the output against
 * the certificate, and that the receipts sign the output's `jobs`. Throws INVALID_CERTIFICATE.
 */
export type VerifyRun = (proof: RunProof) => Promise<CertifiedRun>

/** The jobs listed in an output (none when it lists none, or is not an output that can). */
export function jobsOf(output: unknown): EffectJob[] {
  const parsed = OutputWithJobsSchema.safeParse(output)
  return parsed.success ? parsed.data.jobs : []
}

/**
 * The records of the jobs a run enqueued. Each follows from the run alone: the run's limits, its
 * caller as enqueuer (or `payer`, the enqueuer of the job the run is an attempt of), its timestamp
 * as creation time, the job's options or the defaults, and a nonce from the run's request id and
 * the job's index.
 */
export function enqueuedRecords(
  run: { request: SignedRequest; id: string },
  jobs: readonly EffectJob[],
  payer?: string,
): EnqueuedJobRecord[] {
  const { request, id } = run
  return jobs.map((job, index) => {
    const k = job.options.replicas ?? JOB_DEFAULTS.k
    const retries = job.options.retries ?? JOB_DEFAULTS.retries
    const runAfter = request.timestamp + (job.options.runAfterMs ?? 0)
    return {
      v: 1,
      fn: job.fn,
      export: job.export,
      args: job.args,
      fuel: request.fuel,
      memoryMiB: request.memoryMiB,
      timeoutMs: request.timeoutMs,
      // a job reads the namespaces the run that enqueued it did
      stores: Object.keys(request.reads ?? {}),
      k,
      q: job.options.quorum ?? Math.min(JOB_DEFAULTS.q, k),
      runAfter,
      retries,
      deadline: runAfter + JOB_DEFAULTS.windowMs,
      createdAt: request.timestamp,
      nonce: `${id}/${index}`,
      // who asked for the run pays, within the default budget for the run's fuel
      enqueuer: payer ?? request.caller,
      budget: defaultBudget({ k, retries, fuel: request.fuel }),
      origin: { request: id, index },
    }
  })
}

/** What keepers hold for a job: a signed record, or an enqueued one with the run that enqueued it. */
export const JobDocSchema = z.union([
  z.strictObject({ record: SignedJobRecordSchema }),
  z.strictObject({
    record: EnqueuedJobRecordSchema,
    // job: the doc of the job the run is an attempt of, checked as a doc (checkDoc)
    proof: z.strictObject({ certificate: z.unknown(), output: z.unknown(), job: z.unknown().optional() }),
  }),
])
export type JobDoc = z.infer<typeof JobDocSchema>

function sameBytes(a: unknown, b: unknown): boolean {
  const x = canonicalBytes(a)
  const y = canonicalBytes(b)
  return x.length === y.length && x.every((v, i) => v === y[i])
}

/** How many jobs deep a doc is: the jobs it comes with, one inside the other (0 unless a job's run enqueued it). */
export function jobDepth(doc: JobDoc): number {
  let depth = 0
  const jobOf = (d: unknown) => (d as { proof?: { job?: unknown } }).proof?.job
  for (let job = jobOf(doc); job !== undefined; job = jobOf(job)) depth++
  return depth
}

/**
 * Who pays for a checked run's jobs: its caller, or, when the run is an attempt of a job, that
 * job's enqueuer, from the job's doc (`job`), which is checked here (JOB_INVALID when it is
 * missing, is not the job the run's request names, or the request does not ask what it does).
 */
async function payerOfRun(run: CertifiedRun, job: unknown, verifyRun: VerifyRun, depth: number) {
  const named = dispatchOf(run.request)
  if (named === undefined) {
    if (job !== undefined)
      throw new CovenantError('JOB_INVALID', `the run ${run.id} is no job's attempt, yet comes with a job`)
    return run.request.caller
  }
  if (job === undefined)
    throw new CovenantError(
      'JOB_INVALID',
      `the run ${run.id} is an attempt of job ${named.job}: its jobs come with that job, whose enqueuer pays for them`,
    )
  if (depth >= MAX_JOB_DEPTH)
    throw new CovenantError('JOB_INVALID', `jobs enqueued by jobs nest at most ${MAX_JOB_DEPTH} deep`)
  const parent = await check(job, verifyRun, depth + 1)
  if (parent.id !== named.job)
    throw new CovenantError(
      'JOB_INVALID',
      `the run ${run.id} is an attempt of job ${named.job}, not ${parent.id}`,
    )
  matchDispatch(parent, run.request)
  return parent.record.enqueuer
}

async function check(
  value: unknown,
  verifyRun: VerifyRun,
  depth: number,
): Promise<{ doc: JobDoc; record: JobRecord; id: string }> {
  const parsed = JobDocSchema.safeParse(value)
  if (!parsed.success) throw new CovenantError('JOB_INVALID', `invalid job: ${z.prettifyError(parsed.error)}`)
  const doc = parsed.data
  const { record, id } = checkJob(doc.record)
  if ('proof' in doc) {
    const run = await verifyRun(doc.proof)
    const payer = await payerOfRun(run, doc.proof.job, verifyRun, depth)
    const origin = doc.record.origin
    const expected =
      run.id === origin.request ? enqueuedRecords(run, run.jobs, payer)[origin.index] : undefined
    if (expected === undefined || !sameBytes(expected, doc.record))
      throw new CovenantError('INVALID_CERTIFICATE', `the run ${run.id} did not enqueue job ${id}`)
  }
  return { doc, record, id }
}

/**
 * Checks what a keeper is handed for a job: a signed record's signature, or an enqueued record
 * against the run that enqueued it (through `verifyRun`), and, for a run that is a job's attempt,
 * that job's doc in turn. No clock: a record already kept is checked again as it is handed over.
 * Returns the record and its id.
 */
export function checkDoc(
  value: unknown,
  verifyRun: VerifyRun,
): Promise<{ doc: JobDoc; record: JobRecord; id: string }> {
  return check(value, verifyRun, 0)
}

/**
 * The docs of every job a certified run enqueued, each with the run as its proof (and, for a job's
 * attempt, the job's doc, `proof.job`), and their ids. The run is checked once here; each keeper
 * checks it again.
 */
export async function enqueuedDocs(
  proof: RunProof,
  verifyRun: VerifyRun,
): Promise<Array<{ doc: JobDoc; id: string }>> {
  const run = await verifyRun(proof)
  const payer = await payerOfRun(run, proof.job, verifyRun, 0)
  const carried = proof.job === undefined ? {} : { job: proof.job }
  return enqueuedRecords(run, run.jobs, payer).map((record) => ({
    doc: { record, proof: { certificate: proof.certificate, output: proof.output, ...carried } },
    id: jobId(record),
  }))
}
