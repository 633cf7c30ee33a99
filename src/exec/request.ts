/**
 * The invocation request: what a caller signs, and its id (the CID of the signed request's
 * DAG-CBOR bytes). The id seeds the sandbox, so every executor computes the same thing.
 */
import { z } from 'zod'
import { type CID, cidForBytes, parseCid } from '../content/index.ts'
import { toHex } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'
import { canonicalBytes, keyId, type PrivateKey, signValue, verifyValue } from '../keys/index.ts'
import { LIMIT_RANGES } from '../sandbox/index.ts'
import {
  cidString,
  ExportNameSchema,
  isJsonValue,
  KeyIdSchema,
  MAX_JSON_BYTES,
  SafeUintSchema,
  SignatureSchema,
} from './fields.ts'

/** Default replicas *k* and quorum *q*. */
export const DEFAULT_REPLICAS = 3
export const DEFAULT_QUORUM = 2
/** The most executors one request may ask for. */
export const MAX_REPLICAS = 16

const MiB = 1024 * 1024
const { fuel, memoryBytes, timeoutMs } = LIMIT_RANGES
/**
 * Default per-call limits a request asks for: the sandbox's defaults (fuel in its deterministic
 * ticks, about one second of work). A covenant may allow less, which excludes that node.
 */
export const DEFAULT_REQUEST_LIMITS = Object.freeze({
  fuel: fuel.default,
  memoryMiB: memoryBytes.default / MiB,
  timeoutMs: timeoutMs.default,
})
/** The range the sandbox can enforce, in a request's units. */
export const MIN_MEMORY_MIB = memoryBytes.min / MiB
export const MAX_MEMORY_MIB = memoryBytes.max / MiB
export const MIN_TIMEOUT_MS = timeoutMs.min
export const MAX_TIMEOUT_MS = timeoutMs.max
export const MAX_FUEL = fuel.max
/** A deadline further ahead than this is refused: it would let a request be replayed for long. */
export const MAX_DEADLINE_AHEAD_MS = 15 * 60_000
/** How far a request's timestamp may lie in the future of the checker's clock. */
export const MAX_CLOCK_SKEW_MS = 60_000

const RequestBodyShape = {
  v: z.literal(1),
  /** the manifest CID naming the function (dag-cbor) */
  fn: cidString('dag-cbor'),
  export: ExportNameSchema,
  args: z.array(z.unknown()).max(65_536).refine(isJsonValue, 'args must be JSON values'),
  fuel: z.number().int().min(fuel.min).max(MAX_FUEL),
  memoryMiB: z.number().int().min(MIN_MEMORY_MIB).max(MAX_MEMORY_MIB),
  timeoutMs: z.number().int().min(MIN_TIMEOUT_MS).max(MAX_TIMEOUT_MS),
  /** ms since the epoch after which no executor runs it and no caller waits */
  deadline: SafeUintSchema,
  k: z.number().int().min(1).max(MAX_REPLICAS),
  q: z.number().int().min(1).max(MAX_REPLICAS),
  nonce: z.string().min(8).max(128),
  /** ms since the epoch; the sandbox's clock reads this */
  timestamp: SafeUintSchema,
  caller: KeyIdSchema,
}

export const RequestBodySchema = z.strictObject(RequestBodyShape)
export type RequestBody = z.infer<typeof RequestBodySchema>

/** A request as it travels: the body and the caller's Ed25519 signature over its DAG-CBOR. */
export const SignedRequestSchema = z.strictObject({ ...RequestBodyShape, signature: SignatureSchema })
export type SignedRequest = z.infer<typeof SignedRequestSchema>

/** What `createRequest` needs; everything but `fn` and `export` has a default. */
export const ExecRequestInitSchema = z.strictObject({
  fn: z.union([z.string(), z.custom<CID>((v) => typeof v === 'object' && v !== null && 'multihash' in v)]),
  export: z.string(),
  args: z.array(z.unknown()).default([]),
  fuel: z.number().default(DEFAULT_REQUEST_LIMITS.fuel),
  memoryMiB: z.number().default(DEFAULT_REQUEST_LIMITS.memoryMiB),
  timeoutMs: z.number().default(DEFAULT_REQUEST_LIMITS.timeoutMs),
  /** default: timestamp + max(30 s, 3 × timeoutMs), room for replacing slow executors */
  deadline: z.number().optional(),
  k: z.number().default(DEFAULT_REPLICAS),
  q: z.number().default(DEFAULT_QUORUM),
  nonce: z.string().optional(),
  timestamp: z.number().optional(),
})
export type ExecRequestInit = z.input<typeof ExecRequestInitSchema>

/** The request id: CIDv1 (dag-cbor, sha2-256) of the signed request's DAG-CBOR bytes, in base32. */
export function requestId(request: SignedRequest): string {
  return cidForBytes(canonicalBytes(request), 'dag-cbor').toString()
}

/** The bytes executor selection measures XOR distance from: the request id's binary CID. */
export function requestIdBytes(id: string): Uint8Array {
  return parseCid(id).bytes
}

function randomNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)))
}

function invalid(error: z.ZodError, what: string): CovenantError {
  return new CovenantError('INVALID_REQUEST', `${what}: ${z.prettifyError(error)}`, {
    details: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  })
}

function unsigned(request: SignedRequest): RequestBody {
  const { signature: _, ...body } = request
  return body
}

/**
 * Checks what does not depend on a clock: the shape, the caller's signature, q ≤ k and the size of
 * the arguments. Certificates are checked with this long after the deadline.
 */
export function checkRequest(value: unknown): { request: SignedRequest; id: string } {
  const parsed = SignedRequestSchema.safeParse(value)
  if (!parsed.success) throw invalid(parsed.error, 'invalid request')
  const request = parsed.data
  if (request.q > request.k)
    throw new CovenantError('INVALID_REQUEST', `quorum q=${request.q} is larger than replicas k=${request.k}`)
  if (request.deadline <= request.timestamp)
    throw new CovenantError('INVALID_REQUEST', 'the deadline is not after the timestamp')
  let bytes: Uint8Array
  try {
    bytes = canonicalBytes(request)
  } catch (err) {
    throw new CovenantError('INVALID_REQUEST', 'the request cannot be encoded as DAG-CBOR', { cause: err })
  }
  const argsBytes = canonicalBytes(request.args).length
  if (argsBytes > MAX_JSON_BYTES)
    throw new CovenantError('INVALID_REQUEST', `args are ${argsBytes} bytes, more than ${MAX_JSON_BYTES}`)
  if (!verifyValue(request.caller, unsigned(request), request.signature))
    throw new CovenantError('INVALID_SIGNATURE', `the request is not signed by its caller ${request.caller}`)
  return { request, id: cidForBytes(bytes, 'dag-cbor').toString() }
}

/**
 * Checks a request received from elsewhere at time `now`: everything {@link checkRequest} does,
 * plus that the deadline has not passed (DEADLINE_EXCEEDED), is not absurdly far ahead and the
 * timestamp is not from the future (INVALID_REQUEST).
 */
export function verifyRequest(
  value: unknown,
  now: number = Date.now(),
): { request: SignedRequest; id: string } {
  const checked = checkRequest(value)
  const { request } = checked
  if (request.deadline <= now)
    throw new CovenantError(
      'DEADLINE_EXCEEDED',
      `the request deadline passed ${now - request.deadline} ms ago`,
    )
  if (request.deadline > now + MAX_DEADLINE_AHEAD_MS)
    throw new CovenantError('INVALID_REQUEST', `the deadline is more than ${MAX_DEADLINE_AHEAD_MS} ms ahead`)
  if (request.timestamp > now + MAX_CLOCK_SKEW_MS)
    throw new CovenantError('INVALID_REQUEST', 'the request timestamp is in the future')
  return checked
}

/** Builds and signs a request; `now` is the clock used for the timestamp default. */
export function createRequest(
  key: PrivateKey,
  init: ExecRequestInit,
  now: number = Date.now(),
): { request: SignedRequest; id: string } {
  const parsed = ExecRequestInitSchema.safeParse(init)
  if (!parsed.success) throw invalid(parsed.error, 'invalid request options')
  const i = parsed.data
  const timestamp = i.timestamp ?? now
  const body = {
    v: 1 as const,
    fn: typeof i.fn === 'string' ? i.fn : i.fn.toString(),
    export: i.export,
    args: i.args,
    fuel: i.fuel,
    memoryMiB: i.memoryMiB,
    timeoutMs: i.timeoutMs,
    deadline: i.deadline ?? timestamp + Math.max(30_000, 3 * i.timeoutMs),
    k: i.k,
    q: i.q,
    nonce: i.nonce ?? randomNonce(),
    timestamp,
    caller: keyId(key),
  }
  const checkedBody = RequestBodySchema.safeParse(body)
  if (!checkedBody.success) throw invalid(checkedBody.error, 'invalid request')
  const request: SignedRequest = { ...checkedBody.data, signature: signValue(key, checkedBody.data) }
  return checkRequest(request)
}

/** The limits a request asks for, in the shape covenants and selection compare. */
export function requestLimits(request: RequestBody): { fuel: number; memoryMiB: number; timeoutMs: number } {
  return { fuel: request.fuel, memoryMiB: request.memoryMiB, timeoutMs: request.timeoutMs }
}
