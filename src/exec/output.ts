/**
 * The output of one execution and its hash — the thing executors agree on.
 *
 * The value travels as `json`, the JSON text the sandbox produced, never re-encoded: every
 * executor runs the same QuickJS build, so the text (key order included) is the same everywhere,
 * and a caller gets the value the function returned whichever node answers. A DAG-CBOR map would
 * sort its keys on the way.
 *
 * outputHash = lower-case hex of sha2-256 over the DAG-CBOR encoding of exactly
 * `{ json, logs, error }` where `json` is that text (`"null"` when the call failed or returned
 * nothing), `logs` the lines the function logged, in order, and `error` is `null` or
 * `{ code, message }` (no details, no stack). A JSON text longer than a reply carries is stored
 * in the content network instead (stored-output.ts): the output then has `ref` in place of
 * `json`, and the hash covers `{ ref, logs, error }` — the root block's CID, which names every
 * chunk's hash.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { z } from 'zod'
import { toHex } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'
import { canonicalBytes } from '../keys/index.ts'
import { type JsonValue, MAX_JSON_BYTES } from './fields.ts'
import { type OutputRef, OutputRefSchema } from './stored-output.ts'

/** Logs are bounded on the wire by count and by line; the sandbox bounds their total. */
export const MAX_LOG_LINES = 10_000
export const MAX_LOG_LINE_CHARS = 64 * 1024

export const OutputErrorSchema = z.strictObject({
  code: z.string().min(1).max(64),
  message: z.string().max(4096),
})
export type OutputError = z.infer<typeof OutputErrorSchema>

// The text's size is bounded by the sandbox (1 MiB of UTF-8 inline) and so in characters too.
export const OutputSchema = z
  .strictObject({
    json: z.string().min(1).max(MAX_JSON_BYTES).optional(),
    /** where the JSON text is stored, when it is too long to carry: stored-output.ts */
    ref: OutputRefSchema.optional(),
    logs: z.array(z.string().max(MAX_LOG_LINE_CHARS)).max(MAX_LOG_LINES),
    error: OutputErrorSchema.nullable(),
  })
  .refine(
    (o) => (o.json === undefined) !== (o.ref === undefined),
    'an output has exactly one of json and ref',
  )
export type Output = z.infer<typeof OutputSchema>

/** What a caller of {@link outputHash} may pass: `error` may be missing or carry more. */
export interface OutputLike {
  /** the JSON text; absent when it is stored (`ref`) */
  json?: string
  ref?: OutputRef
  logs: readonly string[]
  error?: { code: string; message: string } | null
}

/** The canonical form that is hashed: see the module comment. */
export function canonicalOutput(output: OutputLike): Output {
  const error = output.error == null ? null : { code: output.error.code, message: output.error.message }
  if (output.ref !== undefined)
    return { ref: { cid: output.ref.cid, bytes: output.ref.bytes }, logs: [...output.logs], error }
  return { json: output.json, logs: [...output.logs], error }
}

/** Hex sha2-256 of the DAG-CBOR of the canonical output. */
export function outputHash(output: OutputLike): string {
  return toHex(sha256(canonicalBytes(canonicalOutput(output))))
}

/**
 * The value an output carries: its JSON text parsed (key order kept). PROTOCOL_ERROR if it is not
 * JSON, or if the text is stored (`ref`: read it with `readStoredOutput` first).
 */
export function outputValue(output: Pick<OutputLike, 'json'>): JsonValue {
  if (output.json === undefined)
    throw new CovenantError('PROTOCOL_ERROR', 'the output is stored: its JSON text must be fetched first')
  try {
    return JSON.parse(output.json) as JsonValue
  } catch (err) {
    throw new CovenantError('PROTOCOL_ERROR', 'the output is not JSON text', { cause: err })
  }
}
