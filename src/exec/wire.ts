/**
 * The exec protocols' messages. A node registers {@link EXEC_PROTOCOL} (one request, one reply
 * per stream) and {@link CONFLICT_PROTOCOL} (a conflict report, answered `{ ok: true }` or
 * `{ error }`); both are length-prefixed DAG-CBOR like every Covenant protocol. Version 2: requests
 * carry a ticket, outputs their JSON text, executors sign their refusals, and conflict evidence
 * carries a certificate. Version 3: requests fix the namespace versions a function reads, and
 * outputs carry the run's store effects and jobs, which receipts (v3) sign.
 */
import { z } from 'zod'
import { ConflictSchema } from './certificate.ts'
import { MAX_JSON_BYTES } from './fields.ts'
import { OutputSchema } from './output.ts'
import { ReceiptSchema } from './receipt.ts'
import { RefusalSchema } from './refusal.ts'
import { SignedRequestSchema } from './request.ts'

export const EXEC_PROTOCOL = '/covenant/exec/3.0.0'
export const CONFLICT_PROTOCOL = '/covenant/conflict/3.0.0'

/**
 * Frame limits. Args are at most 1 MiB of DAG-CBOR; the rest of a request is small. The output's
 * JSON text is at most 1 MiB (a text string in DAG-CBOR costs a few bytes more); logs are bounded
 * by the sandbox at 64 KiB, written values at 1 MiB, the keys read (1024 of at most 512 bytes) at
 * about 0.5 MiB, jobs at 16 × 16 KiB. Conflict evidence carries a certificate, so a whole request.
 */
export const MAX_EXEC_REQUEST_BYTES = MAX_JSON_BYTES + 64 * 1024
export const MAX_EXEC_REPLY_BYTES = 3 * MAX_JSON_BYTES + 256 * 1024
export const MAX_CONFLICT_BYTES = MAX_EXEC_REQUEST_BYTES + 64 * 1024

export const ExecRequestMessageSchema = z.strictObject({ request: SignedRequestSchema })
export type ExecRequestMessage = z.infer<typeof ExecRequestMessageSchema>

/**
 * What an executor answers about a request it could read: its signed receipt with the output, or
 * its signed refusal. A request it cannot read gets the protocol's plain error reply (see `net`).
 */
export const ExecReplySchema = z.union([
  z.strictObject({ receipt: ReceiptSchema, output: OutputSchema }),
  z.strictObject({ refusal: RefusalSchema }),
])
export type ExecReply = z.infer<typeof ExecReplySchema>
/** An executor's answer with a receipt. */
export type ExecResult = Extract<ExecReply, { receipt: unknown }>

export const ConflictMessageSchema = z.strictObject({ conflict: ConflictSchema })
export type ConflictMessage = z.infer<typeof ConflictMessageSchema>
