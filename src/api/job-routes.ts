/**
 * Jobs over HTTP: enqueue one (signed by its enqueuer) or the jobs a certified run enqueued, read
 * a job's state, watch it as server-sent events, cancel it, list what a node keeps. Any node
 * serves every route, asking the job's keepers. A record and a cancellation travel as base64 of
 * their DAG-CBOR (their only exact spelling); a state as JSON with its signatures in base64.
 */
import { z } from 'zod'
import { CertificateJSONSchema, OutputSchema, ReceiptJSONSchema } from '../exec/index.ts'
import { EffectCommitSchema, JOB_STATUSES, JobErrorSchema, MAX_ITEM_BYTES } from '../jobs/index.ts'
import type { RouteSpec } from './route.ts'

/** Padded base64 of at most `bytes` bytes. */
function base64Of(bytes: number) {
  return z
    .string()
    .max(Math.ceil(bytes / 3) * 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64')
}

const Time = z.number().int().min(0)
const IdParam = z.string().min(1).max(128)

/** `:id` in a path; what it names is checked by the handler. */
export const JobParamsSchema = z.strictObject({ id: IdParam })

export const EnqueueJobBodySchema = z.strictObject({
  /** the signed job record (createJob), base64 of its DAG-CBOR */
  job: base64Of(MAX_ITEM_BYTES),
})

export const EnqueueJobReplySchema = z.object({
  /** the job id: the CID of the record */
  id: z.string(),
  /** the keepers that took it, the dispatcher first */
  keepers: z.array(z.string()),
  /** how many keepers were wanted (k) */
  wanted: z.number().int().min(1),
})
export type EnqueueJobReply = z.infer<typeof EnqueueJobReplySchema>

/** `POST /v1/jobs`: hand a signed job to its keepers; answers with its id at once. */
export const enqueueJobRoute = {
  method: 'POST',
  path: '/v1/jobs',
  body: EnqueueJobBodySchema,
  reply: EnqueueJobReplySchema,
  bodyLimit: 2 * 1024 * 1024,
} as const satisfies RouteSpec

export const EnqueueRunBodySchema = z.strictObject({
  /** the run's quorum certificate (CertificateJSON); checked against the node's view */
  certificate: z.unknown(),
  /** the output it certifies, which lists the jobs the run enqueued */
  output: z.unknown(),
})

export const EnqueueRunReplySchema = z.object({
  jobs: z.array(z.object({ id: z.string(), keepers: z.array(z.string()) })),
})
export type EnqueueRunReply = z.infer<typeof EnqueueRunReplySchema>

/**
 * `POST /v1/jobs/enqueued`: hand the jobs a certified run enqueued (`ctx.enqueue`) to their
 * keepers. Their ids follow from the run, so handing the same run twice is a no-op.
 */
export const enqueueRunRoute = {
  method: 'POST',
  path: '/v1/jobs/enqueued',
  body: EnqueueRunBodySchema,
  reply: EnqueueRunReplySchema,
  bodyLimit: 8 * 1024 * 1024,
} as const satisfies RouteSpec

export const JobAttemptSchema = z.object({
  n: z.number().int().min(1),
  /** the keeper that dispatched it, signing the request */
  dispatcher: z.string(),
  /** the request's id */
  request: z.string(),
  startedAt: Time,
  endedAt: Time.nullable(),
  outcome: z.enum(['running', 'succeeded', 'failed', 'conflict', 'deferred', 'abandoned']),
  error: JobErrorSchema.nullable(),
  /** every signed receipt it got */
  receipts: z.array(ReceiptJSONSchema),
  /** ncr its dispatcher charged the enqueuer for it */
  charged: z.number().int().min(0),
  /** the executors asked, and how each answered (the gateway's word) */
  tried: z.array(z.object({ peer: z.string(), outcome: z.string(), error: z.string().nullable() })),
})

/** A job as a node tells it: the record's terms, the state its keepers agree on, the result. */
export const JobInfoSchema = z.object({
  id: z.string(),
  status: z.enum(JOB_STATUSES),
  /** grows by one with every change of state */
  version: z.number().int().min(1),
  fn: z.string(),
  export: z.string(),
  enqueuer: z.string(),
  /** set for a job a function enqueued: the run's request id and the job's index */
  origin: z.object({ request: z.string(), index: z.number().int() }).nullable(),
  createdAt: Time,
  runAfter: Time,
  deadline: Time,
  retries: z.number().int(),
  k: z.number().int(),
  q: z.number().int(),
  /** the most the enqueuer pays for it, ncr */
  budget: z.number().int().min(0),
  /** what each keeper charged the enqueuer for the attempts it dispatched, ncr, in all */
  charges: z.array(z.object({ keeper: z.string(), amount: z.number().int().min(0) })),
  /**
   * what each keeper charged the enqueuer for the job by every state of it the keepers saw, this
   * one or one that lost, ncr, in all: what keepers charge and the SDK records (docs/jobs.md)
   */
  paid: z.array(z.object({ keeper: z.string(), amount: z.number().int().min(0) })).default([]),
  /** queued: the next attempt's earliest start; running: when its dispatcher's lease ends */
  runAt: Time,
  dispatcher: z.string().nullable(),
  started: z.number().int(),
  failures: z.number().int(),
  conflicts: z.number().int(),
  attempts: z.array(JobAttemptSchema),
  /** a success: the certified output and the certificate (check it against your own view) */
  result: z
    .object({
      output: z.looseObject(OutputSchema.shape),
      certificate: CertificateJSONSchema,
      commits: z.array(EffectCommitSchema),
      /** the further jobs the run enqueued are created */
      committed: z.boolean(),
    })
    .nullable(),
  /** why it failed or was cancelled */
  error: JobErrorSchema.nullable(),
  updatedAt: Time,
  /** the record (with its proof, for an enqueued job), base64 of its DAG-CBOR: its record's CID is `id` */
  doc: base64Of(MAX_ITEM_BYTES),
  /** the keepers in the answering node's view, the dispatcher first */
  keepers: z.array(z.string()),
  /** the node whose state this is */
  servedBy: z.string(),
})
export type JobInfo = z.infer<typeof JobInfoSchema>

/** `GET /v1/jobs/:id`: the job's state, the best its live keepers hold. */
export const jobRoute = {
  method: 'GET',
  path: '/v1/jobs/:id',
  params: JobParamsSchema,
  reply: JobInfoSchema,
} as const satisfies RouteSpec

/**
 * `GET /v1/jobs/:id/events`: the job's state as server-sent events (`data: <JobInfo JSON>`), now
 * and at each change, until it settles (a success once its further jobs are created) or the caller
 * goes away.
 */
export const jobEventsRoute = {
  method: 'GET',
  path: '/v1/jobs/:id/events',
  params: JobParamsSchema,
  reply: 'events',
  event: JobInfoSchema,
} as const satisfies RouteSpec

export const CancelJobBodySchema = z.strictObject({
  /** the enqueuer's signed cancellation (signCancel), base64 of its DAG-CBOR */
  cancel: base64Of(1024),
})

/** `POST /v1/jobs/:id/cancel`: cancel a job that has not succeeded; answers with its state. */
export const cancelJobRoute = {
  method: 'POST',
  path: '/v1/jobs/:id/cancel',
  params: JobParamsSchema,
  body: CancelJobBodySchema,
  reply: JobInfoSchema,
} as const satisfies RouteSpec

export const ListJobsQuerySchema = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  /** only jobs of this enqueuer (a key id) */
  enqueuer: z.string().max(128).optional(),
  /** the id after which the page starts */
  after: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
})

export const JobSummarySchema = z.object({
  id: z.string(),
  status: z.enum(JOB_STATUSES),
  version: z.number().int(),
  fn: z.string(),
  export: z.string(),
  enqueuer: z.string(),
  createdAt: Time,
  runAt: Time,
  updatedAt: Time,
  started: z.number().int(),
  failures: z.number().int(),
  error: JobErrorSchema.nullable(),
})
export type JobSummary = z.infer<typeof JobSummarySchema>

export const ListJobsReplySchema = z.object({
  /** the jobs this node keeps, in id order; each as this node holds it */
  jobs: z.array(JobSummarySchema),
  /** the `after` of the next page; null at the end */
  next: z.string().nullable(),
  /** how many jobs this node keeps in each status */
  counts: z.record(z.enum(JOB_STATUSES), z.number().int()),
  servedBy: z.string(),
})
export type ListJobsReply = z.infer<typeof ListJobsReplySchema>

/** `GET /v1/jobs?status=&enqueuer=&after=&limit=`: the jobs this node keeps. */
export const listJobsRoute = {
  method: 'GET',
  path: '/v1/jobs',
  query: ListJobsQuerySchema,
  reply: ListJobsReplySchema,
} as const satisfies RouteSpec
