/** Invocation through a gateway node, and the conflict evidence it keeps. */
import { z } from 'zod'
import { AttemptSchema, CertificateJSONSchema, ConflictJSONSchema, OutputSchema } from '../exec/index.ts'
import type { RouteSpec } from './route.ts'

/**
 * Body of `POST /v1/invoke`: the caller's signed request in its JSON form (signature in base64).
 * The request is read by exec's `requestFromJSON`, so a malformed one is INVALID_REQUEST.
 */
export const InvokeBodySchema = z.strictObject({ request: z.unknown() })

export const InvokeReplySchema = z.object({
  /** `output.value` */
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
})

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
  /** only evidence against this executor */
  executor: z.string().max(128).optional(),
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
