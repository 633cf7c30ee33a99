/**
 * The exec protocols' messages. A node registers {@link EXEC_PROTOCOL} (one request, one reply
 * per stream) and {@link CONFLICT_PROTOCOL} (a conflict report, answered `{ ok: true }` or
 * `{ error }`); both are length-prefixed DAG-CBOR like every Covenant protocol.
 */
import { z } from 'zod'
import { ConflictSchema } from './certificate.ts'
import { MAX_JSON_BYTES } from './fields.ts'
import { OutputSchema } from './output.ts'
import { ReceiptSchema } from './receipt.ts'
import { SignedRequestSchema } from './request.ts'

export const EXEC_PROTOCOL = '/covenant/exec/1.0.0'
export const CONFLICT_PROTOCOL = '/covenant/conflict/1.0.0'

/**
 * Frame limits. Args are at most 1 MiB of DAG-CBOR; the rest of a request is small. The output
 * value is at most 1 MiB of JSON, which DAG-CBOR can inflate up to 3× (a float is 9 bytes, `0.1`
 * is 3 characters); logs are bounded by the sandbox at 64 KiB.
 */
export const MAX_EXEC_REQUEST_BYTES = MAX_JSON_BYTES + 64 * 1024
export const MAX_EXEC_REPLY_BYTES = 3 * MAX_JSON_BYTES + 256 * 1024
export const MAX_CONFLICT_BYTES = 64 * 1024

export const ExecRequestMessageSchema = z.strictObject({ request: SignedRequestSchema })
export type ExecRequestMessage = z.infer<typeof ExecRequestMessageSchema>

/**
 * What an executor answers: its signed receipt with the output. Why it would not answer travels as
 * the protocol's error reply (see `net`), like every Covenant protocol's.
 */
export const ExecReplySchema = z.strictObject({ receipt: ReceiptSchema, output: OutputSchema })
export type ExecReply = z.infer<typeof ExecReplySchema>

export const ConflictMessageSchema = z.strictObject({ conflict: ConflictSchema })
export type ConflictMessage = z.infer<typeof ConflictMessageSchema>
