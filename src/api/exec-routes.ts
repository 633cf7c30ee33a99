/** Invocation through a gateway node, and the conflict evidence it keeps. */
import { z } from 'zod'
import { CommitReplySchema } from '../datastore/index.ts'
import { ErrorJSONSchema } from '../errors/index.ts'
import {
  AttemptSchema,
  CertificateJSONSchema,
  ConflictJSONSchema,
  OutputSchema,
  ReceiptJSONSchema,
  TrustSchema,
} from '../exec/index.ts'
import { KeyIdSchema } from '../keys/index.ts'
import { EnqueueRunReplySchema } from './job-routes.ts'
import type { RouteSpec } from './route.ts'

/**
 * Body of `POST /v1/invoke`: the caller's signed request in its JSON form (signature in base64),
 * and what the caller's verifier will ask of the certificate (`trust`), so the gateway refuses a
 * thin eligible set (NO_EXECUTORS) and waits for or gives up on a quorum that has more unproven
 * skips than the caller accepts. The request is read by exec's `requestFromJSON`, so a malformed
 * one is INVALID_REQUEST.
 */
export const InvokeBodySchema = z.strictObject({ request: z.unknown(), trust: TrustSchema.prefault({}) })

/**
 * What became of a certified run's writes to one namespace: the gateway handed the certificate to
 * the namespace's holders, and they applied it (the commit's result) or refused it (why: a
 * WRITE_CONFLICT when what the run read has changed since, and the call may be made again).
 */
export const CommitOutcomeSchema = z.union([
  CommitReplySchema,
  z.strictObject({ ns: z.string().max(128), error: ErrorJSONSchema }),
])
export type CommitOutcome = z.infer<typeof CommitOutcomeSchema>

export const InvokeReplySchema = z.object({
  /** the value `output.json` holds, for readers of the JSON; a client parses `output.json` itself */
  value: z.unknown().optional(),
  output: OutputSchema,
  certificate: CertificateJSONSchema,
  /**
   * Conflict evidence the gateway found, each a ConflictJSON. Read one by one: evidence that does
   * not verify is the gateway's noise and must not cost the caller a certified value.
   */
  conflicts: z.array(z.unknown()).max(256).default([]),
  /** the executors the gateway asked, and what came of each (as the gateway tells it) */
  tried: z.array(AttemptSchema).max(1024).default([]),
  /** one per namespace the run wrote, in the output's order: what its holders did with the writes */
  commits: z.array(CommitOutcomeSchema).max(256).default([]),
  /**
   * the jobs the run enqueued (`ctx.enqueue`), handed to their keepers once its writes committed:
   * each job's id and keepers, or why they could not be handed over (hand them again with
   * `POST /v1/jobs/enqueued`); none when a commit was refused
   */
  jobs: z.union([EnqueueRunReplySchema, z.object({ error: ErrorJSONSchema })]).optional(),
})

export type InvokeReply = z.infer<typeof InvokeReplySchema>

/** `POST /v1/invoke`: this node runs the quorum protocol for the caller (a gateway). */
export const invokeRoute = {
  method: 'POST',
  path: '/v1/invoke',
  body: InvokeBodySchema,
  reply: InvokeReplySchema,
  // Args are at most 1 MiB of DAG-CBOR; as JSON text they can be a few times larger.
  bodyLimit: 4 * 1024 * 1024,
} as const satisfies RouteSpec

export const ConflictsQuerySchema = z.strictObject({
  /** only evidence against this executor (a canonical key id) */
  executor: KeyIdSchema.optional(),
  /** at most this many, newest first @default 100 */
  limit: z.coerce.number().int().min(1).max(1000).optional(),
})

export const ConflictsReplySchema = z.object({
  conflicts: z.array(
    z.object({
      conflict: ConflictJSONSchema,
      /** ms timestamp of when the node first stored it */
      receivedAt: z.number(),
    }),
  ),
})

/** `GET /v1/conflicts?executor=ID&limit=N`: verified conflict evidence this node holds, newest first. */
export const conflictsRoute = {
  method: 'GET',
  path: '/v1/conflicts',
  query: ConflictsQuerySchema,
  reply: ConflictsReplySchema,
} as const satisfies RouteSpec

/**
 * One call this node served, as the calls feed shows it: who asked for which export of which
 * function, what it cost, how it ended and who signed. Never the arguments, the value, the logs
 * or an error's message: those belong to the caller. Unknown fields are dropped when an event is
 * sent, so nothing else can slip through.
 */
export const CallEventSchema = z.object({
  /** increases by one per event on this node */
  seq: z.number().int().min(0),
  /** ms timestamp of when the call ended here */
  at: z.number(),
  /** `gateway`: it ran the quorum protocol for a caller; `executor`: it ran the function */
  role: z.enum(['gateway', 'executor']),
  /** the request id; null when the request did not even parse */
  request: z.string().nullable(),
  fn: z.string().nullable(),
  export: z.string().nullable(),
  caller: z.string().nullable(),
  /** replicas and quorum the caller asked for */
  k: z.number().int().nullable(),
  q: z.number().int().nullable(),
  /** the fuel limit asked, and the fuel the (agreed) receipts report */
  fuelLimit: z.number().int().nullable(),
  fuel: z.number().int().nullable(),
  ms: z.number().min(0),
  /** `ok`, or the code: a function failure the quorum certified, or why there is no result */
  outcome: z.string().max(64),
  /** for an executor: the peer that asked it */
  from: z.string().nullable(),
  /** the output hash signed (agreed on, for a gateway) */
  outputHash: z.string().nullable(),
  /** the certificate's receipts (gateway) or this executor's receipt, signatures in base64 */
  receipts: z.array(ReceiptJSONSchema),
  /** executors whose signed receipt disagreed with the quorum */
  conflicts: z.array(z.object({ executor: z.string(), outputHash: z.string() })),
  /** the executors a gateway asked, and what came of each */
  tried: z.array(
    z.object({ peer: z.string(), outcome: z.string(), ms: z.number(), error: z.string().nullable() }),
  ),
})
export type CallEvent = z.infer<typeof CallEventSchema>

export const CallsQuerySchema = z.strictObject({
  /** recent events sent first, before the live ones @default 50 */
  backlog: z.coerce.number().int().min(0).max(500).default(50),
})

/**
 * `GET /v1/calls?backlog=N`: the calls this node executed or gatewayed, as server-sent events
 * (`data: <CallEvent JSON>`): the last `backlog` first, then each as it ends.
 */
export const callsRoute = {
  method: 'GET',
  path: '/v1/calls',
  query: CallsQuerySchema,
  reply: 'events',
  event: CallEventSchema,
} as const satisfies RouteSpec
