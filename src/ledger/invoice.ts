/**
 * Invoices: what a holder of blocks bills a payer, signed by the holder.
 *
 * - `store`: the blocks the payer (their publisher) pinned with the holder, each with the whole UTC
 *   days it was held in the period [fromDay, toDay), at the covenant's price per byte per day.
 * - `serve`: the blocks the holder served the payer, at the covenant's price per byte.
 *
 * The amount is recomputed by whoever checks it; the price is the one of the covenant version the
 * invoice names, which must be the newest version issued by the period's start, so a price rise is
 * never applied to days already begun. Invoices are paid by the same cumulative cheques as calls.
 */
import { z } from 'zod'
import { cidForBytes, cidString } from '../content/index.ts'
import { CovenantError } from '../errors/index.ts'
import { canonicalBytes, KeyIdSchema, keyId, type PrivateKey, SignatureSchema } from '../keys/index.ts'
import { signNote, verifyNote } from './cheque.ts'
import {
  AmountSchema,
  addAmounts,
  DAY_MS,
  type PriceSheet,
  serveCharge,
  storageCharge,
  utcDay,
} from './pricing.ts'

const SafeUint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/** Lines per invoice: a holder bills more blocks in several invoices. */
export const MAX_INVOICE_LINES = 1000

const LineShape = { cid: cidString(), bytes: SafeUint.min(1) }
const StoreLineSchema = z.strictObject({ ...LineShape, days: SafeUint.min(1) })
const ServeLineSchema = z.strictObject(LineShape)

const CommonShape = {
  v: z.literal(1),
  holder: KeyIdSchema,
  payer: KeyIdSchema,
  /** 1 for the holder's first invoice to this payer, one more for each after */
  seq: SafeUint.min(1),
  /** the holder's covenant version whose price this charges */
  covenantVersion: SafeUint.min(1),
  amount: AmountSchema,
  issuedAt: SafeUint,
}

const StoreBodyShape = {
  ...CommonShape,
  kind: z.literal('store'),
  pricePerBytePerDay: AmountSchema,
  fromDay: SafeUint,
  toDay: SafeUint,
  lines: z.array(StoreLineSchema).min(1).max(MAX_INVOICE_LINES),
}
const ServeBodyShape = {
  ...CommonShape,
  kind: z.literal('serve'),
  pricePerByte: AmountSchema,
  lines: z.array(ServeLineSchema).min(1).max(MAX_INVOICE_LINES),
}

export const InvoiceBodySchema = z.discriminatedUnion('kind', [
  z.strictObject(StoreBodyShape),
  z.strictObject(ServeBodyShape),
])
export type InvoiceBody = z.infer<typeof InvoiceBodySchema>

export const InvoiceSchema = z.discriminatedUnion('kind', [
  z.strictObject({ ...StoreBodyShape, signature: SignatureSchema }),
  z.strictObject({ ...ServeBodyShape, signature: SignatureSchema }),
])
export type Invoice = z.infer<typeof InvoiceSchema>

type Unsigned<T> = T extends unknown ? Omit<T, 'v' | 'holder' | 'amount' | 'signature'> : never
/** What a holder states; the version, its own key id and the amount are added when signing. */
export type InvoiceInit = Unsigned<Invoice>

/** The amount an invoice body must state: every line's bytes (× days) × the price. */
export function invoiceAmount(body: InvoiceInit): number {
  if (body.kind === 'store')
    return addAmounts(...body.lines.map((l) => storageCharge(body.pricePerBytePerDay, l.bytes, l.days)))
  return addAmounts(...body.lines.map((l) => serveCharge(body.pricePerByte, l.bytes)))
}

/** The day whose price applies: a storage period's first day, or the day a serve invoice is issued. */
export function invoicePriceDay(invoice: InvoiceInit, dayMs = DAY_MS): number {
  return invoice.kind === 'store' ? invoice.fromDay : utcDay(invoice.issuedAt, dayMs)
}

/** The invoice's id: the CID (dag-cbor) of the signed invoice. Both sides count an invoice once by it. */
export function invoiceId(invoice: Invoice): string {
  return cidForBytes(canonicalBytes(invoice), 'dag-cbor').toString()
}

function refuse(message: string): never {
  throw new CovenantError('INVALID_INVOICE', message)
}

function checkLines(invoice: InvoiceInit): void {
  const seen = new Set<string>()
  for (const line of invoice.lines) {
    if (seen.has(line.cid)) refuse(`the invoice bills ${line.cid} twice`)
    seen.add(line.cid)
  }
  if (invoice.kind === 'store') {
    if (invoice.toDay <= invoice.fromDay) refuse('the storage period ends before it starts')
    const period = invoice.toDay - invoice.fromDay
    for (const line of invoice.lines)
      if (line.days > period) refuse(`${line.cid} is billed ${line.days} days of a ${period}-day period`)
  }
}

/** Signs an invoice from `key` (the holder); the amount is computed here. */
export function signInvoice(key: PrivateKey, init: InvoiceInit): Invoice {
  checkLines(init)
  const body = { ...init, v: 1, holder: keyId(key), amount: invoiceAmount(init) }
  return signNote(key, InvoiceBodySchema, body, 'invoice') as Invoice
}

/**
 * Checks an invoice from anywhere: shape, the holder's signature, each block billed once, days
 * within the period, and the amount (INVALID_INVOICE); with `payer`, that it bills that payer.
 * The price is checked against covenants by {@link checkInvoicePrice}.
 */
export function verifyInvoice(value: unknown, expect: { payer?: string } = {}): Invoice {
  const invoice = verifyNote(InvoiceSchema, value, (i) => i.holder, 'INVALID_INVOICE', 'invoice')
  if (invoice.holder === invoice.payer) refuse('the invoice bills its own holder')
  if (expect.payer !== undefined && invoice.payer !== expect.payer)
    refuse(`the invoice bills ${invoice.payer}, not ${expect.payer}`)
  checkLines(invoice)
  const amount = invoiceAmount(invoice)
  if (amount !== invoice.amount)
    refuse(`the invoice states ${invoice.amount} ncr where its lines come to ${amount}`)
  return invoice
}

/**
 * The price sheet a holder must bill a period starting on `day` at: its newest version issued on or
 * before that day (undefined if none is).
 */
export function sheetForDay(
  sheets: readonly PriceSheet[],
  day: number,
  dayMs = DAY_MS,
): PriceSheet | undefined {
  let best: PriceSheet | undefined
  for (const s of sheets)
    if (utcDay(s.issuedAt, dayMs) <= day && (best === undefined || s.version > best.version)) best = s
  return best
}

/**
 * Checks an invoice's price against the holder's covenants known to the checker: the version it
 * names must be known (PRICE_UNKNOWN otherwise), state the price the invoice charges, be issued by
 * the day the price applies from, and no newer known version issued by then may exist
 * (INVALID_INVOICE).
 */
export function checkInvoicePrice(invoice: Invoice, sheets: readonly PriceSheet[], dayMs = DAY_MS): void {
  const own = sheets.filter((s) => s.peer === invoice.holder)
  const named = own.find((s) => s.version === invoice.covenantVersion)
  if (named === undefined)
    throw new CovenantError(
      'PRICE_UNKNOWN',
      `the covenant of ${invoice.holder} at version ${invoice.covenantVersion} is not known`,
      { details: { missing: [{ peer: invoice.holder, version: invoice.covenantVersion }] } },
    )
  const price = invoice.kind === 'store' ? invoice.pricePerBytePerDay : invoice.pricePerByte
  const stated = invoice.kind === 'store' ? named.pricePerBytePerDay : named.pricePerByte
  if (price !== stated)
    refuse(`the invoice charges ${price} ncr where covenant version ${named.version} states ${stated}`)
  const day = invoicePriceDay(invoice, dayMs)
  if (utcDay(named.issuedAt, dayMs) > day)
    refuse(`covenant version ${named.version} was issued after day ${day}, when this invoice's price applies`)
  const newest = sheetForDay(own, day, dayMs)
  if (newest !== undefined && newest.version !== named.version)
    refuse(`covenant version ${newest.version} applied on day ${day}, not ${named.version}`)
}
