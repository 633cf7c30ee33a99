/**
 * What both sides of a ledger share: the SQLite file each keeps, the options and checks they have
 * in common, and the history of charges. Every change of money is one transaction, so a process
 * killed at any instant leaves the file before or after it, never between.
 */
import type { DatabaseSync } from 'node:sqlite'
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import type { Certificate, Conflict } from '../exec/index.ts'
import { transaction as inTransaction, openSqlite } from '../sqlite/index.ts'
import { AmountSchema, DAY_MS } from './pricing.ts'

export const HOUR_MS = 3_600_000

/** The options both sides take; the payer's and the payee's windows must match for them to agree. */
export const sideOptionsShape = {
  /** the SQLite file, or `':memory:'`; the parent directory is created */
  path: z.string().min(1),
  /**
   * how long after a request's deadline its certificate is still charged, and remembered so that
   * it is never charged twice @default 24 h
   */
  certificateWindowMs: z
    .number()
    .int()
    .min(60_000)
    .max(30 * 24 * HOUR_MS)
    .default(24 * HOUR_MS),
  /** how long charges stay in the history once past the certificate window @default 30 days */
  historyMs: z
    .number()
    .int()
    .min(0)
    .max(3650 * DAY_MS)
    .default(30 * DAY_MS),
  /**
   * the length of a storage day: blocks are billed in whole days of this length, and a covenant's
   * `noticeDays` counts them. Both sides of a pair must agree; only a devnet shortens it (a payee
   * refuses to otherwise), so that tests see days pass @default 24 h
   */
  dayMs: z.number().int().min(1000).max(DAY_MS).default(DAY_MS),
}

/**
 * How a side checks what it is handed. A certificate or conflict proves something only against a
 * view of the network (see exec's `verifyCertificate`), which the wiring holds and the ledger does
 * not, so there is no default: the node passes exec's checks against its peer table and the
 * function's manifest (looked up by the request's `fn`), with the trust it sets (`minQuorum`…);
 * the SDK may pass one that trusts a certificate it has just checked itself.
 */
export interface SideVerifiers {
  /** checks a certificate (INVALID_CERTIFICATE) and returns it parsed */
  verifyCertificate: (value: unknown) => Certificate
  /** checks conflict evidence (INVALID_CONFLICT) and returns it parsed */
  verifyConflict: (value: unknown) => Conflict
}

/** What both sides are given besides their options. */
export interface SideInit extends SideVerifiers {
  /** @default Date.now */
  now?: () => number
}

/** One charge in a history. All amounts in ncr. */
export interface ChargeRecord {
  /** the certificate id (the request id) of a call, the invoice id, or `job:<id>` for a job's attempts */
  ref: string
  kind: 'exec' | 'store' | 'serve' | 'job'
  amount: number
  /** the fuel the receipt signed for (calls only) */
  fuel?: number
  covenantVersion: number
  at: number
}

export interface LedgerSide extends SideVerifiers {
  db: DatabaseSync
  now: () => number
  /** runs `body` in one IMMEDIATE transaction: all of it is written, or none */
  transaction<T>(body: () => T): T
  /** forgets charges past their keep-until time; at most once an hour */
  prune(): void
  /** throws NOT_STARTED once closed */
  assertOpen(): void
  close(): void
}

/**
 * Opens (creating if needed) a ledger file and brings its tables to the last of `migrations`
 * (`PRAGMA user_version` records how many ran; a released migration never changes). Each side's
 * first migration creates a `charges` table with a `keep_until` column.
 */
export function openSide(
  path: string,
  migrations: readonly string[],
  what: string,
  init: SideInit,
): LedgerSide {
  const db = openSqlite(path, what, migrations)
  let closed = false
  const transaction = <T>(body: () => T): T => inTransaction(db, body)
  const now = init.now ?? Date.now
  const pruneStmt = db.prepare('DELETE FROM charges WHERE keep_until < ?')
  let nextPrune = 0
  const side: LedgerSide = {
    db,
    now,
    verifyCertificate: init.verifyCertificate,
    verifyConflict: init.verifyConflict,
    transaction,
    prune() {
      const t = now()
      if (t < nextPrune) return
      nextPrune = t + HOUR_MS
      pruneStmt.run(t)
    },
    assertOpen() {
      if (closed) throw new CovenantError('NOT_STARTED', `the ${what} is closed`)
    },
    close() {
      if (closed) return
      closed = true
      db.close()
    },
  }
  side.prune()
  return side
}

/** A row of a `charges` table as a {@link ChargeRecord}. */
export function chargeRecord(r: Record<string, unknown>): ChargeRecord {
  const record: ChargeRecord = {
    ref: String(r.ref),
    kind: r.kind as ChargeRecord['kind'],
    amount: Number(r.amount),
    covenantVersion: Number(r.covenant_version),
    at: Number(r.at),
  }
  if (r.fuel !== null && r.fuel !== undefined) record.fuel = Number(r.fuel)
  return record
}

/** A job's charge total as a side is handed it: a whole, safe number of ncr (INVALID_INPUT otherwise). */
export function jobChargeTotal(total: unknown): number {
  const parsed = AmountSchema.safeParse(total)
  if (!parsed.success)
    throw new CovenantError('INVALID_INPUT', `not an amount: ${String(total).slice(0, 40)}`)
  return parsed.data
}
