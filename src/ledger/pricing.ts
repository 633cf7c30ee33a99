/**
 * Prices and charges. Every charge is a pure function of a covenant's prices and a signed quantity
 * (fuel in a receipt, bytes and days in an invoice), in whole nano-credits, so a payer and a payee
 * computing it apart get the same integer.
 */
import { z } from 'zod'
import {
  type CovenantConfig,
  formatAmount,
  MAX_AMOUNT,
  type SignedCovenant,
  verifySignedCovenant,
} from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import { KeyIdSchema } from '../keys/index.ts'

/** A whole, non-negative number of nano-credits that JSON, DAG-CBOR and SQLite all hold exactly. */
export const AmountSchema = z.number().int().min(0).max(MAX_AMOUNT)

const SafeUint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

export const DAY_MS = 86_400_000

/**
 * The UTC day `ms` falls in, counted from the epoch: storage is billed in whole days. `dayMs` is a
 * devnet's shorter day (see the ledgers' `dayMs` option); every real ledger counts 24 h days.
 */
export function utcDay(ms: number, dayMs = DAY_MS): number {
  return Math.floor(ms / dayMs)
}

/** The prices of one version of one node's covenant: everything a charge under it is computed from. */
export const PriceSheetSchema = z.strictObject({
  peer: KeyIdSchema,
  version: SafeUint.min(1),
  /** when that version was first signed: a storage period is billed at a version issued by its start */
  issuedAt: SafeUint,
  basePrice: AmountSchema,
  pricePerFuel: AmountSchema,
  pricePerBytePerDay: AmountSchema,
  pricePerByte: AmountSchema,
})
export type PriceSheet = z.infer<typeof PriceSheetSchema>

/** The price sheet of a signed covenant, after checking its signature (INVALID_SIGNATURE, PROTOCOL_ERROR). */
export function priceSheet(covenant: unknown): PriceSheet {
  const c: SignedCovenant = verifySignedCovenant(covenant)
  return {
    peer: c.peer,
    version: c.version,
    issuedAt: c.issuedAt,
    basePrice: c.config.execute.basePrice,
    pricePerFuel: c.config.execute.pricePerFuel,
    pricePerBytePerDay: c.config.store.pricePerBytePerDay,
    pricePerByte: c.config.serve.pricePerByte,
  }
}

function tooLarge(what: string): never {
  throw new CovenantError(
    'AMOUNT_TOO_LARGE',
    `${what} is more than ${formatAmount(MAX_AMOUNT)}, the most the ledger counts exactly`,
  )
}

/** The sum of amounts; AMOUNT_TOO_LARGE rather than an inexact total. */
export function addAmounts(...amounts: number[]): number {
  let total = 0
  for (const a of amounts) {
    total += a
    // Each addend is a safe integer, so a float sum above 2^53 − 1 means the true sum is too.
    if (total > MAX_AMOUNT) tooLarge('the total')
  }
  return total
}

/** a × b for whole non-negative numbers; AMOUNT_TOO_LARGE rather than an inexact product. */
export function multiplyAmounts(a: number, b: number, what = 'the charge'): number {
  const product = a * b
  // Rounding is monotonic: the float product exceeds 2^53 − 1 exactly when the true one does.
  if (product > MAX_AMOUNT) tooLarge(what)
  return product
}

/**
 * The exact charge of one certified receipt: the covenant's base price plus its price per fuel
 * times the fuel the receipt signs for. Equal fuel costs equal credit, and no call is free unless
 * the operator set both prices to 0.
 *
 * @example
 * ```ts
 * chargeFor({ basePrice: 10_000, pricePerFuel: 1000 }, 0)    // 10_000 ncr
 * chargeFor({ basePrice: 10_000, pricePerFuel: 1000 }, 2000) // 2_010_000 ncr
 * ```
 */
export function chargeFor(
  price: Pick<CovenantConfig['execute'], 'basePrice' | 'pricePerFuel'>,
  fuel: number,
): number {
  if (!Number.isSafeInteger(fuel) || fuel < 0)
    throw new CovenantError('INVALID_INPUT', `fuel is a whole number ≥ 0, not ${fuel}`)
  return addAmounts(price.basePrice, multiplyAmounts(price.pricePerFuel, fuel))
}

/** What a holder charges for keeping `bytes` for `days` whole days. */
export function storageCharge(pricePerBytePerDay: number, bytes: number, days: number): number {
  return multiplyAmounts(multiplyAmounts(pricePerBytePerDay, bytes), days)
}

/** What a holder charges for serving `bytes`. */
export function serveCharge(pricePerByte: number, bytes: number): number {
  return multiplyAmounts(pricePerByte, bytes)
}

export const QuoteSchema = z.strictObject({
  /** the fuel priced: what a dry run used, or a request's fuel limit for the most it may cost */
  fuel: SafeUint,
  /** receipts a certificate holds: the caller pays exactly q of the executors quoted */
  q: z.number().int().min(1),
  executors: z.array(
    z.strictObject({
      peer: KeyIdSchema,
      covenantVersion: SafeUint.min(1),
      basePrice: AmountSchema,
      pricePerFuel: AmountSchema,
      /** what this executor charges if its receipt signs for `fuel` */
      charge: AmountSchema,
    }),
  ),
  /** the total if the q cheapest executors form the certificate */
  min: AmountSchema,
  /** the total if the q dearest do: a certified run with this fuel never costs more */
  max: AmountSchema,
})
export type Quote = z.infer<typeof QuoteSchema>

export interface QuoteInit {
  fuel: number
  q: number
  /** the executors selected for the request, with the covenants selection used (already verified) */
  executors: ReadonlyArray<{ peer: string; covenant: Pick<SignedCovenant, 'version' | 'config'> }>
}

/**
 * Prices a call before it runs: each selected executor's charge for `fuel`, and the least and most
 * the q receipts of a certificate can cost together. A run whose receipts sign for the same fuel
 * under the same covenant versions is charged exactly these amounts.
 */
export function quote(init: QuoteInit): Quote {
  if (!Number.isSafeInteger(init.q) || init.q < 1 || init.q > init.executors.length)
    throw new CovenantError(
      'INVALID_INPUT',
      `a quote needs 1 ≤ q ≤ ${init.executors.length} (the executors quoted), not ${init.q}`,
    )
  const executors = init.executors.map(({ peer, covenant }) => ({
    peer,
    covenantVersion: covenant.version,
    basePrice: covenant.config.execute.basePrice,
    pricePerFuel: covenant.config.execute.pricePerFuel,
    charge: chargeFor(covenant.config.execute, init.fuel),
  }))
  const charges = executors.map((e) => e.charge).sort((a, b) => a - b)
  return {
    fuel: init.fuel,
    q: init.q,
    executors,
    min: addAmounts(...charges.slice(0, init.q)),
    max: addAmounts(...charges.slice(-init.q)),
  }
}
