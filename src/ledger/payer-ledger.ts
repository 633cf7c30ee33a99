/**
 * The payer's side of the ledger: what a caller (or a publisher of pinned blocks) owes each payee
 * and what it has paid, in one SQLite file.
 *
 * - owed: each certified receipt at the price of the payee's covenant at the version the receipt
 *   names, and each accepted invoice;
 * - paid: the cumulative amount of the newest cheque signed to the payee (written here before it
 *   is sent, so a crash never signs two different cheques with one number);
 * - acked: the most the payee has confirmed holding; a cheque above it is resent until confirmed;
 * - granted: faucet deposits the payee signed.
 *
 * It also keeps what the wiring must deliver: each certificate it charged, until every payee in it
 * confirmed receiving it (an outbox, written in the same transaction as the charge, so a crash
 * never leaves a charge the payee cannot learn of), and the blocks this payer published, which
 * are the only ones a holder may bill it for.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import { parseCid } from '../content/index.ts'
import { CovenantError } from '../errors/index.ts'
import { type Certificate, CertificateSchema } from '../exec/index.ts'
import { KeyIdSchema, keyId, type PrivateKey } from '../keys/index.ts'
import { type Cheque, ChequeSchema, decodeNote, signCheque, verifyCheque, verifyDeposit } from './cheque.ts'
import { checkInvoicePrice, invoiceId, verifyInvoice } from './invoice.ts'
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
  addAmounts,
  chargeFor,
  type PriceSheet,
  PriceSheetSchema,
  priceSheet,
  utcDay,
} from './pricing.ts'
import type { PairStatement } from './reconcile.ts'

/** The payer ledger's tunables; every default is written here. */
export const payerLedgerOptionsSchema = z.strictObject({
  ...sideOptionsShape,
  /** covenant versions remembered per payee @default 16 */
  versionsPerPeer: z.number().int().min(1).max(1024).default(16),
})
export type PayerLedgerOptions = z.input<typeof payerLedgerOptionsSchema>

export interface PayerLedgerInit extends PayerLedgerOptions, SideInit {
  /** the payer's key: signs every cheque */
  key: PrivateKey
}

/** One payee as this payer sees it. All amounts in ncr. */
export interface PayerAccount {
  payee: string
  owed: number
  paid: number
  /** the most the payee confirmed holding */
  acked: number
  granted: number
  /** owed − granted − paid; negative when paid ahead */
  outstanding: number
  /** seq of the newest cheque signed (0: none) */
  seq: number
  /** a cheque is signed but not yet confirmed: {@link PayerLedger.pending} returns it */
  unconfirmed: boolean
  /** certificates charged for this payee that it has not confirmed receiving */
  undelivered: number
  /** the newest invoice number of this payee (as a holder) dealt with: fetch those after it */
  invoiceSeq: number
}

/** One charge in the payer's history: to whom, and what. */
export interface PayerCharge extends ChargeRecord {
  payee: string
}

export interface PayerCertifiedCharge {
  payee: string
  /** `self`: the payer's own receipt (a node that dispatched a job's attempt and ran it too), owed to no one */
  status: 'charged' | 'duplicate' | 'accused' | 'stale' | 'self'
  /** the charge recorded now (0 unless `charged`); for `self`, the price of the receipt */
  amount: number
}

export interface PayerLedger {
  /** the payer's key id */
  readonly payer: string
  /** Remembers a payee's prices from its signed covenant (INVALID_SIGNATURE, PROTOCOL_ERROR). */
  learnCovenant(covenant: unknown): PriceSheet
  /**
   * Records what a certificate for one of this payer's requests costs: each receipt at the price
   * of its executor's covenant at the version it names. `covenants` are learned first; an unknown
   * version is PRICE_UNKNOWN (details.missing) and nothing is recorded. A receipt whose executor
   * is accused by verified `conflicts` for this request is not owed. Idempotent per certificate.
   */
  recordCertified(
    certificate: unknown,
    opts?: { covenants?: readonly unknown[]; conflicts?: readonly unknown[] },
  ): PayerCertifiedCharge[]
  /**
   * Records what a keeper charged this payer for a job it enqueued (`ref` = `job:<id>`): `total`
   * is what the job's state says that keeper charged so far. It only grows; a total below or equal
   * to the one recorded changes nothing. Returns what was added. The caller checks the job's
   * charges against the budget it signed before recording them.
   */
  recordJobCharge(payee: string, ref: string, total: number): number
  /**
   * Accepts an invoice from a holder after checking it (INVALID_INVOICE, PRICE_UNKNOWN): every
   * line must be a block this payer asked that holder for (`owns`), no storage day billed twice.
   */
  acceptInvoice(
    invoice: unknown,
    opts?: { covenants?: readonly unknown[]; owns?: (line: { cid: string; bytes: number }) => boolean },
  ): { id: string; status: 'charged' | 'duplicate'; amount: number }
  /**
   * Notes a block this payer published (pinned), so holders may bill it; `owns` defaults to these.
   * Idempotent; the first date stays (days before it are never owed).
   */
  publish(cid: string, bytes: number): void
  /** Certificates charged for `payee` that it has not yet confirmed, oldest first (at most `limit`, default 16). */
  undelivered(payee: string, limit?: number): Certificate[]
  /** The payee confirmed these certificates (by id): they leave its outbox. */
  delivered(payee: string, ids: readonly string[]): void
  /** A certificate this payer was charged for, by its id, while its charge is in the history. */
  certificate(id: string): Certificate | undefined
  /** Payees with something to send: a cheque not yet confirmed, or undelivered certificates. */
  due(): string[]
  /** Counts a faucet deposit made out to this payer (INVALID_DEPOSIT otherwise); once per id. */
  applyDeposit(deposit: unknown): { applied: boolean }
  /** Signs a cheque to every payee (or one) owed more than was paid; each is written before it is returned. */
  settle(payee?: string): Cheque[]
  /** Signs a cheque paying `amount` more than already paid, ahead of charges. */
  prepay(payee: string, amount: number): Cheque
  /** The newest cheque to each payee that has not confirmed it: send these again. */
  pending(): Cheque[]
  /** Notes the best cheque the payee says it holds (its reply to a cheque); it must be this payer's. */
  acknowledge(best: unknown): PayerAccount
  account(payee: string): PayerAccount
  accounts(): PayerAccount[]
  /** charges newest first, optionally for one payee, each with its certificate or invoice id */
  history(opts?: { payee?: string; limit?: number; before?: number }): PayerCharge[]
  statement(payee: string): PairStatement
  statements(): PairStatement[]
  close(): void
}

/** Outgoing certificates a payer ledger keeps decoded (a few KiB each). */
const OUTGOING_KEPT = 256

const MIGRATIONS = [
  `CREATE TABLE accounts (
     payee TEXT PRIMARY KEY,
     owed INTEGER NOT NULL DEFAULT 0,
     paid INTEGER NOT NULL DEFAULT 0,
     acked INTEGER NOT NULL DEFAULT 0,
     granted INTEGER NOT NULL DEFAULT 0,
     seq INTEGER NOT NULL DEFAULT 0,
     cheque BLOB,
     updated_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE charges (
     payee TEXT NOT NULL,
     ref TEXT NOT NULL,
     kind TEXT NOT NULL,
     amount INTEGER NOT NULL,
     fuel INTEGER,
     covenant_version INTEGER NOT NULL,
     at INTEGER NOT NULL,
     keep_until INTEGER NOT NULL,
     PRIMARY KEY (payee, ref)
   ) STRICT;
   CREATE INDEX charges_at ON charges (at);
   CREATE INDEX charges_keep ON charges (keep_until);
   CREATE TABLE prices (
     peer TEXT NOT NULL,
     version INTEGER NOT NULL,
     sheet TEXT NOT NULL,
     PRIMARY KEY (peer, version)
   ) STRICT;
   CREATE TABLE deposits (payee TEXT NOT NULL, id TEXT NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (payee, id)) STRICT;
   CREATE TABLE storage_billed (
     holder TEXT NOT NULL,
     cid TEXT NOT NULL,
     to_day INTEGER NOT NULL,
     PRIMARY KEY (holder, cid)
   ) STRICT;`,
  `CREATE TABLE certificates (ref TEXT PRIMARY KEY, body BLOB NOT NULL, keep_until INTEGER NOT NULL) STRICT;
   CREATE INDEX certificates_keep ON certificates (keep_until);
   CREATE TABLE outbox (payee TEXT NOT NULL, ref TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (payee, ref)) STRICT;
   CREATE TABLE published (cid TEXT PRIMARY KEY, bytes INTEGER NOT NULL, at INTEGER NOT NULL) STRICT;
   ALTER TABLE accounts ADD COLUMN invoice_seq INTEGER NOT NULL DEFAULT 0;`,
]

interface AccountRow {
  payee: string
  owed: number
  paid: number
  acked: number
  granted: number
  seq: number
  cheque: Uint8Array | null
  invoice_seq: number
}

/**
 * Opens the payer ledger in `init.path`.
 *
 * @example
 * ```ts
 * const ledger = openPayerLedger({ path: '.covenant/ledger.db', key: callerKey })
 * ledger.recordCertified(certificate, { covenants })     // what the run costs, per executor
 * for (const cheque of ledger.settle()) {
 *   const { best } = await pay(cheque.payee, cheque, certificate)   // the wiring's exchange
 *   ledger.acknowledge(best)
 * }
 * ```
 */
export function openPayerLedger(init: PayerLedgerInit): PayerLedger {
  const opts = payerLedgerOptionsSchema.parse({
    path: init.path,
    certificateWindowMs: init.certificateWindowMs,
    historyMs: init.historyMs,
    versionsPerPeer: init.versionsPerPeer,
    dayMs: init.dayMs,
  })
  const payer = keyId(init.key)
  const store = openSide(opts.path, MIGRATIONS, 'payer ledger', init)
  const { db, transaction, now, verifyCertificate, verifyConflict, prune } = store

  const stmt = {
    account: db.prepare('SELECT * FROM accounts WHERE payee = ?'),
    all: db.prepare('SELECT * FROM accounts ORDER BY payee'),
    owing: db.prepare('SELECT * FROM accounts WHERE owed - granted > paid ORDER BY payee'),
    unconfirmed: db.prepare('SELECT * FROM accounts WHERE paid > acked ORDER BY payee'),
    create: db.prepare('INSERT OR IGNORE INTO accounts (payee, updated_at) VALUES (?, ?)'),
    addOwed: db.prepare('UPDATE accounts SET owed = owed + ?, updated_at = ? WHERE payee = ?'),
    addGranted: db.prepare('UPDATE accounts SET granted = granted + ?, updated_at = ? WHERE payee = ?'),
    paid: db.prepare('UPDATE accounts SET paid = ?, seq = ?, cheque = ?, updated_at = ? WHERE payee = ?'),
    acked: db.prepare('UPDATE accounts SET acked = ?, updated_at = ? WHERE payee = ?'),
    insertCharge: db.prepare(
      `INSERT OR IGNORE INTO charges (payee, ref, kind, amount, fuel, covenant_version, at, keep_until)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    hasCharge: db.prepare('SELECT amount FROM charges WHERE payee = ? AND ref = ?'),
    raiseCharge: db.prepare('UPDATE charges SET amount = ?, at = ? WHERE payee = ? AND ref = ?'),
    history: db.prepare('SELECT * FROM charges WHERE at < ? ORDER BY at DESC, ref DESC LIMIT ?'),
    historyOf: db.prepare(
      'SELECT * FROM charges WHERE payee = ? AND at < ? ORDER BY at DESC, ref DESC LIMIT ?',
    ),
    prices: db.prepare('SELECT sheet FROM prices'),
    insertPrice: db.prepare('INSERT OR IGNORE INTO prices (peer, version, sheet) VALUES (?, ?, ?)'),
    trimPrices: db.prepare(
      `DELETE FROM prices WHERE peer = ? AND version NOT IN
         (SELECT version FROM prices WHERE peer = ? ORDER BY version DESC LIMIT ?)`,
    ),
    insertDeposit: db.prepare('INSERT OR IGNORE INTO deposits (payee, id, amount) VALUES (?, ?, ?)'),
    billedTo: db.prepare('SELECT to_day FROM storage_billed WHERE holder = ? AND cid = ?'),
    setBilledTo: db.prepare(
      `INSERT INTO storage_billed (holder, cid, to_day) VALUES (?, ?, ?)
       ON CONFLICT (holder, cid) DO UPDATE SET to_day = excluded.to_day`,
    ),
    invoiceSeq: db.prepare(
      'UPDATE accounts SET invoice_seq = max(invoice_seq, ?), updated_at = ? WHERE payee = ?',
    ),
    keepCertificate: db.prepare(
      'INSERT OR IGNORE INTO certificates (ref, body, keep_until) VALUES (?, ?, ?)',
    ),
    certificate: db.prepare('SELECT body FROM certificates WHERE ref = ?'),
    pruneCertificates: db.prepare(
      'DELETE FROM certificates WHERE keep_until < ? AND ref NOT IN (SELECT ref FROM outbox)',
    ),
    enqueue: db.prepare('INSERT OR IGNORE INTO outbox (payee, ref, at) VALUES (?, ?, ?)'),
    undelivered: db.prepare(
      `SELECT c.ref, c.body FROM outbox o JOIN certificates c ON c.ref = o.ref
       WHERE o.payee = ? ORDER BY o.at, o.ref LIMIT ?`,
    ),
    undeliveredCount: db.prepare('SELECT count(*) AS n FROM outbox WHERE payee = ?'),
    delivered: db.prepare('DELETE FROM outbox WHERE payee = ? AND ref = ?'),
    due: db.prepare(
      `SELECT payee FROM accounts WHERE paid > acked
       UNION SELECT DISTINCT payee FROM outbox ORDER BY payee`,
    ),
    publish: db.prepare('INSERT OR IGNORE INTO published (cid, bytes, at) VALUES (?, ?, ?)'),
    published: db.prepare('SELECT bytes, at FROM published WHERE cid = ?'),
  }

  // Prices by "peer version"; the first signed covenant seen for a version is the one kept (a
  // peer that signs two configs under one version has only itself to blame for the older price).
  const sheets = new Map<string, PriceSheet>()
  const sheetKey = (peer: string, version: number) => `${peer} ${version}`
  for (const row of stmt.prices.all()) {
    const sheet = PriceSheetSchema.parse(JSON.parse(String(row.sheet)))
    sheets.set(sheetKey(sheet.peer, sheet.version), sheet)
  }

  let nextCertificatePrune = 0

  function learn(covenant: unknown): PriceSheet {
    const c = covenant as { peer?: unknown; version?: unknown }
    if (typeof c?.peer === 'string' && typeof c.version === 'number') {
      const known = sheets.get(sheetKey(c.peer, c.version))
      if (known !== undefined) return known
    }
    const sheet = priceSheet(covenant)
    transaction(() => {
      stmt.insertPrice.run(sheet.peer, sheet.version, JSON.stringify(sheet))
      stmt.trimPrices.run(sheet.peer, sheet.peer, opts.versionsPerPeer)
    })
    sheets.set(sheetKey(sheet.peer, sheet.version), sheet)
    // versions trimmed from the file are dropped from memory too
    const own = [...sheets.values()]
      .filter((s) => s.peer === sheet.peer)
      .sort((a, b) => b.version - a.version)
    for (const old of own.slice(opts.versionsPerPeer)) sheets.delete(sheetKey(old.peer, old.version))
    return sheet
  }

  function row(payee: string): AccountRow | undefined {
    return stmt.account.get(payee) as AccountRow | undefined
  }

  function view(payee: string, r: AccountRow | undefined): PayerAccount {
    const undelivered = Number((stmt.undeliveredCount.get(payee) as { n: number }).n)
    const owed = r?.owed ?? 0
    const paid = r?.paid ?? 0
    const acked = r?.acked ?? 0
    const granted = r?.granted ?? 0
    return {
      payee,
      owed,
      paid,
      acked,
      granted,
      outstanding: owed - granted - paid,
      seq: r?.seq ?? 0,
      unconfirmed: paid > acked,
      undelivered,
      invoiceSeq: r?.invoice_seq ?? 0,
    }
  }

  /** Certificates read from the outbox, by ref (see `undelivered`). */
  const outgoing = new Map<string, Certificate>()

  function decodeCertificate(body: Uint8Array): Certificate {
    return CertificateSchema.parse(dagCbor.decode(body))
  }

  /** What `acceptInvoice` checks a line against by default: a block this payer published, of that size. */
  function ownsPublished(line: { cid: string; bytes: number }): boolean {
    const r = stmt.published.get(line.cid) as { bytes: number } | undefined
    return r !== undefined && Number(r.bytes) === line.bytes
  }

  function addOwed(payee: string, amount: number): void {
    stmt.create.run(payee, now())
    addAmounts(row(payee)!.owed, amount)
    stmt.addOwed.run(amount, now(), payee)
  }

  /** Signs and writes cheque number seq + 1 to `payee` for `cumulative` (inside a transaction). */
  function writeCheque(payee: string, cumulative: number): Cheque {
    stmt.create.run(payee, now())
    const r = row(payee)!
    const cheque = signCheque(init.key, { payee, cumulative, seq: r.seq + 1, issuedAt: now() })
    stmt.paid.run(cumulative, cheque.seq, dagCbor.encode(cheque), now(), payee)
    return cheque
  }

  function storedCheque(r: AccountRow): Cheque {
    return decodeNote(ChequeSchema, r.cheque!, 'INTERNAL', 'stored cheque')
  }

  function checkPayee(payee: string): string {
    if (!KeyIdSchema.safeParse(payee).success || payee === payer)
      throw new CovenantError('INVALID_INPUT', `not a payee: ${JSON.stringify(payee).slice(0, 80)}`)
    return payee
  }

  return {
    payer,

    learnCovenant(covenant) {
      store.assertOpen()
      return learn(covenant)
    },

    recordCertified(value, o = {}) {
      store.assertOpen()
      const certificate = verifyCertificate(value)
      if (certificate.request.caller !== payer)
        throw new CovenantError(
          'INVALID_INPUT',
          `the certificate is for a request of ${certificate.request.caller}, not of ${payer}`,
        )
      for (const covenant of o.covenants ?? []) learn(covenant)
      const accused = new Set<string>()
      for (const c of o.conflicts ?? []) {
        const { receipt } = verifyConflict(c)
        if (receipt.request === certificate.id) accused.add(receipt.executor)
      }
      const keepUntil = certificate.request.deadline + opts.certificateWindowMs
      const stale = now() > keepUntil
      const missing = certificate.receipts
        .filter((r) => !accused.has(r.executor) && !sheets.has(sheetKey(r.executor, r.covenantVersion)))
        .map((r) => ({ peer: r.executor, version: r.covenantVersion }))
      if (!stale && missing.length > 0)
        throw new CovenantError(
          'PRICE_UNKNOWN',
          `the covenants of ${missing.map((m) => `${m.peer} at version ${m.version}`).join(', ')} are not known`,
          { details: { missing } },
        )
      prune()
      // Hourly, like the charges: a scan of every kept certificate on each call would grow with them.
      if (now() >= nextCertificatePrune) {
        nextCertificatePrune = now() + HOUR_MS
        stmt.pruneCertificates.run(now())
      }
      let body: Uint8Array | undefined
      return transaction(() =>
        certificate.receipts.map((r): PayerCertifiedCharge => {
          if (stale) return { payee: r.executor, status: 'stale', amount: 0 }
          if (accused.has(r.executor)) return { payee: r.executor, status: 'accused', amount: 0 }
          const sheet = sheets.get(sheetKey(r.executor, r.covenantVersion))!
          const amount = chargeFor(sheet, r.fuel)
          if (r.executor === payer) return { payee: r.executor, status: 'self', amount }
          const at = now()
          const inserted = stmt.insertCharge.run(
            r.executor,
            certificate.id,
            'exec',
            amount,
            r.fuel,
            r.covenantVersion,
            at,
            Math.max(keepUntil, at + opts.historyMs),
          )
          if (Number(inserted.changes) === 0) return { payee: r.executor, status: 'duplicate', amount: 0 }
          addOwed(r.executor, amount)
          // The payee charges on seeing the certificate: it goes out with the next payment.
          body ??= dagCbor.encode(certificate)
          stmt.keepCertificate.run(certificate.id, body, Math.max(keepUntil, at + opts.historyMs))
          stmt.enqueue.run(r.executor, certificate.id, at)
          return { payee: r.executor, status: 'charged', amount }
        }),
      )
    },

    recordJobCharge(payeeId, ref, total) {
      store.assertOpen()
      const payee = checkPayee(payeeId)
      const amount = jobChargeTotal(total)
      return transaction(() => {
        const held = stmt.hasCharge.get(payee, ref) as { amount: number } | undefined
        const before = held === undefined ? 0 : Number(held.amount)
        if (amount <= before) return 0
        const at = now()
        if (held === undefined)
          stmt.insertCharge.run(
            payee,
            ref,
            'job',
            amount,
            null,
            0,
            at,
            at + opts.certificateWindowMs + opts.historyMs,
          )
        else stmt.raiseCharge.run(amount, at, payee, ref)
        addOwed(payee, amount - before)
        return amount - before
      })
    },

    acceptInvoice(value, o = {}) {
      store.assertOpen()
      const invoice = verifyInvoice(value, { payer })
      const id = invoiceId(invoice)
      const seen = () =>
        transaction(() => {
          stmt.create.run(invoice.holder, now())
          stmt.invoiceSeq.run(invoice.seq, now(), invoice.holder)
        })
      if (stmt.hasCharge.get(invoice.holder, id) !== undefined) {
        seen()
        return { id, status: 'duplicate', amount: 0 }
      }
      // A refused invoice is signed by its holder: it is dealt with, and not fetched again. One
      // whose price is not known yet (PRICE_UNKNOWN) is not: it is accepted once the price is.
      const refuse = (message: string): never => {
        seen()
        throw new CovenantError('INVALID_INVOICE', message)
      }
      for (const covenant of o.covenants ?? []) learn(covenant)
      try {
        checkInvoicePrice(
          invoice,
          [...sheets.values()].filter((s) => s.peer === invoice.holder),
          opts.dayMs,
        )
      } catch (err) {
        if (err instanceof CovenantError && err.code === 'INVALID_INVOICE') refuse(err.message)
        throw err
      }
      const owns = o.owns ?? ownsPublished
      for (const line of invoice.lines)
        if (!owns({ cid: line.cid, bytes: line.bytes }))
          refuse(
            `the invoice bills ${line.cid} (${line.bytes} bytes), which this payer did not ask ${invoice.holder} for`,
          )
      if (invoice.kind === 'store') {
        const today = utcDay(now(), opts.dayMs)
        if (invoice.toDay > today + 1)
          refuse(`the invoice bills days up to ${invoice.toDay}, after today (${today})`)
        for (const line of invoice.lines) {
          const billed = stmt.billedTo.get(invoice.holder, line.cid) as { to_day: number } | undefined
          if (billed !== undefined && invoice.fromDay < billed.to_day)
            refuse(
              `${line.cid} is already billed up to day ${billed.to_day}; this invoice bills from day ${invoice.fromDay}`,
            )
          const published = stmt.published.get(line.cid) as { at: number } | undefined
          if (published !== undefined) {
            const from = Math.max(invoice.fromDay, utcDay(Number(published.at), opts.dayMs))
            if (line.days > invoice.toDay - from)
              refuse(`${line.cid} is billed ${line.days} days, but was published on day ${from}`)
          }
        }
      }
      prune()
      transaction(() => {
        const at = now()
        stmt.insertCharge.run(
          invoice.holder,
          id,
          invoice.kind,
          invoice.amount,
          null,
          invoice.covenantVersion,
          at,
          at + opts.historyMs,
        )
        addOwed(invoice.holder, invoice.amount)
        stmt.invoiceSeq.run(invoice.seq, now(), invoice.holder)
        if (invoice.kind === 'store')
          for (const line of invoice.lines) stmt.setBilledTo.run(invoice.holder, line.cid, invoice.toDay)
      })
      return { id, status: 'charged', amount: invoice.amount }
    },

    applyDeposit(value) {
      store.assertOpen()
      const deposit = verifyDeposit(value, { payer })
      return transaction(() => {
        const inserted = stmt.insertDeposit.run(deposit.payee, deposit.id, deposit.amount)
        if (Number(inserted.changes) === 0) return { applied: false }
        stmt.create.run(deposit.payee, now())
        addAmounts(row(deposit.payee)!.granted, deposit.amount)
        stmt.addGranted.run(deposit.amount, now(), deposit.payee)
        return { applied: true }
      })
    },

    settle(payee) {
      store.assertOpen()
      const rows = (stmt.owing.all() as unknown as AccountRow[]).filter(
        (r) => payee === undefined || r.payee === payee,
      )
      return transaction(() => rows.map((r) => writeCheque(r.payee, r.owed - r.granted)))
    },

    prepay(payeeId, amount) {
      store.assertOpen()
      const payee = checkPayee(payeeId)
      if (!AmountSchema.safeParse(amount).success || amount < 1)
        throw new CovenantError('INVALID_INPUT', `a prepayment is a whole number of ncr ≥ 1, not ${amount}`)
      return transaction(() => writeCheque(payee, addAmounts(row(payee)?.paid ?? 0, amount)))
    },

    publish(cid, bytes) {
      store.assertOpen()
      if (!Number.isSafeInteger(bytes) || bytes < 1)
        throw new CovenantError('INVALID_INPUT', `a block has a whole number of bytes ≥ 1, not ${bytes}`)
      stmt.publish.run(parseCid(cid).toString(), bytes, now())
    },

    undelivered(payeeId, limit = 16) {
      store.assertOpen()
      return stmt.undelivered.all(payeeId, Math.min(Math.max(1, limit), 256)).map((r) => {
        // A certificate goes to each of its executors, each time decoded from the same row: a
        // row's body never changes (written once by its ref), so it is decoded once.
        const ref = String(r.ref)
        let certificate = outgoing.get(ref)
        if (certificate === undefined) {
          certificate = decodeCertificate(r.body as Uint8Array)
          if (outgoing.size >= OUTGOING_KEPT) outgoing.delete(outgoing.keys().next().value as string)
          outgoing.set(ref, certificate)
        }
        return certificate
      })
    },

    delivered(payeeId, ids) {
      store.assertOpen()
      transaction(() => {
        for (const id of ids) stmt.delivered.run(payeeId, id)
      })
    },

    certificate(id) {
      store.assertOpen()
      const r = stmt.certificate.get(id) as { body: Uint8Array } | undefined
      return r === undefined ? undefined : decodeCertificate(r.body)
    },

    due() {
      store.assertOpen()
      return stmt.due.all().map((r) => String(r.payee))
    },

    pending() {
      store.assertOpen()
      return (stmt.unconfirmed.all() as unknown as AccountRow[]).map(storedCheque)
    },

    acknowledge(value) {
      store.assertOpen()
      const best = verifyCheque(value, { payer })
      return transaction(() => {
        stmt.create.run(best.payee, now())
        const r = row(best.payee)!
        // The payee holds our signature for this much: if our own file lost it (a restored
        // backup), we adopt it rather than sign a smaller cheque the payee would ignore.
        if (best.cumulative > r.paid)
          stmt.paid.run(best.cumulative, Math.max(best.seq, r.seq), dagCbor.encode(best), now(), best.payee)
        if (best.cumulative > r.acked) stmt.acked.run(best.cumulative, now(), best.payee)
        return view(best.payee, row(best.payee))
      })
    },

    account(payee) {
      store.assertOpen()
      return view(payee, row(payee))
    },

    accounts() {
      store.assertOpen()
      return (stmt.all.all() as unknown as AccountRow[]).map((r) => view(r.payee, r))
    },

    history(o = {}) {
      store.assertOpen()
      const limit = Math.min(Math.max(1, o.limit ?? 100), 1000)
      const before = o.before ?? Number.MAX_SAFE_INTEGER
      const rows =
        o.payee === undefined ? stmt.history.all(before, limit) : stmt.historyOf.all(o.payee, before, limit)
      return rows.map((r) => ({ payee: String(r.payee), ...chargeRecord(r) }))
    },

    statement(payee) {
      store.assertOpen()
      const a = view(payee, row(payee))
      return { payer, payee, charged: a.owed, paid: a.paid, granted: a.granted }
    },

    statements() {
      store.assertOpen()
      return (stmt.all.all() as unknown as AccountRow[]).map((r) => ({
        payer,
        payee: r.payee,
        charged: r.owed,
        paid: r.paid,
        granted: r.granted,
      }))
    },

    close() {
      store.close()
    },
  }
}
