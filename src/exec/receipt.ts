/**
 * Receipts: an executor's signed statement "for request R I computed output hash H using F fuel,
 * under covenant version V".
 */
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { keyId, type PrivateKey, signValue, verifyValue } from '../keys/index.ts'
import { cidString, KeyIdSchema, SafeUintSchema, Sha256HexSchema, SignatureSchema } from './fields.ts'

const ReceiptBodyShape = {
  v: z.literal(1),
  /** the request id */
  request: cidString('dag-cbor'),
  outputHash: Sha256HexSchema,
  fuel: SafeUintSchema,
  executor: KeyIdSchema,
  covenantVersion: SafeUintSchema,
}

export const ReceiptBodySchema = z.strictObject(ReceiptBodyShape)
export type ReceiptBody = z.infer<typeof ReceiptBodySchema>

export const ReceiptSchema = z.strictObject({ ...ReceiptBodyShape, signature: SignatureSchema })
export type Receipt = z.infer<typeof ReceiptSchema>

export interface ReceiptInit {
  request: string
  outputHash: string
  fuel: number
  covenantVersion: number
}

export function signReceipt(key: PrivateKey, init: ReceiptInit): Receipt {
  const body = ReceiptBodySchema.safeParse({ v: 1, ...init, executor: keyId(key) })
  if (!body.success)
    throw new CovenantError('INVALID_INPUT', `invalid receipt: ${z.prettifyError(body.error)}`)
  return { ...body.data, signature: signValue(key, body.data) }
}

/**
 * Checks a receipt's shape and its executor's signature; returns it parsed. Throws
 * PROTOCOL_ERROR for a malformed receipt and INVALID_SIGNATURE for a bad signature.
 */
export function verifyReceipt(value: unknown): Receipt {
  const parsed = ReceiptSchema.safeParse(value)
  if (!parsed.success)
    throw new CovenantError('PROTOCOL_ERROR', `invalid receipt: ${z.prettifyError(parsed.error)}`)
  const { signature, ...body } = parsed.data
  if (!verifyValue(body.executor, body, signature))
    throw new CovenantError('INVALID_SIGNATURE', `the receipt is not signed by its executor ${body.executor}`)
  return parsed.data
}
