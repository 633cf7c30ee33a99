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
 */
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { OutputSchema, type SignedRequest } from '../exec/index.ts'
import { canonicalBytes } from '../keys/index.ts'
import { EFFECT_LIMITS, type EffectJob, EffectJobSchema } from '../sandbox/index.ts'
import {
  checkJob,
  type EnqueuedJobRecord,
  EnqueuedJobRecordSchema,
  JOB_DEFAULTS,
  type JobRecord,
  jobId,
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

/** A run's certificate and the output it certifies. */
export interface RunProof {
  certificate: unknown
  output: unknown
}

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
 * caller as enqueuer, its timestamp as creation time, the job's options or the defaults, and a
 * nonce from the run's request id and the job's index.
 */
export function enqueuedRecords(
  run: { request: SignedRequest; id: string },
  jobs: readonly EffectJob[],
): EnqueuedJobRecord[] {
  const { request, id } = run
  return jobs.map((job, index) => {
    const k = job.options.replicas ?? JOB_DEFAULTS.k
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
      retries: job.options.retries ?? JOB_DEFAULTS.retries,
      deadline: runAfter + JOB_DEFAULTS.windowMs,
      createdAt: request.timestamp,
      nonce: `${id}/${index}`,
      enqueuer: request.caller,
      origin: { request: id, index },
    }
  })
}

/** What keepers hold for a job: a signed record, or an enqueued one with the run that enqueued it. */
export const JobDocSchema = z.union([
  z.strictObject({ record: SignedJobRecordSchema }),
  z.strictObject({
    record: EnqueuedJobRecordSchema,
    proof: z.strictObject({ certificate: z.unknown(), output: z.unknown() }),
  }),
])
export type JobDoc = z.infer<typeof JobDocSchema>

function sameBytes(a: unknown, b: unknown): boolean {
  const x = canonicalBytes(a)
  const y = canonicalBytes(b)
  return x.length === y.length && x.every((v, i) => v === y[i])
}

/**
 * Checks what a keeper is handed for a job: a signed record's signature, or an enqueued record
 * against the run that enqueued it (through `verifyRun`). No clock: a record already kept is
 * checked again as it is handed over. Returns the record and its id.
 */
export async function checkDoc(
  value: unknown,
  verifyRun: VerifyRun,
): Promise<{ doc: JobDoc; record: JobRecord; id: string }> {
  const parsed = JobDocSchema.safeParse(value)
  if (!parsed.success) throw new CovenantError('JOB_INVALID', `invalid job: ${z.prettifyError(parsed.error)}`)
  const doc = parsed.data
  const { record, id } = checkJob(doc.record)
  if ('proof' in doc) {
    const run = await verifyRun(doc.proof)
    const origin = doc.record.origin
    const expected = run.id === origin.request ? enqueuedRecords(run, run.jobs)[origin.index] : undefined
    if (expected === undefined || !sameBytes(expected, doc.record))
      throw new CovenantError('INVALID_CERTIFICATE', `the run ${run.id} did not enqueue job ${id}`)
  }
  return { doc, record, id }
}

/**
 * The docs of every job a certified run enqueued, each with the run as its proof, and their ids.
 * The run is checked once here; each keeper checks it again.
 */
export async function enqueuedDocs(
  proof: RunProof,
  verifyRun: VerifyRun,
): Promise<Array<{ doc: JobDoc; id: string }>> {
  const run = await verifyRun(proof)
  return enqueuedRecords(run, run.jobs).map((record) => ({
    doc: { record, proof: { certificate: proof.certificate, output: proof.output } },
    id: jobId(record),
  }))
}
