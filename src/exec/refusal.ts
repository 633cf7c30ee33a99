/**
 * Refusals: an executor's signed statement "I will not run request R, because C". A certificate
 * names the executors ranked ahead of its signers that did not sign, and a refusal is the proof
 * that one of them declined — but only a refusal that stands whenever the executor is asked
 * ({@link STANDING_REFUSALS}): one a gateway could provoke (by asking late, or by keeping the
 * executor busy) proves nothing about the executor and counts as an unproven skip.
 */
import { z } from 'zod'
import { CovenantError, type ErrorCode, isErrorCode } from '../errors/index.ts'
import { keyId, type PrivateKey, signValue } from '../keys/index.ts'
import { cidString, KeyIdSchema, SignatureSchema } from './fields.ts'
import { verifyExecutorSigned } from './receipt.ts'

/**
 * Refusals that excuse an executor from a certificate: its covenant refuses the call, its own view
 * does not rank it among the executors, the manifest lacks the export, or it judges the request
 * invalid (its clock). None of them depends on when or how often a gateway asks.
 */
export const STANDING_REFUSALS: ReadonlySet<ErrorCode> = new Set([
  'COVENANT_REFUSED',
  'NOT_SELECTED',
  'NO_SUCH_EXPORT',
  'INVALID_REQUEST',
])

const RefusalBodyShape = {
  v: z.literal(1),
  /** the request id */
  request: cidString('dag-cbor'),
  executor: KeyIdSchema,
  code: z.string().refine(isErrorCode, 'expected an error code'),
  message: z.string().max(1024),
}

export const RefusalBodySchema = z.strictObject(RefusalBodyShape)
export const RefusalSchema = z.strictObject({ ...RefusalBodyShape, signature: SignatureSchema })
export type Refusal = z.infer<typeof RefusalSchema> & { code: ErrorCode }

/** Signs a refusal of request `request` with the error `error`. */
export function signRefusal(key: PrivateKey, request: string, error: CovenantError): Refusal {
  const body = {
    v: 1 as const,
    request,
    executor: keyId(key),
    code: error.code,
    message: error.message.slice(0, 1024),
  }
  return { ...body, signature: signValue(key, body) }
}

/**
 * Checks a refusal's shape (PROTOCOL_ERROR, INVALID_KEY_ID) and its executor's signature
 * (INVALID_SIGNATURE); returns it parsed.
 */
export function verifyRefusal(value: unknown): Refusal {
  return verifyExecutorSigned(RefusalSchema, value, 'refusal') as Refusal
}

/** The error a refusal states, as the caller sees it. */
export function refusalError(refusal: Refusal): CovenantError {
  return new CovenantError(refusal.code, refusal.message)
}
