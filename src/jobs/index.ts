/**
 * Jobs: fire-and-forget invocations the network finishes later, at least once, with their effects
 * committed exactly once. This part is network-free: the job record and its id, cancellation, a
 * job's states and the transitions between them with their merge rule, the retry policy, the jobs
 * a function enqueues, one keeper's SQLite store, and the jobs protocol's messages. The node's
 * jobs service puts it on the network (keepers, dispatch, takeover: docs/jobs.md).
 *
 * @example
 * ```ts
 * // an enqueuer signs a record; its CID is the job id
 * const { record, id } = createJob(key, { fn, export: 'sendDigest', args: [userId], retries: 5 })
 * // a keeper holds it, queued until runAfter
 * const store = openJobStore({ path: 'jobs.db' })
 * store.put(id, { record }, initialState(record))
 * // the dispatching keeper runs attempt 1 as an ordinary request, signed with its own key
 * const { request } = dispatchRequest(keeperKey, { record, id }, 1, ticket)
 * let state = startAttempt(store.get(id)!.state, { dispatcher, request: reqId, now, leaseUntil })
 * state = attemptFailed(state, record, { n: 1, now, error, random: Math.random }) // queued again, after a backoff
 * // keepers keep whichever of two states wins, in any order
 * store.merge(id, state)
 * ```
 */
export type { CertifiedRun, JobDoc, RunProof, VerifyRun } from './effects.ts'
export {
  checkDoc,
  enqueuedDocs,
  enqueuedRecords,
  JobDocSchema,
  jobDepth,
  jobsOf,
  MAX_JOB_DEPTH,
  OutputWithJobsSchema,
} from './effects.ts'
export type { JobStore, JobStoreInit, StoredJob } from './job-store.ts'
export { JOB_STORE_SCHEMA_VERSION, openJobStore } from './job-store.ts'
export type {
  EnqueuedJobRecord,
  JobBody,
  JobCancel,
  JobInit,
  JobOrigin,
  JobRecord,
  SignedJobRecord,
} from './record.ts'
export {
  attemptWindowMs,
  checkJob,
  createJob,
  defaultBudget,
  dispatchNonce,
  dispatchOf,
  dispatchRequest,
  EnqueuedJobRecordSchema,
  JOB_DEFAULTS,
  JOB_LIMITS,
  JobCancelSchema,
  JobRecordSchema,
  jobId,
  jobKeyBytes,
  matchDispatch,
  SignedJobRecordSchema,
  signCancel,
  verifyCancel,
  verifyNewJob,
} from './record.ts'
export type {
  AttemptEnd,
  AttemptRecord,
  Backoff,
  EffectCommit,
  JobError,
  JobResult,
  JobState,
  JobStatus,
} from './state.ts'
export {
  AttemptRecordSchema,
  attemptConflicted,
  attemptDeferred,
  attemptFailed,
  backoffMs,
  cancelJob,
  chargedOf,
  DEFAULT_BACKOFF,
  DEFERRING_ERRORS,
  EffectCommitSchema,
  encodeState,
  FINAL_ERRORS,
  failJob,
  initialState,
  isEncodingOf,
  isRetryable,
  isSettled,
  isTerminal,
  JOB_STATUSES,
  JobErrorSchema,
  JobResultSchema,
  JobStateSchema,
  jobFailure,
  MAX_ATTEMPTS_KEPT,
  MAX_CHARGING_KEEPERS,
  markCommitted,
  maxCharges,
  mergeStates,
  paidOf,
  paidTotal,
  paidWithin,
  parseState,
  sameState,
  startAttempt,
  succeed,
  wins,
} from './state.ts'
export type { GetReply, ItemReply, ItemsReply, JobsRequest } from './wire.ts'
export {
  BATCH_BYTES,
  GetReplySchema,
  ItemReplySchema,
  ItemsReplySchema,
  JOBS_PROTOCOL,
  JobsRequestSchema,
  MAX_BATCH,
  MAX_ITEM_BYTES,
  MAX_JOBS_MESSAGE_BYTES,
} from './wire.ts'
