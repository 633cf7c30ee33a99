/**
 * Reads on the caller's side (the main thread): what a reader must answer, how the pool checks its
 * answers and batches them for the engine, and a reader over values in memory for running a
 * function locally (`covenant sandbox --store values.json`, tests).
 */
import { z } from 'zod'
import { isJsonValue, type JsonValue } from '../encoding/index.ts'
import { ERROR_CODES, type ErrorCode, isErrorCode } from '../errors/index.ts'
import { dagCborSize, EFFECT_LIMITS, isCidText, type ReadAnswer, type ReadRequest } from './effects.ts'
import type { ReadBatchReply } from './engine.ts'

/**
 * The host's answer to one read: the key's value (`null` if it has none) and its version (the
 * datastore's: the seq of the entry that last wrote it, 0 if none did), or an error that ends the
 * call with that code and message. The error must be deterministic — the same for every executor
 * reading at the same versions — since it becomes the call's output; any code but the sandbox's
 * own outcomes ({@link READ_ERRORS_REFUSED}) may be used, e.g. NAMESPACE_NOT_FOUND.
 */
export type StoreReadAnswer =
  | { value: JsonValue | null; version: number }
  | { error: { code: ErrorCode; message: string } }

/**
 * Reads one key of one namespace at the versions fixed for the call, on the caller's side (the
 * main thread). The pool calls it when the function awaits a read it has not read or written
 * before, at most once per key and call, and aborts `signal` when the call ends (answered or
 * not). Throwing, rejecting or answering something else than a {@link StoreReadAnswer} ends the
 * call with INTERNAL, which depends on the host like TIMEOUT does.
 */
export type StoreReader = (
  ns: string,
  key: string,
  options: { signal: AbortSignal },
) => StoreReadAnswer | Promise<StoreReadAnswer>

/**
 * The codes a read's error may not use: the sandbox's own outcomes, which say what the function
 * did; a host's error must stay distinguishable from them.
 */
export const READ_ERRORS_REFUSED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'FUEL_EXHAUSTED',
  'MEMORY_LIMIT',
  'STACK_OVERFLOW',
  'TIMEOUT',
  'OUTPUT_TOO_LARGE',
  'LOG_LIMIT',
  'INVALID_ARGS',
  'BUNDLE_TOO_LARGE',
  'INVALID_CODE',
  'NO_SUCH_EXPORT',
  'USER_ERROR',
  'NEVER_SETTLED',
  'SANDBOX_CRASHED',
  'INVALID_INPUT',
])

const hostFault = (detail: string): { error: { code: ErrorCode; message: string } } => ({
  error: { code: 'INTERNAL', message: `${ERROR_CODES.INTERNAL.message}: the host failed a read: ${detail}` },
})

/** Checks one answer of the host and puts it in the form the engine takes. */
function toAnswer(
  raw: unknown,
  req: ReadRequest,
): ReadAnswer | { error: { code: ErrorCode; message: string } } {
  const where = `${JSON.stringify(req.key)} of ${req.ns}`
  if (typeof raw !== 'object' || raw === null) return hostFault(`reading ${where}: no answer`)
  if ('error' in raw) {
    const e = raw.error as { code?: unknown; message?: unknown } | null
    const code = e?.code
    if (!isErrorCode(code) || READ_ERRORS_REFUSED.has(code))
      return hostFault(
        `reading ${where}: error code ${JSON.stringify(String(code).slice(0, 64))} is not one a read may report`,
      )
    const detail =
      typeof e?.message === 'string' && e.message !== ''
        ? e.message.slice(0, 1024)
        : ERROR_CODES[code].message
    return { error: { code, message: `reading ${where}: ${detail}` } }
  }
  const { value, version } = raw as { value?: unknown; version?: unknown }
  if (!Number.isSafeInteger(version) || (version as number) < 0)
    return hostFault(`reading ${where}: the version is not a whole number ≥ 0`)
  if (value === undefined || !isJsonValue(value))
    return hostFault(
      `reading ${where}: the value is not a JSON value nested at most ${EFFECT_LIMITS.jsonDepth} deep`,
    )
  const bytes = dagCborSize(value) ?? Number.POSITIVE_INFINITY
  // a value too large to hand over is refused in the sandbox by its size alone
  if (bytes > EFFECT_LIMITS.valueBytes) return { version: version as number, bytes }
  return { version: version as number, bytes, json: JSON.stringify(value) }
}

/**
 * Asks the host for every read of a batch at once and settles with all the answers in order, or
 * with the first error in that order as soon as every read before it has answered, so the outcome
 * never depends on which answer came first.
 */
export function readBatch(
  read: StoreReader | undefined,
  batch: ReadRequest[],
  signal: AbortSignal,
): Promise<ReadBatchReply> {
  if (read === undefined || batch.length > EFFECT_LIMITS.reads)
    return Promise.resolve(hostFault('the call has no reader for these reads'))
  return new Promise((resolve) => {
    const answers: Array<ReadAnswer | { error: { code: ErrorCode; message: string } } | undefined> =
      batch.map(() => undefined)
    const check = () => {
      for (const a of answers) {
        if (a === undefined) return
        if ('error' in a) return resolve({ error: a.error })
      }
      resolve({ answers: answers as ReadAnswer[] })
    }
    if (batch.length === 0) check()
    batch.forEach((req, i) => {
      Promise.resolve()
        .then(() => read(req.ns, req.key, { signal }))
        .then(
          (raw) => toAnswer(raw, req),
          (err: unknown) =>
            hostFault(`reading ${JSON.stringify(req.key)} of ${req.ns}: ${String(err).slice(0, 500)}`),
        )
        .then((answer) => {
          answers[i] = answer
          check()
        })
    })
  })
}

/**
 * Values in memory: every key it holds is at version 1 and every other key of a namespace it holds
 * at version 0 (never written); a namespace it does not hold is NAMESPACE_NOT_FOUND, as on the
 * network.
 */
/** The values of a local store: `{ "<namespace id>": { "<key>": <JSON value>, … }, … }`. */
export const LocalStoreSchema = z
  .record(z.string(), z.record(z.string(), z.custom<JsonValue>(isJsonValue, 'expected a JSON value')))
  .superRefine((store, ctx) => {
    for (const ns of Object.keys(store))
      if (!isCidText(ns))
        ctx.addIssue({
          code: 'custom',
          path: [ns],
          message: 'not a namespace id (a CIDv1 dag-cbor CID in base32, bafyrei…)',
        })
  })
export type LocalStore = z.infer<typeof LocalStoreSchema>

/** A reader over `store`, for a call's `read`. */
export function localReader(store: LocalStore): StoreReader {
  return (ns, key) => {
    const values = Object.hasOwn(store, ns) ? store[ns] : undefined
    if (values === undefined)
      return { error: { code: 'NAMESPACE_NOT_FOUND', message: 'the local store holds no such namespace' } }
    return Object.hasOwn(values, key) ? { value: values[key], version: 1 } : { value: null, version: 0 }
  }
}
