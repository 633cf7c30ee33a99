/**
 * The output of one execution and its hash — the thing executors agree on.
 *
 * outputHash = lower-case hex of sha2-256 over the DAG-CBOR encoding of exactly
 * `{ value, logs, error }` where `value` is the JSON value returned (`null` when the call failed or
 * returned nothing), `logs` the lines the function logged, in order, and `error` is `null` or
 * `{ code, message }` (no details, no stack). DAG-CBOR sorts map keys, so the bytes are canonical.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { z } from 'zod'
import { toHex } from '../encoding/index.ts'
import { canonicalBytes } from '../keys/index.ts'
import { JsonValueSchema } from './fields.ts'

/** Logs are bounded on the wire by count and by line; the sandbox bounds their total. */
export const MAX_LOG_LINES = 10_000
export const MAX_LOG_LINE_CHARS = 64 * 1024

export const OutputErrorSchema = z.strictObject({
  code: z.string().min(1).max(64),
  message: z.string().max(4096),
})
export type OutputError = z.infer<typeof OutputErrorSchema>

// The value's size is bounded by the sandbox (1 MiB of JSON) and by the reply frame.
export const OutputSchema = z.strictObject({
  value: JsonValueSchema,
  logs: z.array(z.string().max(MAX_LOG_LINE_CHARS)).max(MAX_LOG_LINES),
  error: OutputErrorSchema.nullable(),
})
export type Output = z.infer<typeof OutputSchema>

/** What a caller of {@link outputHash} may pass: `value` may be missing and `error` may carry more. */
export interface OutputLike {
  value?: unknown
  logs: readonly string[]
  error?: { code: string; message: string } | null
}

/** The canonical form that is hashed: see the module comment. */
export function canonicalOutput(output: OutputLike): Output {
  const error = output.error == null ? null : { code: output.error.code, message: output.error.message }
  return { value: (output.value ?? null) as Output['value'], logs: [...output.logs], error }
}

/** Hex sha2-256 of the DAG-CBOR of the canonical output. Throws if `value` is not DAG-CBOR-encodable. */
export function outputHash(output: OutputLike): string {
  return toHex(sha256(canonicalBytes(canonicalOutput(output))))
}
