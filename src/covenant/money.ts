/**
 * Money: every amount in Covenant — a price in a covenant, a charge, a cheque, a balance — is a
 * whole number of nano-credits (ncr), a safe integer. There are no fractions anywhere, so two
 * parties adding the same charges get the same total, in any language.
 *
 * 1 credit (cr) = 1 000 000 000 ncr. A covenant file may write an amount as a number of ncr
 * (`1000`) or as text with a unit (`"0.000001 cr"`, `"1 µcr"`, `"1000 ncr"`); both read to the
 * same integer, and a fraction finer than 1 ncr is refused rather than rounded.
 */
import { z } from 'zod'

/** Nano-credits in one credit. */
export const NCR_PER_CREDIT = 1_000_000_000

/** The largest amount counted exactly: 2^53 − 1 ncr, about 9 million credits. */
export const MAX_AMOUNT = Number.MAX_SAFE_INTEGER

const UNITS: Record<string, bigint> = {
  '': 1n,
  ncr: 1n,
  ucr: 1_000n,
  µcr: 1_000n,
  mcr: 1_000_000n,
  cr: 1_000_000_000n,
  credit: 1_000_000_000n,
  credits: 1_000_000_000n,
}

/**
 * Reads `"0.000001 cr"`, `"1.5 mcr"`, `"250 ncr"`, `"1000"` (ncr) exactly; `undefined` if the
 * text is no amount, is negative, or is finer than 1 ncr.
 */
export function parseAmount(text: string): number | undefined {
  const m = /^\s*(\d+)(?:\.(\d+))?\s*([a-zµ]*)\s*$/i.exec(text)
  if (m === null) return undefined
  const unit = UNITS[m[3].toLowerCase()]
  if (unit === undefined) return undefined
  const fraction = (m[2] ?? '').replace(/0+$/, '')
  const scale = 10n ** BigInt(fraction.length)
  if (unit % scale !== 0n) return undefined
  const ncr = BigInt(m[1]) * unit + (fraction === '' ? 0n : (BigInt(fraction) * unit) / scale)
  return ncr <= BigInt(MAX_AMOUNT) ? Number(ncr) : undefined
}

/** An amount in credits, exactly: `1000` → `"0.000001 cr"`, `1_500_000_000` → `"1.5 cr"`. */
export function formatAmount(ncr: number): string {
  if (!Number.isSafeInteger(ncr)) return `${ncr} ncr`
  const sign = ncr < 0 ? '-' : ''
  const digits = String(Math.abs(ncr)).padStart(10, '0')
  const whole = digits.slice(0, -9).replace(/^0+(?=\d)/, '')
  const fraction = digits.slice(-9).replace(/0+$/, '')
  return `${sign}${whole}${fraction === '' ? '' : `.${fraction}`} cr`
}

/**
 * A money field of a config: an integer number of ncr, or text with a unit, at most `max` ncr.
 * The output is always the integer, so parsing a parsed config changes nothing.
 */
export function amountSchema(max: number) {
  return z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      if (typeof v === 'string') {
        const n = parseAmount(v)
        if (n !== undefined) return n
        ctx.addIssue({
          code: 'custom',
          message: `not an amount: ${JSON.stringify(v)} (write whole nano-credits, e.g. 1000, or an amount with its unit: "0.000001 cr", "1 µcr", "1000 ncr")`,
        })
        return z.NEVER
      }
      if (Number.isFinite(v) && !Number.isInteger(v)) {
        // Covenants before payments wrote prices as fractions of a credit; say what they meant.
        const ncr = Math.round(v * NCR_PER_CREDIT)
        const meant =
          Number.isSafeInteger(ncr) && ncr > 0 ? `: ${v} credits is "${formatAmount(ncr)}" (${ncr} ncr)` : ''
        ctx.addIssue({
          code: 'custom',
          message: `amounts are whole nano-credits (1 cr = ${NCR_PER_CREDIT} ncr), not ${v}${meant}`,
        })
        return z.NEVER
      }
      return v
    })
    .pipe(z.number().int().min(0).max(max))
}
