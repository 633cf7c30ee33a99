/**
 * The pay protocol: everything that passes between a payer and one payee, in one exchange on
 * `/covenant/pay/1.0.0` (and in its JSON form through a gateway's `POST /v1/pay`). The payer hands
 * over the certificates it was charged for and its newest cheque, asks for the invoices issued to
 * it and, on a devnet, for faucet credit; the payee answers what it made of each part and how the
 * account stands. Every part is idempotent (a certificate is charged once, a cheque counts by its
 * cumulative amount, invoices are fetched after a number), so a lost, repeated or reordered
 * exchange changes nothing: the payer simply sends again what is not yet confirmed.
 *
 * No `node:` imports: the SDK reads these in a browser too.
 */
import { z } from 'zod'
import { bytesFieldsFromJSON, bytesFieldsToJSON } from '../encoding/index.ts'
import { CovenantError, ErrorJSONSchema, parseOrThrow } from '../errors/index.ts'
import { type Certificate, CertificateSchema, certificateFromJSON, certificateToJSON } from '../exec/index.ts'
import { KeyIdSchema } from '../keys/index.ts'
import { ChequeSchema, chequeFromJSON, chequeToJSON, DepositSchema } from './cheque.ts'
import { InvoiceSchema } from './invoice.ts'
import type { ChargeRecord } from './ledger-db.ts'
import type { PayeeAccount } from './payee-ledger.ts'
import { AmountSchema } from './pricing.ts'

export const PAY_PROTOCOL = '/covenant/pay/1.0.0'

/** Certificates one exchange carries; a payer with more sends them in several. */
export const MAX_PAY_CERTIFICATES = 16
/** Invoices one reply carries; the payer asks again after the last. */
export const MAX_PAY_INVOICES = 16
/**
 * The largest exchange. A certificate carries its request (up to 1 MiB of arguments), and evidence
 * in its skips another: a payer packs its certificates to stay under this.
 */
export const MAX_PAY_BYTES = 8 * 1024 * 1024

/** What a payee made of a certificate it was handed (see the payee ledger's `recordCertified`). */
export const CERTIFIED_STATUSES = [
  'charged',
  'duplicate',
  'not-in-certificate',
  'accused',
  'stale',
  'price-unknown',
  'self',
] as const
export type CertifiedStatus = (typeof CERTIFIED_STATUSES)[number]

const SafeUint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const SafeInt = z.number().int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER)

/** One payer's account as a payee sees it (the payee ledger's `PayeeAccount`). All amounts in ncr. */
export const PayeeAccountSchema = z.strictObject({
  payer: KeyIdSchema,
  charged: AmountSchema,
  received: AmountSchema,
  granted: AmountSchema,
  /** charged − received − granted; negative when the payer paid ahead */
  outstanding: SafeInt,
  /** admitted or signed work not yet certified */
  exposure: AmountSchema,
  limit: AmountSchema,
  /** limit − outstanding − exposure: the most the next call may cost */
  available: SafeInt,
  /** seq of the best cheque held */
  seq: SafeUint,
  /** when outstanding went past the limit (storage notice) */
  overSince: SafeUint.optional(),
}) satisfies z.ZodType<PayeeAccount>

/** One charge in a history: a certified call (ref: its certificate id) or an invoice (ref: its id). */
export const ChargeRecordSchema = z.strictObject({
  ref: z.string().max(128),
  kind: z.enum(['exec', 'store', 'serve', 'job']),
  amount: AmountSchema,
  fuel: SafeUint.optional(),
  covenantVersion: SafeUint,
  at: SafeUint,
}) satisfies z.ZodType<ChargeRecord>

/** A message on `/covenant/pay/1.0.0`: about one payer, to one payee. */
export const PayMessageSchema = z.strictObject({
  /** the payer the exchange is about */
  payer: KeyIdSchema,
  /** the payer's newest cheque to this payee */
  cheque: ChequeSchema.optional(),
  /** certificates the payer was charged for, for the payee to charge too */
  certificates: z.array(CertificateSchema).max(MAX_PAY_CERTIFICATES).optional(),
  /** send the invoices issued to the payer after this number */
  invoicesAfter: SafeUint.optional(),
  /** a devnet node's faucet: mint this much credit for the payer */
  faucet: AmountSchema.min(1).optional(),
})
export type PayMessage = z.infer<typeof PayMessageSchema>

const failed = z.strictObject({ error: ErrorJSONSchema })

/** The payee's answer: the account after the exchange, and what came of each part asked for. */
export const PayReplySchema = z.strictObject({
  account: PayeeAccountSchema,
  /** the cheque: whether it raised what is held, and the best cheque held (the payer's confirmation) */
  cheque: z.union([z.strictObject({ applied: z.boolean(), best: ChequeSchema }), failed]).optional(),
  /** each certificate, in the order sent */
  certificates: z
    .array(
      z.union([
        z.strictObject({ id: z.string().max(128), status: z.enum(CERTIFIED_STATUSES), amount: AmountSchema }),
        z.strictObject({ id: z.string().max(128), error: ErrorJSONSchema }),
      ]),
    )
    .max(MAX_PAY_CERTIFICATES)
    .default([]),
  /** invoices issued to the payer after `invoicesAfter`, oldest first */
  invoices: z.array(InvoiceSchema).max(MAX_PAY_INVOICES).default([]),
  /** the faucet's deposit, signed by the payee */
  faucet: z.union([z.strictObject({ deposit: DepositSchema }), failed]).optional(),
})
export type PayReply = z.infer<typeof PayReplySchema>
export type PayReplyInput = z.input<typeof PayReplySchema>

// ── JSON forms (signatures in base64), for `POST /v1/pay` ──────────────────────────────────────

/** A pay message in its JSON form; read it with {@link payMessageFromJSON}. */
export const PayMessageJSONSchema = z.strictObject({
  payer: KeyIdSchema,
  cheque: z.unknown().optional(),
  certificates: z.array(z.unknown()).max(MAX_PAY_CERTIFICATES).optional(),
  invoicesAfter: SafeUint.optional(),
  faucet: AmountSchema.min(1).optional(),
})
export type PayMessageJSON = z.infer<typeof PayMessageJSONSchema>

/**
 * The JSON forms of certificates, and their sizes, by certificate: a payer sends one certificate
 * to each of its executors and measures it to pack every message and group, so each was converted
 * about six times per exchange. Kept by the object (a certificate is never changed once made, and
 * the payer ledger hands the same object for every payee), forgotten with it.
 */
const jsonForms = new WeakMap<Certificate, { json: ReturnType<typeof certificateToJSON>; size: number }>()

function jsonForm(certificate: Certificate): { json: ReturnType<typeof certificateToJSON>; size: number } {
  let form = jsonForms.get(certificate)
  if (form === undefined) {
    const json = certificateToJSON(certificate)
    form = { json, size: JSON.stringify(json).length }
    jsonForms.set(certificate, form)
  }
  return form
}

export function payMessageToJSON(message: PayMessage): PayMessageJSON {
  const json: PayMessageJSON = { payer: message.payer }
  if (message.cheque !== undefined) json.cheque = chequeToJSON(message.cheque)
  if (message.certificates !== undefined)
    json.certificates = message.certificates.map((c) => jsonForm(c).json)
  if (message.invoicesAfter !== undefined) json.invoicesAfter = message.invoicesAfter
  if (message.faucet !== undefined) json.faucet = message.faucet
  return json
}

/** Reads a pay message from its JSON form: shapes only (INVALID_INPUT, INVALID_CHEQUE, INVALID_CERTIFICATE). */
export function payMessageFromJSON(json: unknown): PayMessage {
  const m = parseOrThrow(PayMessageJSONSchema, json, 'INVALID_INPUT', 'pay message')
  const message: PayMessage = { payer: m.payer }
  if (m.cheque !== undefined) message.cheque = chequeFromJSON(m.cheque)
  if (m.certificates !== undefined) message.certificates = m.certificates.map(certificateFromJSON)
  if (m.invoicesAfter !== undefined) message.invoicesAfter = m.invoicesAfter
  if (m.faucet !== undefined) message.faucet = m.faucet
  return message
}

/** Where the bytes are in a reply's JSON form. */
const REPLY_BYTES = ['cheque.best.signature', 'invoices[].signature', 'faucet.deposit.signature']

/** A pay reply in its JSON form (signatures in base64); read it with {@link payReplyFromJSON}. */
export const PayReplyJSONSchema = z.record(z.string(), z.unknown())

export function payReplyToJSON(reply: PayReply): Record<string, unknown> {
  return bytesFieldsToJSON(reply) as Record<string, unknown>
}

/** Reads a pay reply from its JSON form; shape only (PROTOCOL_ERROR): check its notes before use. */
export function payReplyFromJSON(json: unknown): PayReply {
  const parsed = PayReplySchema.safeParse(bytesFieldsFromJSON(json, REPLY_BYTES))
  if (!parsed.success)
    throw new CovenantError('PROTOCOL_ERROR', `malformed pay reply: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/** The JSON size of a certificate, for packing a message under {@link MAX_PAY_BYTES}. */
export function certificateSize(certificate: Certificate): number {
  return jsonForm(certificate).size
}
