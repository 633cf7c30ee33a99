/**
 * The payee's side of the ledger: what a node (an executor, a holder of blocks) is owed by each
 * payer and what it has been paid, in one SQLite file.
 *
 * - charged: the certified receipts it signed (each at its covenant's price for the fuel signed)
 *   and the invoices it issued for storing and serving blocks;
 * - received: the cumulative amount of the best cheque the payer signed to it;
 * - granted: what a devnet faucet minted for the payer;
 * - outstanding = charged − received − granted (negative: paid ahead);
 * - exposure: work admitted or signed but not yet certified, counted against the payer's credit
 *   so that concurrent calls and withheld certificates cannot exceed it.
 *
 * A payer is admitted while outstanding + exposure + the most the call can cost stays within its
 * credit (the covenant's `credit`, or a limit the operator set for it).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import { formatAmount, MAX_AMOUNT, type SignedCovenant } from '../covenant/index.ts'
import { toHex } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { Receipt } from '../exec/index.ts'
import { KeyIdSchema, keyId, type PrivateKey } from '../keys/index.ts'
import {
  type Cheque,
  ChequeSchema,
  type Deposit,
  DepositSchema,
  decodeNote,
  signDeposit,
  verifyCheque,
} from './cheque.ts'
import {
  type Invoice,
  InvoiceSchema,
  invoiceId,
  MAX_INVOICE_LINES,
  sheetForDay,
  signInvoice,
} from './invoice.ts'
import {
  type ChargeRecord,
  chargeRecord,
  HOUR_MS,
  jobChargeTotal,
  openSide,
  type SideInit,
  sideOptionsShape,
} from './ledger-db.ts'
import {
  AmountSchema,
  chargeFor,
  DAY_MS,
  type PriceSheet,
  PriceSheetSchema,
  priceSheet,
  utcDay,
} from './pricing.ts'
import type { PairStatement } from './reconcile.ts'
import type { CertifiedStatus } from './wire.ts'

/** The payee ledger's tunables; every default is written here. */
export const payeeLedgerOptionsSchema = z.strictObject({
  ...sideOptionsShape,
  /** mint faucet deposits (a devnet node only) */
  devnet: z.boolean().default(false),
  /** the most the faucet mints for one payer, in all @default 1 cr */
  faucetLimit: AmountSchema.default(1_000_000_000),
  /**
   * how long after a request's deadline a receipt with no certificate yet counts against its payer's
   * credit; after it the work is written off (a failed quorum is not charged) @default 10 min
   */
  exposureMs: z
    .number()
    .int()
    .min(0)
    .max(24 * HOUR_MS)
    .default(10 * 60_000),
  /** payers with an account; a new payer beyond it is PEER_BUSY, so strangers cannot fill the disk @default 1 000 000 */
  maxAccounts: z.number().int().min(1).default(1_000_000),
  /** calls in flight or awaiting their certificate, over all payers @default 100 000 */
  maxExposures: z.number().int().min(1).default(100_000),
})
export type PayeeLedgerOptions = z.input<typeof payeeLedgerOptionsSchema>

export interface PayeeLedgerInit extends PayeeLedgerOptions, SideInit {
  /** this node's key: the payee every cheque must name; signs invoices and deposits */
  key: PrivateKey
  /** this node's current signed covenant: its prices, credit and notice period */
  covenant: () => SignedCovenant
}

/** One payer as this payee sees it. All amounts in ncr. */
export interface PayeeAccount {
  payer: string
  charged: number
  received: number
  granted: number
  /** charged − received − granted; negative when the payer paid ahead */
  outstanding: number
  /** admitted or signed work not yet certified */
  exposure: number
  /** the credit extended: the operator's limit for this payer, or the covenant's `credit` */
  limit: number
  /** limit − outstanding − exposure: the most the next call may cost */
  available: number
  /** seq of the best cheque held (0: none) */
  seq: number
  /** when outstanding first went past the limit (storage notice), if it is past it */
  overSince?: number
}

/** A call admitted against its payer's credit. */
export interface Admission {
  readonly request: string
  readonly payer: string
  /** the most the call can cost: the covenant's price for the request's whole fuel */
  readonly maxCharge: number
  /** the receipt this node signed for it: exposure becomes its exact charge until certified */
  signed(receipt: Receipt): number
  /** the call ended without a receipt: nothing is owed */
  release(): void
}

export interface CertifiedCharge {
  request: string
  payer: string
  status: CertifiedStatus
  /** the charge recorded now (0 unless `charged`) */
  amount: number
}

export interface ChequeOutcome {
  /** false when the cheque was no better than the one held (a duplicate, replay or late arrival) */
  applied: boolean
  account: PayeeAccount
  /** the best cheque held, so the payer can confirm what it has paid */
  best: Cheque
}

export interface OverdueAccount {
  payer: string
  outstanding: number
  limit: number
  /** when it went past its limit */
  since: number
  /** since + the covenant's noticeDays */
  dropAt: number
  /** the notice period is over: the storage part may drop `blocks` */
  droppable: boolean
  /** the blocks this node holds for the payer */
  blocks: string[]
}

export interface PayeeLedger {
  /** this node's key id */
  readonly payee: string
  /**
   * Admits a call before it runs (give it only a verified request), or throws PAYMENT_REQUIRED
   * with `{ payer, payee, outstanding, exposure, limit, maxCharge, received, payUpTo }` in its
   * details: a cheque whose cumulative amount reaches `payUpTo` lets the call in. Admitting the
   * same request id again returns the same admission.
   */
  admit(call: { id: string; caller: string; fuel: number; deadline: number }): Admission
  /** Charges the payer for this node's receipt in a certificate; idempotent per request. */
  recordCertified(certificate: unknown, evidence?: { conflicts?: readonly unknown[] }): CertifiedCharge
  /**
   * Charges `payer` for a job it enqueued whose attempts this node dispatched and paid for: `total`
   * is what the job's state (which its keepers agree on) says this node charged for it so far. The
   * charge `ref` (`job:<id>`) only grows: a total below or equal to the one recorded changes
   * nothing. Returns what was added.
   */
  chargeJob(payer: string, ref: string, total: number): number
  /** Applies a cheque made out to this node (INVALID_CHEQUE otherwise); idempotent. */
  applyCheque(cheque: unknown): ChequeOutcome
  /** Devnet faucet: mints `amount` for `payer` (FAUCET_REFUSED off a devnet or past the limit). */
  deposit(payer: string, amount: number, id?: string): Deposit
  /** The operator's credit limit for one payer; `undefined` returns it to the covenant's `credit`. */
  setLimit(payer: string, limit: number | undefined): void
  account(payer: string): PayeeAccount
  /** accounts in payer order, `after` exclusive, at most `limit` (default 100, capped at 1000) */
  accounts(opts?: { limit?: number; after?: string }): PayeeAccount[]
  /** a payer's charges, newest first, each with its certificate or invoice id */
  history(payer: string, opts?: { limit?: number; before?: number }): ChargeRecord[]
  statement(payer: string): PairStatement
  /** Notes a block held for a publisher, billed from today. Idempotent. */
  pin(payer: string, cid: string, bytes: number): void
  /** The block is no longer held for the publisher: billed up to and including today. */
  unpin(payer: string, cid: string): void
  /** Invoices every whole day not yet billed, for one payer or all; each invoice is charged now. */
  billStorage(payer?: string): Invoice[]
  /** Invoices blocks served to a payer, charged now; `undefined` if serving is free. */
  billServed(payer: string, lines: ReadonlyArray<{ cid: string; bytes: number }>): Invoice | undefined
  /**
   * The invoices issued to a payer after invoice number `after` (default 0), oldest first, at most
   * `limit` (default 100): what the payer fetches and accepts. Kept `historyMs` after issue.
   */
  invoices(payer: string, opts?: { after?: number; limit?: number }): Invoice[]
  /** The blocks pinned now, with their publishers: what storage is billed for. */
  pinned(): Array<{ payer: string; cid: string; bytes: number }>
  /** Payers past their credit, with the blocks held for them and when they may be dropped. */
  overdue(): OverdueAccount[]
  close(): void
}

const MIGRATIONS = [
  `CREATE TABLE accounts (
     payer TEXT PRIMARY KEY,
     charged INTEGER NOT NULL DEFAULT 0,
     received INTEGER NOT NULL DEFAULT 0,
     granted INTEGER NOT NULL DEFAULT 0,
     seq INTEGER NOT NULL DEFAULT 0,
     cheque BLOB,
     credit_limit INTEGER,
     over_since INTEGER,
     invoice_seq INTEGER NOT NULL DEFAULT 0,
     store_billed_to INTEGER,
     updated_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE charges (
     ref TEXT PRIMARY KEY,
     payer TEXT NOT NULL,
     kind TEXT NOT NULL,
     amount INTEGER NOT NULL,
     fuel INTEGER,
     covenant_version INTEGER NOT NULL,
     at INTEGER NOT NULL,
     keep_until INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX charges_payer ON charges (payer, at);
   CREATE INDEX charges_keep ON charges (keep_until);
   CREATE TABLE prices (version INTEGER PRIMARY KEY, sheet TEXT NOT NULL) STRICT;
   CREATE TABLE deposits (id TEXT PRIMARY KEY, payer TEXT NOT NULL, body BLOB NOT NULL) STRICT;
   CREATE TABLE pins (
     payer TEXT NOT NULL,
     cid TEXT NOT NULL,
     bytes INTEGER NOT NULL,
     from_day INTEGER NOT NULL,
     until_day INTEGER,
     PRIMARY KEY (payer, cid)
   ) STRICT;`,
  // Invoices are kept until their payer has had time to fetch them: the payer asks for those after
  // the last it accepted (`invoices`), so an invoice lost on the way is fetched again.
  `CREATE TABLE invoices (
     payer TEXT NOT NULL,
     seq INTEGER NOT NULL,
     body BLOB NOT NULL,
     keep_until INTEGER NOT NULL,
     PRIMARY KEY (payer, seq)
   ) STRICT;
   CREATE INDEX invoices_keep ON invoices (keep_until);`,
]

interface AccountRow {
  payer: string
  charged: number
  received: number
  granted: number
  seq: number
  cheque: Uint8Array | null
  credit_limit: number | null
  over_since: number | null
  invoice_seq: number
  store_billed_to: number | null
}

interface Exposure {
  payer: string
  amount: number
  /** ms after which it no longer counts */
  until: number
}

function randomId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)))
}

/**
 * Opens the payee ledger in `init.path`.
 *
 * @example
 * ```ts
 * const ledger = openPayeeLedger({ path: 'data/ledger.db', key, covenant: () => node.covenant })
 * const admission = ledger.admit({ id, ...request })       // PAYMENT_REQUIRED past the credit
 * admission.signed(reply.receipt)                          // after signing, before replying
 * ledger.recordCertified(certificate)                      // when the caller (or anyone) shows it
 * ledger.applyCheque(cheque)                               // the caller pays
 * ```
 */
export function openPayeeLedger(init: PayeeLedgerInit): PayeeLedger {
  const opts = payeeLedgerOptionsSchema.parse({
    path: init.path,
    devnet: init.devnet,
    faucetLimit: init.faucetLimit,
    certificateWindowMs: init.certificateWindowMs,
    exposureMs: init.exposureMs,
    historyMs: init.historyMs,
    maxAccounts: init.maxAccounts,
    maxExposures: init.maxExposures,
    dayMs: init.dayMs,
  })
  if (opts.dayMs !== DAY_MS && !opts.devnet)
    throw new CovenantError('INVALID_INPUT', 'only a devnet ledger counts storage days shorter than 24 h')
  const payee = keyId(init.key)
  const store = openSide(opts.path, MIGRATIONS, 'payee ledger', init)
  const { db, transaction, now, verifyCertificate, verifyConflict, prune } = store
  /** the storage day it is now (UTC days, or a devnet's shorter ones) */
  const today = (): number => utcDay(now(), opts.dayMs)

  const stmt = {
    account: db.prepare('SELECT * FROM accounts WHERE payer = ?'),
    countAccounts: db.prepare('SELECT count(*) AS n FROM accounts'),
    createAccount: db.prepare('INSERT OR IGNORE INTO accounts (payer, updated_at) VALUES (?, ?)'),
    addCharged: db.prepare(
      `UPDATE accounts SET charged = charged + ?1, updated_at = ?2
       WHERE payer = ?3 AND charged + ?1 <= ${MAX_AMOUNT} RETURNING *`,
    ),
    setReceived: db.prepare(
      'UPDATE accounts SET received = ?, seq = ?, cheque = ?, updated_at = ? WHERE payer = ?',
    ),
    addGranted: db.prepare('UPDATE accounts SET granted = granted + ?, updated_at = ? WHERE payer = ?'),
    setLimit: db.prepare('UPDATE accounts SET credit_limit = ?, updated_at = ? WHERE payer = ?'),
    setOverSince: db.prepare('UPDATE accounts SET over_since = ? WHERE payer = ?'),
    billed: db.prepare(
      'UPDATE accounts SET store_billed_to = ?, invoice_seq = ?, updated_at = ? WHERE payer = ?',
    ),
    nextInvoice: db.prepare(
      'UPDATE accounts SET invoice_seq = invoice_seq + 1 WHERE payer = ? RETURNING invoice_seq',
    ),
    list: db.prepare('SELECT * FROM accounts WHERE payer > ? ORDER BY payer LIMIT ?'),
    indebted: db.prepare(
      'SELECT * FROM accounts WHERE charged > received + granted OR over_since IS NOT NULL',
    ),
    insertCharge: db.prepare(
      `INSERT OR IGNORE INTO charges (ref, payer, kind, amount, fuel, covenant_version, at, keep_until)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    history: db.prepare(
      'SELECT * FROM charges WHERE payer = ? AND at < ? ORDER BY at DESC, ref DESC LIMIT ?',
    ),
    chargeOf: db.prepare('SELECT payer, amount FROM charges WHERE ref = ?'),
    raiseCharge: db.prepare('UPDATE charges SET amount = ?, at = ?, keep_until = ? WHERE ref = ?'),
    prices: db.prepare('SELECT sheet FROM prices'),
    insertPrice: db.prepare('INSERT OR IGNORE INTO prices (version, sheet) VALUES (?, ?)'),
    deposit: db.prepare('SELECT body FROM deposits WHERE id = ?'),
    insertDeposit: db.prepare('INSERT INTO deposits (id, payer, body) VALUES (?, ?, ?)'),
    pin: db.prepare(
      `INSERT INTO pins (payer, cid, bytes, from_day) VALUES (?, ?, ?, ?)
       ON CONFLICT (payer, cid) DO UPDATE SET until_day = NULL`,
    ),
    unpin: db.prepare('UPDATE pins SET until_day = ? WHERE payer = ? AND cid = ? AND until_day IS NULL'),
    pins: db.prepare('SELECT cid, bytes, from_day, until_day FROM pins WHERE payer = ? ORDER BY cid'),
    pinPayers: db.prepare('SELECT DISTINCT payer FROM pins ORDER BY payer'),
    dropPins: db.prepare('DELETE FROM pins WHERE payer = ? AND until_day IS NOT NULL AND until_day <= ?'),
    pinned: db.prepare('SELECT payer, cid, bytes FROM pins WHERE until_day IS NULL ORDER BY payer, cid'),
    keepInvoice: db.prepare('INSERT INTO invoices (payer, seq, body, keep_until) VALUES (?, ?, ?, ?)'),
    invoices: db.prepare('SELECT body FROM invoices WHERE payer = ? AND seq > ? ORDER BY seq LIMIT ?'),
    pruneInvoices: db.prepare('DELETE FROM invoices WHERE keep_until < ?'),
  }

  /** Keeps an invoice for its payer to fetch (inside the transaction that charges it). */
  function keepInvoice(invoice: Invoice): void {
    stmt.keepInvoice.run(invoice.payer, invoice.seq, dagCbor.encode(invoice), now() + opts.historyMs)
  }

  // ── price sheets of this node's own covenant versions ──
  const sheets = new Map<number, PriceSheet>()
  for (const row of stmt.prices.all()) {
    const sheet = PriceSheetSchema.parse(JSON.parse(String(row.sheet)))
    sheets.set(sheet.version, sheet)
  }
  /** The current covenant, its prices remembered by version so a later certificate is charged by them. */
  function currentCovenant(): SignedCovenant {
    const covenant = init.covenant()
    if (!sheets.has(covenant.version)) {
      const sheet = priceSheet(covenant)
      if (sheet.peer !== payee)
        throw new CovenantError('INVALID_INPUT', `the covenant given is ${sheet.peer}'s, not this node's`)
      stmt.insertPrice.run(sheet.version, JSON.stringify(sheet))
      sheets.set(sheet.version, sheet)
    }
    return covenant
  }

  // ── exposure: calls admitted or signed, not yet certified (memory: a restart writes it off) ──
  const exposures = new Map<string, Exposure>()
  const exposureOf = new Map<string, number>()
  let nextSweep = 0
  function addExposure(id: string, e: Exposure): void {
    exposures.set(id, e)
    exposureOf.set(e.payer, (exposureOf.get(e.payer) ?? 0) + e.amount)
  }
  function dropExposure(id: string): void {
    const e = exposures.get(id)
    if (e === undefined) return
    exposures.delete(id)
    const left = (exposureOf.get(e.payer) ?? 0) - e.amount
    if (left > 0) exposureOf.set(e.payer, left)
    else exposureOf.delete(e.payer)
  }
  function sweep(force = false): void {
    const t = now()
    if (!force && t < nextSweep) return
    nextSweep = t + 1000
    for (const [id, e] of exposures) if (e.until <= t) dropExposure(id)
  }

  // ── accounts ──
  function row(payer: string): AccountRow | undefined {
    return stmt.account.get(payer) as AccountRow | undefined
  }
  function limitOf(r: AccountRow | undefined): number {
    return r?.credit_limit ?? currentCovenant().config.credit
  }
  function view(payer: string, r: AccountRow | undefined): PayeeAccount {
    const charged = r?.charged ?? 0
    const received = r?.received ?? 0
    const granted = r?.granted ?? 0
    const outstanding = charged - received - granted
    const exposure = exposureOf.get(payer) ?? 0
    const limit = limitOf(r)
    const account: PayeeAccount = {
      payer,
      charged,
      received,
      granted,
      outstanding,
      exposure,
      limit,
      available: limit - outstanding - exposure,
      seq: r?.seq ?? 0,
    }
    if (r?.over_since != null) account.overSince = r.over_since
    return account
  }
  /** Creates the payer's account if needed (PEER_BUSY when the ledger holds as many as allowed). */
  // counted once, then kept: count(*) walks the whole table
  let accountCount = Number((stmt.countAccounts.get() as { n: number }).n)
  /** Inside a transaction: a refusal rolls the new row back. */
  function ensureAccount(payer: string): void {
    if (Number(stmt.createAccount.run(payer, now()).changes) === 0) return
    assertRoom()
    accountCount++
  }
  function assertRoom(): void {
    if (accountCount >= opts.maxAccounts)
      throw new CovenantError(
        'PEER_BUSY',
        `this node's ledger holds ${accountCount} accounts, as many as it keeps`,
      )
  }
  /** Keeps `over_since` in step with the account after a change (inside the caller's transaction). */
  function markOver(payer: string, r = row(payer)): void {
    if (r === undefined) return
    const over = r.charged - r.received - r.granted > limitOf(r)
    if (over && r.over_since === null) stmt.setOverSince.run(now(), payer)
    else if (!over && r.over_since !== null) stmt.setOverSince.run(null, payer)
  }

  function charge(
    payer: string,
    c: {
      ref: string
      kind: ChargeRecord['kind']
      amount: number
      fuel?: number
      version: number
      keepUntil: number
    },
  ): boolean {
    const at = now()
    const inserted = stmt.insertCharge.run(
      c.ref,
      payer,
      c.kind,
      c.amount,
      c.fuel ?? null,
      c.version,
      at,
      Math.max(c.keepUntil, at + opts.historyMs),
    )
    if (Number(inserted.changes) === 0) return false
    const r = stmt.addCharged.get(c.amount, at, payer) as AccountRow | undefined
    // no row: the sum would pass 2^53 − 1, where it is no longer exact; the transaction rolls back
    if (r === undefined)
      throw new CovenantError('AMOUNT_TOO_LARGE', `${payer} would owe more than ${formatAmount(MAX_AMOUNT)}`)
    markOver(payer, r)
    return true
  }

  function checkPayer(payer: string): string {
    if (!KeyIdSchema.safeParse(payer).success)
      throw new CovenantError('INVALID_INPUT', `not a key id: ${JSON.stringify(payer).slice(0, 80)}`)
    return payer
  }

  function admission(request: string, payer: string, maxCharge: number): Admission {
    return {
      request,
      payer,
      maxCharge,
      signed(receipt) {
        if (receipt.executor !== payee || receipt.request !== request)
          throw new CovenantError('INVALID_INPUT', `the receipt is not this node's for request ${request}`)
        const e = exposures.get(request)
        if (e === undefined) return 0
        currentCovenant()
        const sheet = sheets.get(receipt.covenantVersion)
        // A version this node never priced cannot be certified for a charge; keep the bound it had.
        if (sheet === undefined) return e.amount
        const amount = chargeFor(sheet, receipt.fuel)
        dropExposure(request)
        addExposure(request, { ...e, amount })
        return amount
      },
      release() {
        dropExposure(request)
      },
    }
  }

  return {
    payee,

    admit(call) {
      store.assertOpen()
      const payer = checkPayer(call.caller)
      const covenant = currentCovenant()
      const maxCharge = chargeFor(covenant.config.execute, call.fuel)
      if (exposures.has(call.id)) return admission(call.id, payer, maxCharge)
      sweep(exposures.size >= opts.maxExposures)
      if (exposures.size >= opts.maxExposures)
        throw new CovenantError('PEER_BUSY', `${exposures.size} calls await their certificates`)
      const r = row(payer)
      // A stranger is admitted only if its account could be opened when its certificate comes.
      if (r === undefined) assertRoom()
      const account = view(payer, r)
      const needed = account.outstanding + account.exposure + maxCharge - account.limit
      if (needed > 0) {
        const details = {
          payer,
          payee,
          outstanding: account.outstanding,
          exposure: account.exposure,
          limit: account.limit,
          maxCharge,
          received: account.received,
          payUpTo: account.received + needed,
        }
        throw new CovenantError(
          'PAYMENT_REQUIRED',
          `${payer} owes ${formatAmount(account.outstanding)} with ${formatAmount(account.exposure)} in flight, and this call may cost ${formatAmount(maxCharge)}: more than the ${formatAmount(account.limit)} credit ${payee} extends. Send it a cheque for ${formatAmount(details.payUpTo)} in all`,
          { details },
        )
      }
      addExposure(call.id, { payer, amount: maxCharge, until: call.deadline + opts.exposureMs })
      return admission(call.id, payer, maxCharge)
    },

    recordCertified(value, evidence = {}) {
      store.assertOpen()
      const certificate = verifyCertificate(value)
      const request = certificate.id
      const payer = certificate.request.caller
      // Whatever the outcome, the receipt is no longer in flight.
      const result = (status: CertifiedStatus, amount = 0): CertifiedCharge => {
        dropExposure(request)
        return { request, payer, status, amount }
      }
      if (payer === payee) return result('self')
      const mine = certificate.receipts.find((r) => r.executor === payee)
      if (mine === undefined) return result('not-in-certificate')
      for (const c of evidence.conflicts ?? []) {
        const { receipt } = verifyConflict(c)
        // Evidence against this node for this request is signed by this node: it cannot deny it.
        if (receipt.executor === payee && receipt.request === request) return result('accused')
      }
      const keepUntil = certificate.request.deadline + opts.certificateWindowMs
      if (now() > keepUntil) return result('stale')
      currentCovenant()
      const sheet = sheets.get(mine.covenantVersion)
      if (sheet === undefined) return result('price-unknown')
      const amount = chargeFor(sheet, mine.fuel)
      prune()
      const charged = transaction(() => {
        ensureAccount(payer)
        return charge(payer, {
          ref: request,
          kind: 'exec',
          amount,
          fuel: mine.fuel,
          version: mine.covenantVersion,
          keepUntil,
        })
      })
      return charged ? result('charged', amount) : result('duplicate')
    },

    chargeJob(payerId, ref, total) {
      store.assertOpen()
      const payer = checkPayer(payerId)
      const amount = jobChargeTotal(total)
      if (payer === payee || amount === 0) return 0
      prune()
      return transaction(() => {
        const held = stmt.chargeOf.get(ref) as { payer: string; amount: number } | undefined
        if (held !== undefined && held.payer !== payer)
          throw new CovenantError('INVALID_INPUT', `charge ${ref} is another payer's`)
        const before = held === undefined ? 0 : Number(held.amount)
        if (amount <= before) return 0
        ensureAccount(payer)
        const version = currentCovenant().version
        const keepUntil = now() + opts.certificateWindowMs
        if (held === undefined) charge(payer, { ref, kind: 'job', amount, version, keepUntil })
        else {
          stmt.raiseCharge.run(amount, now(), Math.max(keepUntil, now() + opts.historyMs), ref)
          const r = stmt.addCharged.get(amount - before, now(), payer) as AccountRow | undefined
          if (r === undefined)
            throw new CovenantError(
              'AMOUNT_TOO_LARGE',
              `${payer} would owe more than ${formatAmount(MAX_AMOUNT)}`,
            )
          markOver(payer, r)
        }
        return amount - before
      })
    },

    applyCheque(value) {
      store.assertOpen()
      const cheque = verifyCheque(value, { payee })
      return transaction(() => {
        ensureAccount(cheque.payer)
        const r = row(cheque.payer)!
        const applied = cheque.cumulative > r.received
        if (applied) {
          stmt.setReceived.run(cheque.cumulative, cheque.seq, dagCbor.encode(cheque), now(), cheque.payer)
          markOver(cheque.payer)
        }
        const after = row(cheque.payer)!
        const best =
          after.cheque === null ? cheque : decodeNote(ChequeSchema, after.cheque, 'INTERNAL', 'stored cheque')
        return { applied, account: view(cheque.payer, after), best }
      })
    },

    deposit(payerId, amount, id = randomId()) {
      store.assertOpen()
      const payer = checkPayer(payerId)
      if (!opts.devnet)
        throw new CovenantError('FAUCET_REFUSED', `${payee} is not a devnet node: it mints nothing`)
      const seen = stmt.deposit.get(id) as { body: Uint8Array } | undefined
      if (seen !== undefined) {
        const earlier = decodeNote(DepositSchema, seen.body, 'INTERNAL', 'stored deposit')
        if (earlier.payer !== payer || earlier.amount !== amount)
          throw new CovenantError('INVALID_INPUT', `deposit ${id} was made for another payer or amount`)
        return earlier
      }
      const granted = row(payer)?.granted ?? 0
      if (!Number.isSafeInteger(amount) || amount < 1 || granted + amount > opts.faucetLimit)
        throw new CovenantError(
          'FAUCET_REFUSED',
          `the faucet mints at most ${formatAmount(opts.faucetLimit)} per caller; ${payer} has ${formatAmount(granted)}`,
          { details: { granted, limit: opts.faucetLimit } },
        )
      const deposit = signDeposit(init.key, { payer, amount, id, issuedAt: now() })
      transaction(() => {
        ensureAccount(payer)
        stmt.insertDeposit.run(id, payer, dagCbor.encode(deposit))
        stmt.addGranted.run(amount, now(), payer)
        markOver(payer)
      })
      return deposit
    },

    setLimit(payerId, limit) {
      store.assertOpen()
      const payer = checkPayer(payerId)
      if (limit !== undefined && !AmountSchema.safeParse(limit).success)
        throw new CovenantError('INVALID_INPUT', `a credit limit is a whole number of ncr, not ${limit}`)
      transaction(() => {
        ensureAccount(payer)
        stmt.setLimit.run(limit ?? null, now(), payer)
        markOver(payer)
      })
    },

    account(payer) {
      store.assertOpen()
      sweep()
      return view(payer, row(payer))
    },

    accounts(o = {}) {
      store.assertOpen()
      sweep()
      const limit = Math.min(Math.max(1, o.limit ?? 100), 1000)
      return (stmt.list.all(o.after ?? '', limit) as unknown as AccountRow[]).map((r) => view(r.payer, r))
    },

    history(payer, o = {}) {
      store.assertOpen()
      const limit = Math.min(Math.max(1, o.limit ?? 100), 1000)
      return stmt.history.all(payer, o.before ?? Number.MAX_SAFE_INTEGER, limit).map(chargeRecord)
    },

    statement(payer) {
      store.assertOpen()
      const a = view(payer, row(payer))
      return { payer, payee, charged: a.charged, paid: a.received, granted: a.granted }
    },

    pin(payerId, cid, bytes) {
      store.assertOpen()
      const payer = checkPayer(payerId)
      if (!Number.isSafeInteger(bytes) || bytes < 1)
        throw new CovenantError('INVALID_INPUT', `a block has a whole number of bytes ≥ 1, not ${bytes}`)
      transaction(() => {
        ensureAccount(payer)
        stmt.pin.run(payer, cid, bytes, today())
      })
    },

    unpin(payer, cid) {
      store.assertOpen()
      stmt.unpin.run(today() + 1, payer, cid)
    },

    billStorage(payer) {
      store.assertOpen()
      stmt.pruneInvoices.run(now())
      const payers =
        payer === undefined ? stmt.pinPayers.all().map((r) => String(r.payer)) : [checkPayer(payer)]
      return payers.flatMap(billPayer)
    },

    billServed(payerId, lines) {
      store.assertOpen()
      const payer = checkPayer(payerId)
      const covenant = currentCovenant()
      const sheet = sheets.get(covenant.version)!
      if (sheet.pricePerByte === 0 || lines.length === 0) return undefined
      return transaction(() => {
        ensureAccount(payer)
        const seq = Number((stmt.nextInvoice.get(payer) as { invoice_seq: number }).invoice_seq)
        const invoice = signInvoice(init.key, {
          kind: 'serve',
          payer,
          seq,
          covenantVersion: sheet.version,
          pricePerByte: sheet.pricePerByte,
          lines: lines.map((l) => ({ cid: l.cid, bytes: l.bytes })),
          issuedAt: now(),
        })
        keepInvoice(invoice)
        charge(payer, {
          ref: invoiceId(invoice),
          kind: 'serve',
          amount: invoice.amount,
          version: sheet.version,
          keepUntil: now(),
        })
        return invoice
      })
    },

    invoices(payerId, o = {}) {
      store.assertOpen()
      const limit = Math.min(Math.max(1, o.limit ?? 100), 1000)
      return stmt.invoices
        .all(checkPayer(payerId), o.after ?? 0, limit)
        .map((r) => decodeNote(InvoiceSchema, r.body as Uint8Array, 'INTERNAL', 'stored invoice'))
    },

    pinned() {
      store.assertOpen()
      return stmt.pinned
        .all()
        .map((r) => ({ payer: String(r.payer), cid: String(r.cid), bytes: Number(r.bytes) }))
    },

    overdue() {
      store.assertOpen()
      const t = now()
      const noticeMs = currentCovenant().config.store.noticeDays * opts.dayMs
      const out: OverdueAccount[] = []
      for (const r of stmt.indebted.all() as unknown as AccountRow[]) {
        transaction(() => markOver(r.payer))
        const a = view(r.payer, row(r.payer))
        if (a.overSince === undefined) continue
        const dropAt = a.overSince + noticeMs
        out.push({
          payer: a.payer,
          outstanding: a.outstanding,
          limit: a.limit,
          since: a.overSince,
          dropAt,
          droppable: t >= dropAt,
          blocks: stmt.pins.all(a.payer).map((p) => String(p.cid)),
        })
      }
      return out
    },

    close() {
      store.close()
    },
  }

  function billPayer(payer: string): Invoice[] {
    const pins = stmt.pins.all(payer) as unknown as Array<{
      cid: string
      bytes: number
      from_day: number
      until_day: number | null
    }>
    if (pins.length === 0) return []
    const r = row(payer)!
    const fromDay = r.store_billed_to ?? Math.min(...pins.map((p) => p.from_day))
    const toDay = today()
    if (fromDay >= toDay) return []
    currentCovenant()
    const sheet = sheetForDay([...sheets.values()], fromDay, opts.dayMs)
    if (sheet === undefined)
      throw new CovenantError('PRICE_UNKNOWN', `no covenant of this node was issued by day ${fromDay}`)
    const lines = pins
      .map((p) => ({
        cid: p.cid,
        bytes: p.bytes,
        days: Math.min(p.until_day ?? toDay, toDay) - Math.max(p.from_day, fromDay),
      }))
      .filter((l) => l.days > 0)
    return transaction(() => {
      const invoices: Invoice[] = []
      let seq = r.invoice_seq
      if (sheet.pricePerBytePerDay > 0)
        for (let i = 0; i < lines.length; i += MAX_INVOICE_LINES) {
          const invoice = signInvoice(init.key, {
            kind: 'store',
            payer,
            seq: ++seq,
            covenantVersion: sheet.version,
            pricePerBytePerDay: sheet.pricePerBytePerDay,
            fromDay,
            toDay,
            lines: lines.slice(i, i + MAX_INVOICE_LINES),
            issuedAt: now(),
          })
          keepInvoice(invoice)
          charge(payer, {
            ref: invoiceId(invoice),
            kind: 'store',
            amount: invoice.amount,
            version: sheet.version,
            keepUntil: now(),
          })
          invoices.push(invoice)
        }
      stmt.billed.run(toDay, seq, now(), payer)
      stmt.dropPins.run(payer, toDay)
      return invoices
    })
  }
}
