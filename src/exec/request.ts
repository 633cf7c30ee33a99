/**
 * The invocation request: what a caller signs, and its id (the CID of the signed request's
 * DAG-CBOR bytes). The id seeds the sandbox, so every executor computes the same thing; who
 * executes follows from the request's ticket (ticket.ts), not from its id.
 */
import { equals } from 'uint8arrays/equals'
import { z } from 'zod'
import { type CID, cidForBytes } from '../content/index.ts'
import { toHex } from '../encoding/index.ts'
import { CovenantError, issueCode } from '../errors/index.ts'
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
import { MAX_OUTPUT_MIB } from './stored-output.ts'
import { checkTicket, TicketSchema, ticketFor } from './ticket.ts'

/** Default replicas *k* and quorum *q*. */
export const DEFAULT_REPLICAS = 3
export const DEFAULT_QUORUM = 2
/** The most executors one request may ask for. */
export const MAX_REPLICAS = 16
/** The most namespaces one request may fix versions of. */
export const MAX_STORE_READS = 16

const MiB = 1024 * 1024
const { fuel, memoryBytes, timeoutMs } = LIMIT_RANGES

/**
 * The limits a request may ask for, each one of a few tiers: a request cannot name a limit just
 * above what most covenants allow (say `memoryMiB: 65`) to leave only the few permissive nodes
 * eligible. A covenant's maximum admits every tier up to it. Fuel is in the sandbox's
 * deterministic ticks (2000 ≈ one second of work), the wall clock per executor in ms.
 */
export const LIMIT_TIERS = Object.freeze({
  fuel: Object.freeze([
    200,
    2_000,
    20_000,
    200_000,
    2_000_000,
    20_000_000,
    200_000_000,
    fuel.max,
  ]) as readonly number[],
  memoryMiB: Object.freeze([16, 32, 64, 128, 256, 512, memoryBytes.max / MiB]) as readonly number[],
  timeoutMs: Object.freeze([1_000, 5_000, 30_000, 120_000, timeoutMs.max]) as readonly number[],
  /** the largest JSON text the call may return; above 1 MiB it is stored, not sent (stored-output.ts) */
  outputMiB: Object.freeze([1, 4, 16, MAX_OUTPUT_MIB]) as readonly number[],
})

/**
 * Default per-call limits a request asks for: the sandbox's defaults (each a tier), which a default
 * executing covenant accepts. A covenant may allow less, which excludes that node.
 */
export const DEFAULT_REQUEST_LIMITS = Object.freeze({
  fuel: fuel.default,
  memoryMiB: memoryBytes.default / MiB,
  timeoutMs: timeoutMs.default,
})
/** A deadline further ahead of the timestamp than this is refused: it would let a request live long. */
export const MAX_DEADLINE_AHEAD_MS = 15 * 60_000
/** How far a request's timestamp may lie from the checker's clock, beyond the deadline window. */
export const MAX_CLOCK_SKEW_MS = 60_000

function tier(name: keyof typeof LIMIT_TIERS) {
  const tiers = LIMIT_TIERS[name]
  return z.number().refine((v) => tiers.includes(v), `${name} must be one of the tiers ${tiers.join(', ')}`)
}

/**
 * The version of each namespace the function reads (`{ [namespace id]: seq }`): every executor
 * reads at exactly these versions, so all read the same thing. A read of a namespace not named
 * here ends the call with STORE_NOT_FIXED. Absent when the function reads no namespace.
 */
export const StoreReadsSchema = z.record(cidString('dag-cbor'), SafeUintSchema).refine((r) => {
  const n = Object.keys(r).length
  return n >= 1 && n <= MAX_STORE_READS
}, `reads fixes the versions of 1 to ${MAX_STORE_READS} namespaces`)
export type StoreReads = z.infer<typeof StoreReadsSchema>

const RequestBodyShape = {
  /** 3: `reads` fixes the namespace versions the function reads */
  v: z.literal(3),
  /** the manifest CID naming the function (dag-cbor) */
  fn: cidString('dag-cbor'),
  export: ExportNameSchema,
  args: z.array(z.unknown()).max(65_536).refine(isJsonValue, 'args must be JSON values'),
  fuel: tier('fuel'),
  memoryMiB: tier('memoryMiB'),
  timeoutMs: tier('timeoutMs'),
  /** the largest output the caller asks for, in MiB; absent means 1 (what a reply carries) */
  outputMiB: tier('outputMiB').optional(),
  /** ms since the epoch after which no executor runs it and no caller waits */
  deadline: SafeUintSchema,
  k: z.number().int().min(1).max(MAX_REPLICAS),
  q: z.number().int().min(1).max(MAX_REPLICAS),
  /** makes two otherwise identical calls two requests; selection does not depend on it */
  nonce: z.string().min(8).max(128),
  /** the caller's proof of work for this hour; selection depends on it */
  ticket: TicketSchema,
  /** ms since the epoch; the sandbox's clock reads this */
  timestamp: SafeUintSchema,
  caller: KeyIdSchema,
  reads: StoreReadsSchema.optional(),
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
  /** one of LIMIT_TIERS.outputMiB; left out of the request when not given (1 MiB) */
  outputMiB: z.number().optional(),
  /** default: timestamp + max(30 s, 3 × timeoutMs), at most 15 min: room for replacing slow executors */
  deadline: z.number().optional(),
  k: z.number().default(DEFAULT_REPLICAS),
  q: z.number().default(DEFAULT_QUORUM),
  nonce: z.string().optional(),
  /** default: the caller's ticket for this hour, minted (and kept in memory) on first use */
  ticket: TicketSchema.optional(),
  timestamp: z.number().optional(),
  /** the namespace versions the function reads at (see {@link StoreReadsSchema}) */
  reads: z.record(z.string(), z.number()).optional(),
})
export type ExecRequestInit = z.input<typeof ExecRequestInitSchema>

/** The request id: CIDv1 (dag-cbor, sha2-256) of the signed request's DAG-CBOR bytes, in base32. */
export function requestId(request: SignedRequest): string {
  return cidForBytes(canonicalBytes(request), 'dag-cbor').toString()
}

function randomNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)))
}

function invalid(error: z.ZodError, what: string): CovenantError {
  return new CovenantError(issueCode(error, 'INVALID_REQUEST'), `${what}: ${z.prettifyError(error)}`, {
    details: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  })
}

/**
 * Requests that passed {@link checkRequest} in this process, with their canonical bytes and id: a
 * call's request is checked by the gateway, each executor, each holder of what it writes and each
 * payee, several times in one process (the route, the certificate, the payment), and past its
 * shape every check is a pure function of those bytes (the ticket, the signature, the id). A
 * request whose bytes are exactly the ones that passed passes; any other is checked in full. Only
 * successes are kept; bounded, the oldest forgotten first.
 */
const passedRequests = new Map<string, { bytes: Uint8Array; id: string }>()
const PASSED_MAX_ENTRIES = 1024
const PASSED_MAX_BYTES = 4096

function passedKey(request: SignedRequest): string {
  let key = request.caller
  for (const byte of request.signature) key += String.fromCharCode(byte)
  return key
}

function unsigned(request: SignedRequest): RequestBody {
  const { signature: _, ...body } = request
  return body
}

/**
 * Checks what does not depend on a clock: the shape (limits on their tiers, key ids canonical:
 * INVALID_KEY_ID), the caller's signature, q ≤ k, a deadline after the timestamp and at most
 * {@link MAX_DEADLINE_AHEAD_MS} after it, the ticket, and the size of the arguments. Certificates
 * are checked with this long after the deadline.
 */
export function checkRequest(value: unknown): { request: SignedRequest; id: string } {
  const parsed = SignedRequestSchema.safeParse(value)
  if (!parsed.success) throw invalid(parsed.error, 'invalid request')
  const request = parsed.data
  if (request.q > request.k)
    throw new CovenantError('INVALID_REQUEST', `quorum q=${request.q} is larger than replicas k=${request.k}`)
  if (request.deadline <= request.timestamp)
    throw new CovenantError('INVALID_REQUEST', 'the deadline is not after the timestamp')
  if (request.deadline - request.timestamp > MAX_DEADLINE_AHEAD_MS)
    throw new CovenantError(
      'INVALID_REQUEST',
      `the deadline is more than ${MAX_DEADLINE_AHEAD_MS} ms after the timestamp`,
    )
  let bytes: Uint8Array
  try {
    bytes = canonicalBytes(request)
  } catch (err) {
    throw new CovenantError('INVALID_REQUEST', 'the request cannot be encoded as DAG-CBOR', { cause: err })
  }
  const known = passedRequests.get(passedKey(request))
  if (known !== undefined && equals(known.bytes, bytes)) return { request, id: known.id }
  // the args' encoding is a part of the request's: only a request over the limit can have args over it
  const argsBytes = bytes.byteLength <= MAX_JSON_BYTES ? 0 : canonicalBytes(request.args).byteLength
  if (argsBytes > MAX_JSON_BYTES)
    throw new CovenantError('INVALID_REQUEST', `args are ${argsBytes} bytes, more than ${MAX_JSON_BYTES}`)
  checkTicket(request.caller, request.ticket, request.timestamp)
  if (!verifyValue(request.caller, unsigned(request), request.signature))
    throw new CovenantError('INVALID_SIGNATURE', `the request is not signed by its caller ${request.caller}`)
  const id = cidForBytes(bytes, 'dag-cbor').toString()
  if (bytes.byteLength <= PASSED_MAX_BYTES) {
    if (passedRequests.size >= PASSED_MAX_ENTRIES)
      passedRequests.delete(passedRequests.keys().next().value as string)
    passedRequests.set(passedKey(request), { bytes, id })
  }
  return { request, id }
}

/**
 * Checks a request's times against the clock `now`: the deadline has not passed
 * (DEADLINE_EXCEEDED), and the timestamp is within {@link MAX_CLOCK_SKEW_MS} of the future and
 * not older than the longest deadline window allows (INVALID_REQUEST).
 */
export function checkRequestTime(request: RequestBody, now: number): void {
  if (request.deadline <= now)
    throw new CovenantError(
      'DEADLINE_EXCEEDED',
      `the request deadline passed ${now - request.deadline} ms ago`,
    )
  if (request.timestamp > now + MAX_CLOCK_SKEW_MS)
    throw new CovenantError('INVALID_REQUEST', 'the request timestamp is in the future')
  if (request.timestamp < now - MAX_DEADLINE_AHEAD_MS - MAX_CLOCK_SKEW_MS)
    throw new CovenantError('INVALID_REQUEST', 'the request timestamp is too old')
}

/** Checks a request received from elsewhere at time `now`: {@link checkRequest}, then {@link checkRequestTime}. */
export function verifyRequest(
  value: unknown,
  now: number = Date.now(),
): { request: SignedRequest; id: string } {
  const checked = checkRequest(value)
  checkRequestTime(checked.request, now)
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
  const caller = keyId(key)
  const body = {
    v: 3 as const,
    fn: typeof i.fn === 'string' ? i.fn : i.fn.toString(),
    export: i.export,
    args: i.args,
    fuel: i.fuel,
    memoryMiB: i.memoryMiB,
    timeoutMs: i.timeoutMs,
    ...(i.outputMiB === undefined ? {} : { outputMiB: i.outputMiB }),
    deadline: i.deadline ?? timestamp + Math.min(MAX_DEADLINE_AHEAD_MS, Math.max(30_000, 3 * i.timeoutMs)),
    k: i.k,
    q: i.q,
    nonce: i.nonce ?? randomNonce(),
    ticket: i.ticket ?? ticketFor(caller, timestamp),
    timestamp,
    caller,
    ...(i.reads === undefined || Object.keys(i.reads).length === 0 ? {} : { reads: i.reads }),
  }
  const checkedBody = RequestBodySchema.safeParse(body)
  if (!checkedBody.success) throw invalid(checkedBody.error, 'invalid request')
  const request: SignedRequest = { ...checkedBody.data, signature: signValue(key, checkedBody.data) }
  return checkRequest(request)
}

/** The limits a request asks for, in the shape covenants and selection compare. */
export function requestLimits(request: RequestBody): {
  fuel: number
  memoryMiB: number
  timeoutMs: number
  outputMiB: number
} {
  return {
    fuel: request.fuel,
    memoryMiB: request.memoryMiB,
    timeoutMs: request.timeoutMs,
    outputMiB: request.outputMiB ?? 1,
  }
}
