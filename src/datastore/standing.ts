/**
 * What a namespace keeps for its holders' own checks, under two reserved key prefixes:
 *
 * - **standing grants** (`_grants/<function CID>/<grant CID>`): the owner's grants to a function,
 *   which a function's commit relies on without carrying them, so whoever runs the function (a
 *   browser) needs neither the grant nor the owner's key;
 * - **vouches** (`_vouches/<executor>/<voucher>`): a key's signed word that it vouches for an
 *   executor, which a write policy with `certifiers: { vouchedBy }` counts.
 *
 * Both are self-certifying (a grant's chain leads to the owner, a vouch is signed by its voucher),
 * so who stored them does not matter, and a holder reads them from its own copy at the entry's
 * place in the history: every holder judges an entry alike, when it is new and when it is replayed.
 * Values are JSON, so bytes travel in base64.
 */
import { z } from 'zod'
import { fromBase64, toBase64 } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'
import {
  KeyIdSchema,
  keyId,
  type PrivateKey,
  SignatureSchema,
  signValue,
  verifyValue,
} from '../keys/index.ts'

/** Where a namespace keeps the owner's standing grants to functions. */
export const GRANTS_PREFIX = '_grants/'
/** Where a namespace keeps vouches for executors. */
export const VOUCHES_PREFIX = '_vouches/'

/** The key a standing grant to the function `fn` is kept under: one key per grant. */
export function standingGrantKey(fn: string, grantCid: string): string {
  return `${GRANTS_PREFIX}${fn}/${grantCid}`
}

/** The prefix of the standing grants to the function `fn`. */
export function standingGrantsPrefix(fn: string): string {
  return `${GRANTS_PREFIX}${fn}/`
}

/** The key `voucher`'s vouch for `executor` is kept under. */
export function vouchKey(executor: string, voucher: string): string {
  return `${VOUCHES_PREFIX}${executor}/${voucher}`
}

const VouchBodyShape = {
  v: z.literal(1),
  /** the key that vouches: counted when a policy names it in `vouchedBy` */
  voucher: KeyIdSchema,
  /** the executor vouched for */
  executor: KeyIdSchema,
  /** ms since the epoch; the vouch counts for entries before it */
  expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}

/** A key's signed word that it vouches for an executor's receipts, until `expiresAt`. */
export const VouchSchema = z.strictObject({ ...VouchBodyShape, signature: SignatureSchema })
export type Vouch = z.infer<typeof VouchSchema>

/** A vouch as a namespace keeps it: its signature in base64. */
export const VouchJSONSchema = z.strictObject({
  ...VouchBodyShape,
  signature: z
    .string()
    .max(128)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
})
export type VouchJSON = z.infer<typeof VouchJSONSchema>

/** Signs `voucher`'s vouch for `executor` until `expiresAt`. */
export function signVouch(voucher: PrivateKey, init: { executor: string; expiresAt: number }): Vouch {
  const body = VouchSchema.omit({ signature: true }).safeParse({ v: 1, voucher: keyId(voucher), ...init })
  if (!body.success) throw new CovenantError('INVALID_INPUT', `invalid vouch: ${z.prettifyError(body.error)}`)
  return { ...body.data, signature: new Uint8Array(signValue(voucher, body.data)) }
}

export function vouchToJSON(vouch: Vouch): VouchJSON {
  return { ...vouch, signature: toBase64(vouch.signature) }
}

/**
 * Reads a vouch kept as JSON and checks its voucher's signature. Throws INVALID_INPUT for a
 * malformed one and INVALID_SIGNATURE for a forged one.
 */
export function verifyVouch(json: unknown): Vouch {
  const parsed = VouchJSONSchema.safeParse(json)
  if (!parsed.success)
    throw new CovenantError('INVALID_INPUT', `malformed vouch: ${z.prettifyError(parsed.error)}`)
  const signature = fromBase64(parsed.data.signature)
  const { signature: _, ...body } = parsed.data
  if (signature === undefined || !verifyValue(body.voucher, body, signature))
    throw new CovenantError('INVALID_SIGNATURE', `the vouch is not signed by its voucher ${body.voucher}`)
  return { ...body, signature }
}
