/**
 * Receipts: an executor's signed statement "for request R I computed output hash H using F fuel,
 * under covenant version V, on sandbox build B".
 */
import { z } from 'zod'
import { CovenantError, issueCode } from '../errors/index.ts'
import { keyId, type PrivateKey, signValue, verifyValue } from '../keys/index.ts'
import { cidString, KeyIdSchema, SafeUintSchema, Sha256HexSchema, SignatureSchema } from './fields.ts'

const ReceiptBodyShape = {
  /** 3: `outputHash` covers the output's JSON text and, when present, its store effects and jobs (output.ts) */
  v: z.literal(3),
  /** the request id */
  request: cidString('dag-cbor'),
  outputHash: Sha256HexSchema,
  fuel: SafeUintSchema,
  executor: KeyIdSchema,
  covenantVersion: SafeUintSchema,
  /**
   * The sandbox build that ran the call (`SANDBOX_BUILD`: a hash of the prelude and the engine).
   * Executors on different builds may honestly compute different outputs, so a receipt is only
   * compared with receipts of the same build when looking for a liar.
   */
  build: Sha256HexSchema,
}

export const ReceiptBodySchema = z.strictObject(ReceiptBodyShape)
export type ReceiptBody = z.infer<typeof ReceiptBodySchema>

export const ReceiptSchema = z.strictObject({ ...ReceiptBodyShape, signature: SignatureSchema })
export type Receipt = z.infer<typeof ReceiptSchema>

/** What an executor states; the version and its own key id are added when signing. */
export type ReceiptInit = Omit<ReceiptBody, 'v' | 'executor'>

export function signReceipt(key: PrivateKey, init: ReceiptInit): Receipt {
  const body = ReceiptBodySchema.safeParse({ v: 3, ...init, executor: keyId(key) })
  if (!body.success)
    throw new CovenantError('INVALID_INPUT', `invalid receipt: ${z.prettifyError(body.error)}`)
  return { ...body.data, signature: signValue(key, body.data) }
}

/**
 * Checks a receipt's shape and its executor's signature; returns it parsed. Throws
 * PROTOCOL_ERROR for a malformed receipt (INVALID_KEY_ID for an executor id in another spelling)
 * and INVALID_SIGNATURE for a bad signature.
 */
export function verifyReceipt(value: unknown): Receipt {
  return verifyExecutorSigned(ReceiptSchema, value, 'receipt')
}

/**
 * Parses an executor's signed statement (a receipt, a refusal) with `schema` (PROTOCOL_ERROR, or
 * INVALID_KEY_ID) and checks that its `executor` signed it (INVALID_SIGNATURE).
 */
export function verifyExecutorSigned<T extends { executor: string; signature: Uint8Array }>(
  schema: z.ZodType<T>,
  value: unknown,
  what: string,
): T {
  const parsed = schema.safeParse(value)
  if (!parsed.success)
    throw new CovenantError(
      issueCode(parsed.error, 'PROTOCOL_ERROR'),
      `invalid ${what}: ${z.prettifyError(parsed.error)}`,
    )
  const { signature, ...body } = parsed.data
  if (!verifyValue(body.executor, body, signature))
    throw new CovenantError('INVALID_SIGNATURE', `the ${what} is not signed by its executor ${body.executor}`)
  return parsed.data
}
