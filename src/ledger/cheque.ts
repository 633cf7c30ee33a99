/**
 * The two signed notes that move money within one (payer, payee) pair.
 *
 * A *cheque* is signed by the payer: "I, payer, have paid payee `cumulative` ncr in all, up to and
 * including cheque number `seq`". Being cumulative, cheques are idempotent: the payee keeps the
 * highest, so a lost cheque is made good by the next, and a duplicated, replayed or late one
 * changes nothing.
 *
 * A *deposit* is signed by the payee: "I credited payer `amount` ncr", a devnet faucet's grant.
 * Both sides count it once, by its id.
 *
 * No clock, no `node:` imports: a browser signs and checks these as the node does.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import { bytesFieldsFromJSON, bytesFieldsToJSON, type JsonForm } from '../encoding/index.ts'
import { CovenantError, type ErrorCode } from '../errors/index.ts'
import {
  KeyIdSchema,
  keyId,
  type PrivateKey,
  SignatureJSONSchema,
  SignatureSchema,
  signValue,
  verifyValue,
} from '../keys/index.ts'
import { AmountSchema } from './pricing.ts'

const SafeUint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/** Signed notes are small; anything larger is refused before decoding. */
export const MAX_NOTE_BYTES = 4096

/** Signs `body` with `key` after checking it against `schema` (INVALID_INPUT if it does not fit). */
export function signNote<S extends z.ZodType<Record<string, unknown>>>(
  key: PrivateKey,
  schema: S,
  body: unknown,
  what: string,
): z.output<S> & { signature: Uint8Array } {
  const parsed = schema.safeParse(body)
  if (!parsed.success)
    throw new CovenantError('INVALID_INPUT', `invalid ${what}: ${z.prettifyError(parsed.error)}`)
  // a plain Uint8Array, as decoding gives back: libp2p signs into a Buffer
  return { ...parsed.data, signature: new Uint8Array(signValue(key, parsed.data)) }
}

/**
 * Checks a signed note's shape and its signature by the key its `signer` field names; throws `code`
 * with what is wrong. The body is everything but `signature`.
 */
export function verifyNote<S extends z.ZodType<Record<string, unknown> & { signature: Uint8Array }>>(
  schema: S,
  value: unknown,
  signer: (note: z.output<S>) => string,
  code: ErrorCode,
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new CovenantError(code, `malformed ${what}: ${z.prettifyError(parsed.error)}`)
  const { signature, ...body } = parsed.data
  if (!verifyValue(signer(parsed.data), body, signature))
    throw new CovenantError(code, `the ${what} is not signed by ${signer(parsed.data)}`)
  return parsed.data
}

/** Reads a note from its JSON form (signature in base64); shape only, verify it after. */
function noteFromJSON<S extends z.ZodType>(
  schema: S,
  json: unknown,
  code: ErrorCode,
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(bytesFieldsFromJSON(json, ['signature']))
  if (!parsed.success) throw new CovenantError(code, `malformed ${what}: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/** Reads a note stored or sent as DAG-CBOR; shape only, verify it after. */
export function decodeNote<S extends z.ZodType>(
  schema: S,
  bytes: Uint8Array,
  code: ErrorCode,
  what: string,
): z.output<S> {
  if (bytes.length > MAX_NOTE_BYTES)
    throw new CovenantError(code, `a ${what} of ${bytes.length} bytes is too large`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new CovenantError(code, `the ${what} is not valid DAG-CBOR`, { cause: err })
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new CovenantError(code, `malformed ${what}: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

// ── cheques ─────────────────────────────────────────────────────────────────────────────────────

const ChequeBodyShape = {
  v: z.literal(1),
  payer: KeyIdSchema,
  payee: KeyIdSchema,
  /** everything the payer has paid the payee, in ncr, this cheque included */
  cumulative: AmountSchema,
  /** 1 for the payer's first cheque to this payee, one more for each after */
  seq: SafeUint.min(1),
  /** ms since the epoch, for people reading a history; no rule depends on it */
  issuedAt: SafeUint,
}
export const ChequeBodySchema = z.strictObject(ChequeBodyShape)
export const ChequeSchema = z.strictObject({ ...ChequeBodyShape, signature: SignatureSchema })
export type Cheque = z.infer<typeof ChequeSchema>
export const ChequeJSONSchema = ChequeSchema.extend({ signature: SignatureJSONSchema })
export type ChequeJSON = JsonForm<Cheque>

/** Signs a cheque from `key` (the payer) to `init.payee`. */
export function signCheque(
  key: PrivateKey,
  init: { payee: string; cumulative: number; seq: number; issuedAt: number },
): Cheque {
  const payer = keyId(key)
  if (init.payee === payer) throw new CovenantError('INVALID_INPUT', 'a cheque to oneself pays nothing')
  return signNote(key, ChequeBodySchema, { v: 1, payer, ...init }, 'cheque')
}

/**
 * Checks a cheque from anywhere: its shape, its payer's signature, that payer and payee differ and,
 * with `payee`, that it is made out to that payee (a cheque to someone else, replayed here, is
 * refused). Throws INVALID_CHEQUE saying which.
 */
export function verifyCheque(value: unknown, expect: { payee?: string; payer?: string } = {}): Cheque {
  const cheque = verifyNote(ChequeSchema, value, (c) => c.payer, 'INVALID_CHEQUE', 'cheque')
  if (cheque.payer === cheque.payee)
    throw new CovenantError('INVALID_CHEQUE', 'the cheque pays its own payer')
  if (expect.payee !== undefined && cheque.payee !== expect.payee)
    throw new CovenantError(
      'INVALID_CHEQUE',
      `the cheque is made out to ${cheque.payee}, not ${expect.payee}`,
    )
  if (expect.payer !== undefined && cheque.payer !== expect.payer)
    throw new CovenantError('INVALID_CHEQUE', `the cheque is from ${cheque.payer}, not ${expect.payer}`)
  return cheque
}

export function chequeToJSON(cheque: Cheque): ChequeJSON {
  return bytesFieldsToJSON(cheque)
}

/** Reads a cheque from its JSON form; shape only (INVALID_CHEQUE), check it with {@link verifyCheque}. */
export function chequeFromJSON(json: unknown): Cheque {
  return noteFromJSON(ChequeSchema, json, 'INVALID_CHEQUE', 'cheque')
}

// ── deposits ────────────────────────────────────────────────────────────────────────────────────

const DepositBodyShape = {
  v: z.literal(1),
  /** the node that grants the credit, and signs */
  payee: KeyIdSchema,
  /** the caller credited */
  payer: KeyIdSchema,
  amount: AmountSchema.min(1),
  /** unique per payee: counted once however often it is shown */
  id: z.string().min(8).max(128),
  issuedAt: SafeUint,
}
export const DepositBodySchema = z.strictObject(DepositBodyShape)
export const DepositSchema = z.strictObject({ ...DepositBodyShape, signature: SignatureSchema })
export type Deposit = z.infer<typeof DepositSchema>
export const DepositJSONSchema = DepositSchema.extend({ signature: SignatureJSONSchema })
export type DepositJSON = JsonForm<Deposit>

/** Signs a deposit from `key` (the payee, minting) to `init.payer`. */
export function signDeposit(
  key: PrivateKey,
  init: { payer: string; amount: number; id: string; issuedAt: number },
): Deposit {
  return signNote(key, DepositBodySchema, { v: 1, payee: keyId(key), ...init }, 'deposit')
}

/** Checks a deposit's shape, its payee's signature and, with `payer`, whom it credits (INVALID_DEPOSIT). */
export function verifyDeposit(value: unknown, expect: { payer?: string } = {}): Deposit {
  const deposit = verifyNote(DepositSchema, value, (d) => d.payee, 'INVALID_DEPOSIT', 'deposit')
  if (expect.payer !== undefined && deposit.payer !== expect.payer)
    throw new CovenantError('INVALID_DEPOSIT', `the deposit credits ${deposit.payer}, not ${expect.payer}`)
  return deposit
}

export function depositToJSON(deposit: Deposit): DepositJSON {
  return bytesFieldsToJSON(deposit)
}

/** Reads a deposit from its JSON form; shape only (INVALID_DEPOSIT), check it with {@link verifyDeposit}. */
export function depositFromJSON(json: unknown): Deposit {
  return noteFromJSON(DepositSchema, json, 'INVALID_DEPOSIT', 'deposit')
}
