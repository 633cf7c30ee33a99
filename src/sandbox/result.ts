import { z } from 'zod'
import { isJsonValue, type JsonValue } from '../encoding/index.ts'
import type { ErrorCode } from '../errors/index.ts'
import { EFFECT_LIMITS, exportNameProblem, isCidText, keyProblem } from './effects.ts'

const JsonSchema = z.custom<JsonValue>(isJsonValue, { message: 'expected a JSON value' })
const NamespaceSchema = z.string().refine(isCidText, 'expected a namespace id (CIDv1 dag-cbor in base32)')
const KeySchema = z.string().superRefine((key, ctx) => {
  const problem = keyProblem(key)
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
})

/** A job's options as `ctx.enqueue` takes them; each absent one is the jobs part's default. */
export const JobOptionsSchema = z
  .strictObject({
    /** ms after the commit before the job runs */
    runAfterMs: z.number().int().min(0).max(EFFECT_LIMITS.jobRunAfterMs).optional(),
    /** attempts after the first, onto other executors */
    retries: z.number().int().min(0).max(EFFECT_LIMITS.jobRetries).optional(),
    /** executors *k* */
    replicas: z.number().int().min(1).max(EFFECT_LIMITS.jobReplicas).optional(),
    /** quorum *q* */
    quorum: z.number().int().min(1).max(EFFECT_LIMITS.jobReplicas).optional(),
  })
  .refine((o) => o.quorum === undefined || o.replicas === undefined || o.quorum <= o.replicas, {
    message: 'quorum is at most replicas',
  })
export type JobOptions = z.infer<typeof JobOptionsSchema>

/** One job a call enqueued: an invocation of `export` of the function `fn` on `args`. */
export const EffectJobSchema = z.strictObject({
  fn: z.string().refine(isCidText, "expected a function's manifest CID"),
  export: z.string().refine((s) => exportNameProblem(s) === undefined, 'expected a JavaScript identifier'),
  args: z.array(JsonSchema),
  options: JobOptionsSchema,
})
export type EffectJob = z.infer<typeof EffectJobSchema>

/**
 * What a successful call asks of the world: the keys it read from the host, with the version each
 * was read at (first read first, each once), the keys it wrote (first write first, each once, with
 * its last value; `null` deletes), and the jobs it enqueued, in order. Nothing takes effect by
 * being here: writes and jobs apply when a quorum certificate over the output that carries them is
 * committed by the namespace's holders (and the job queue's keepers), if the versions read are
 * still current.
 */
export const SandboxEffectsSchema = z.strictObject({
  reads: z
    .array(
      z.strictObject({
        ns: NamespaceSchema,
        key: KeySchema,
        version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      }),
    )
    .max(EFFECT_LIMITS.reads),
  writes: z
    .array(z.strictObject({ ns: NamespaceSchema, key: KeySchema, value: JsonSchema }))
    .max(EFFECT_LIMITS.writes),
  jobs: z.array(EffectJobSchema).max(EFFECT_LIMITS.jobs),
})
export type SandboxEffects = z.infer<typeof SandboxEffectsSchema>

/**
 * What a call produced. `value` is a plain JSON value (what JSON.stringify then JSON.parse give
 * inside the sandbox; `undefined` becomes `null`), so other parts can hash it as DAG-CBOR. For the
 * same call, and the same answers to its reads, every field is byte-identical on every executor,
 * except after TIMEOUT, SANDBOX_CRASHED or INTERNAL (a host that failed a read), which depend on
 * the host.
 *
 * `effects` is present only when a successful call read, wrote or enqueued something, so the
 * result (and its hash) of a call that uses none of that is what it always was. A failed call has
 * no effects: what it recorded is dropped, and its output says only how it failed.
 */
export type SandboxResult =
  | { ok: true; value: unknown; fuel: number; logs: string[]; effects?: SandboxEffects }
  | { ok: false; error: { code: ErrorCode; message: string }; fuel: number; logs: string[] }
