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
 * `{ code, message }` (no details, no stack) — plus, only when the call had them, `store` (what it
 * read and wrote, one {@link StoreEffects} per namespace) and `jobs` (what it enqueued). So the
 * receipts sign a run's effects with its value, and an output without effects hashes as it always
 * did. A JSON text longer than a reply carries is stored in the content network instead
 * (stored-output.ts): the output then has `ref` in place of `json`, and the hash covers
 * `{ ref, logs, error, … }` — the root block's CID, which names every chunk's hash.
 */
import { z } from 'zod'
import {
  MAX_READS,
  MAX_WRITES,
  ReadSchema,
  type StoreEffects,
  StoreEffectsSchema,
  WriteSchema,
} from '../datastore/index.ts'
import { sha256, toHex } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'
import { canonicalBytes } from '../keys/index.ts'
import { EFFECT_LIMITS, type EffectJob, EffectJobSchema, type SandboxEffects } from '../sandbox/index.ts'
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

/** One namespace's reads and writes in an output, bounded as one commit is. */
const OutputStoreEffectsSchema = StoreEffectsSchema.extend({
  writes: z.array(WriteSchema).max(MAX_WRITES),
  reads: z.array(ReadSchema).max(MAX_READS),
})

// The text's size is bounded by the sandbox (1 MiB of UTF-8 inline) and so in characters too.
export const OutputSchema = z
  .strictObject({
    json: z.string().min(1).max(MAX_JSON_BYTES).optional(),
    /** where the JSON text is stored, when it is too long to carry: stored-output.ts */
    ref: OutputRefSchema.optional(),
    logs: z.array(z.string().max(MAX_LOG_LINE_CHARS)).max(MAX_LOG_LINES),
    error: OutputErrorSchema.nullable(),
    /**
     * what the run read and wrote, one entry per namespace (first those it read, in the order it
     * first read them, then those it only wrote): absent when it touched none. The writes take
     * effect only when a namespace's holders commit the certificate.
     */
    store: z
      .array(OutputStoreEffectsSchema)
      .min(1)
      .max(EFFECT_LIMITS.reads + EFFECT_LIMITS.writes)
      .optional(),
    /** the jobs the run enqueued, in order: absent when it enqueued none */
    jobs: z.array(EffectJobSchema).min(1).max(EFFECT_LIMITS.jobs).optional(),
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
  store?: readonly StoreEffects[]
  jobs?: readonly EffectJob[]
}

/** The canonical form that is hashed: see the module comment. */
export function canonicalOutput(output: OutputLike): Output {
  const error = output.error == null ? null : { code: output.error.code, message: output.error.message }
  const canonical: Output =
    output.ref !== undefined
      ? { ref: { cid: output.ref.cid, bytes: output.ref.bytes }, logs: [...output.logs], error }
      : { json: output.json, logs: [...output.logs], error }
  if (output.store !== undefined) canonical.store = [...output.store]
  if (output.jobs !== undefined) canonical.jobs = [...output.jobs]
  return canonical
}

/**
 * The effects a successful sandbox call recorded, in the output's form: its reads and writes
 * grouped by namespace (see {@link OutputSchema}), and its jobs; each field only when it has any.
 */
export function outputEffects(effects: SandboxEffects | undefined): Pick<Output, 'store' | 'jobs'> {
  if (effects === undefined) return {}
  const byNs = new Map<string, StoreEffects>()
  const of = (ns: string): StoreEffects => {
    let e = byNs.get(ns)
    if (e === undefined) {
      e = { ns, writes: [], reads: [] }
      byNs.set(ns, e)
    }
    return e
  }
  for (const { ns, key, version } of effects.reads) of(ns).reads.push({ key, version })
  for (const { ns, key, value } of effects.writes) of(ns).writes.push({ key, value })
  const out: Pick<Output, 'store' | 'jobs'> = {}
  if (byNs.size > 0) out.store = [...byNs.values()]
  if (effects.jobs.length > 0) out.jobs = effects.jobs
  return out
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
