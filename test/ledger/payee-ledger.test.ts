import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import { type SignedCovenant, signCovenant } from '../../src/covenant/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { outputHash, signReceipt } from '../../src/exec/index.ts'
import {
  chargeFor,
  DAY_MS,
  openPayeeLedger,
  openPayerLedger,
  type PayeeLedger,
  type PayeeLedgerOptions,
  priceSheet,
  reconcile,
  signCheque,
  utcDay,
  verifyInvoice,
} from '../../src/ledger/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import {
  BUILD,
  Clock,
  certifiedRun,
  makeParty,
  type Network,
  networkOf,
  OTHER_OUTPUT,
  type Party,
  pricedCovenant,
  T0,
  tempDir,
} from '../fixtures/ledger.ts'

const PRICES = { basePrice: 10_000, pricePerFuel: 1000, credit: 5_000_000 }
/** The most a request with the fixture's fuel limit of 2000 can cost at PRICES. */
const MAX_CHARGE = chargeFor(PRICES, 2000)

describe('payee ledger', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let node: Party
  let caller: Party
  let other: Party
  /** executors besides `node`, for certificates of several */
  let peer: Party
  let third: Party
  let fourth: Party
  let network: Network
  let clock: Clock
  let covenant: SignedCovenant
  let ledger: PayeeLedger
  let files = 0
  let path: string

  const open = (opts: Partial<PayeeLedgerOptions> = {}) =>
    openPayeeLedger({
      path,
      key: node.key,
      covenant: () => covenant,
      now: clock.now,
      ...network.verifiers,
      ...opts,
    })
  const admitCall = (run: ReturnType<typeof certifiedRun>, l = ledger) =>
    l.admit({ id: run.id, ...run.certificate.request })
  const cheque = (cumulative: number, seq: number, from = caller) =>
    signCheque(from.key, { payee: node.peer, cumulative, seq, issuedAt: clock.t })

  before(async () => {
    dir = await tempDir()
    ;[node, caller, other, peer, third, fourth] = await Promise.all([
      makeParty(pricedCovenant(PRICES)),
      makeParty(),
      makeParty(),
      makeParty(pricedCovenant(PRICES)),
      makeParty(),
      makeParty(),
    ])
    network = networkOf([node, caller, other, peer, third, fourth])
  })
  after(() => dir.remove())
  beforeEach(() => {
    clock = new Clock()
    covenant = node.covenant
    path = dir.file(`payee-${files++}.db`)
    ledger = open()
  })

  it('admits a caller within its credit, and refuses it past it with what to pay', () => {
    // the credit covers two calls at their most; the third is refused before it runs
    const runs = [0, 1, 2].map((i) =>
      certifiedRun(network, caller.key, [node], { nonce: `nonce-${i}-xxxx`, fuel: 500 }),
    )
    const a = admitCall(runs[0])
    assert.equal(a.maxCharge, MAX_CHARGE)
    admitCall(runs[1])
    assert.equal(ledger.account(caller.peer).exposure, 2 * MAX_CHARGE)
    assert.throws(
      () => admitCall(runs[2]),
      (err: CovenantError) => {
        assert.equal(err.code, 'PAYMENT_REQUIRED')
        assert.equal(err.status, 402)
        const d = err.details as Record<string, number>
        assert.equal(d.limit, PRICES.credit)
        assert.equal(d.exposure, 2 * MAX_CHARGE)
        assert.equal(d.maxCharge, MAX_CHARGE)
        assert.equal(d.payUpTo, 3 * MAX_CHARGE - PRICES.credit)
        assert.match(err.message, /Send it a cheque for 0\.00103 cr in all/)
        return true
      },
    )
    // paying what it said lets the call in
    assert.equal(ledger.applyCheque(cheque(3 * MAX_CHARGE - PRICES.credit, 1)).applied, true)
    admitCall(runs[2])
    // admitting the same request twice counts it once
    admitCall(runs[2])
    assert.equal(ledger.account(caller.peer).exposure, 3 * MAX_CHARGE)
  })

  it('narrows a call’s exposure to its exact charge once signed, and frees it when certified or released', () => {
    const run = certifiedRun(network, caller.key, [node], { fuel: 321 })
    const admission = admitCall(run)
    assert.equal(admission.signed(run.receipts[0]), chargeFor(PRICES, 321))
    assert.equal(ledger.account(caller.peer).exposure, chargeFor(PRICES, 321))
    assert.deepEqual(ledger.recordCertified(run.certificate), {
      request: run.id,
      payer: caller.peer,
      status: 'charged',
      amount: chargeFor(PRICES, 321),
    })
    const account = ledger.account(caller.peer)
    assert.equal(account.exposure, 0)
    assert.equal(account.charged, 10_000 + 321 * 1000)
    assert.equal(account.outstanding, account.charged)
    assert.equal(account.available, PRICES.credit - account.charged)
    // a call that ended without a receipt owes nothing
    const failed = certifiedRun(network, caller.key, [node], { nonce: 'never-ran-xx' })
    admitCall(failed).release()
    assert.equal(ledger.account(caller.peer).exposure, 0)
    assert.equal(
      errorCode(() => admitCall(run).signed(failed.receipts[0])),
      'INVALID_INPUT',
    )
  })

  it('writes off a receipt never certified once its exposure window passes (a failed quorum is not charged)', () => {
    const run = certifiedRun(network, caller.key, [node])
    admitCall(run).signed(run.receipts[0])
    clock.t = run.certificate.request.deadline + 10 * 60_000 + 1001
    const next = certifiedRun(network, caller.key, [node], { nonce: 'after-expiry', now: clock.t })
    admitCall(next)
    assert.equal(ledger.account(caller.peer).exposure, MAX_CHARGE, 'only the new call is in flight')
    assert.equal(ledger.account(caller.peer).charged, 0)
  })

  it('charges a certificate once, only for this node’s receipt, and not when accused, late or its own', async () => {
    const run = certifiedRun(network, caller.key, [node, peer], { fuel: [7, 7] })
    assert.equal(ledger.recordCertified(run.certificate).status, 'charged')
    for (let i = 0; i < 3; i++) assert.equal(ledger.recordCertified(run.certificate).status, 'duplicate')
    assert.equal(ledger.account(caller.peer).charged, chargeFor(PRICES, 7))
    assert.equal(ledger.history(caller.peer).length, 1)

    // outvoted: its receipt is conflict evidence, not in the certificate
    const outvoted = certifiedRun(network, caller.key, [peer, fourth, node], { liars: [2] })
    assert.equal(ledger.recordCertified(outvoted.certificate).status, 'not-in-certificate')
    // accused by evidence it signed itself: a second receipt for the same request, another output
    const equivocation = certifiedRun(network, caller.key, [node, peer, third], { nonce: 'equivocate' })
    const lie = signReceipt(node.key, {
      request: equivocation.id,
      outputHash: outputHash(OTHER_OUTPUT),
      fuel: 100,
      covenantVersion: 1,
      build: BUILD,
    })
    const evidence = { receipt: lie, certificate: equivocation.certificate }
    assert.equal(
      errorCode(() =>
        ledger.recordCertified(equivocation.certificate, {
          conflicts: [{ ...evidence, receipt: equivocation.receipts[0] }],
        }),
      ),
      'INVALID_CONFLICT',
      'evidence is checked: an agreeing receipt accuses no one',
    )
    assert.equal(
      ledger.recordCertified(equivocation.certificate, { conflicts: [evidence] }).status,
      'accused',
    )
    // evidence about another request changes nothing for this one
    const unrelated = certifiedRun(network, caller.key, [node, peer, third], { nonce: 'unrelated' })
    assert.equal(ledger.recordCertified(unrelated.certificate, { conflicts: [evidence] }).status, 'charged')

    // too late: past the request's deadline + the certificate window
    const late = certifiedRun(network, caller.key, [node], { nonce: 'late-late' })
    clock.t = late.certificate.request.deadline + 24 * 3_600_000 + 1
    assert.equal(ledger.recordCertified(late.certificate).status, 'stale')
    // a node calling itself owes itself nothing
    assert.equal(
      ledger.recordCertified(certifiedRun(network, node.key, [node, peer]).certificate).status,
      'self',
    )
    assert.equal(
      ledger.account(caller.peer).charged,
      chargeFor(PRICES, 7) + chargeFor(PRICES, 100),
      'nothing else was charged',
    )

    // receipts of keys outside this node's view prove nothing, however well signed
    const stranger = await makeParty()
    const elsewhere = certifiedRun(networkOf([node, stranger]), caller.key, [node, stranger], {
      nonce: 'outside-the-view',
    })
    assert.equal(
      errorCode(() => ledger.recordCertified(elsewhere.certificate)),
      'INVALID_CERTIFICATE',
    )
    // a forged certificate is refused as such
    const forged = { ...run.certificate, receipts: [{ ...run.certificate.receipts[0], fuel: 1 }] }
    assert.equal(
      errorCode(() =>
        ledger.recordCertified({ ...forged, id: certifiedRun(network, caller.key, [node]).id }),
      ),
      'INVALID_CERTIFICATE',
    )
  })

  it('charges each receipt at the covenant version it names, across a price change', () => {
    const old = certifiedRun(network, caller.key, [node], { fuel: 100, nonce: 'before-change' })
    admitCall(old).signed(old.receipts[0])
    covenant = signCovenant(node.key, pricedCovenant({ ...PRICES, pricePerFuel: 3000 }), 2, T0 + 1)
    const fresh = certifiedRun(network, caller.key, [{ key: node.key, covenant }], {
      fuel: 100,
      nonce: 'after-change',
    })
    ledger.recordCertified(fresh.certificate)
    clock.advance(1)
    ledger.recordCertified(old.certificate)
    assert.deepEqual(
      ledger.history(caller.peer).map((c) => [c.ref, c.amount, c.covenantVersion, c.fuel]),
      [
        [old.id, 10_000 + 100 * 1000, 1, 100],
        [fresh.id, 10_000 + 100 * 3000, 2, 100],
      ],
    )
  })

  it('counts the best cheque only: duplicates, replays, reorders and forgeries change nothing', () => {
    const c1 = cheque(1000, 1)
    const c2 = cheque(3000, 2)
    const c3 = cheque(6000, 3)
    assert.equal(ledger.applyCheque(c2).applied, true)
    assert.equal(ledger.applyCheque(c1).applied, false, 'late, lower: ignored')
    assert.equal(ledger.applyCheque(c2).applied, false, 'duplicate: ignored')
    const outcome = ledger.applyCheque(c3)
    assert.equal(outcome.applied, true)
    assert.equal(outcome.best.seq, 3)
    for (const c of [c1, c2, c3, c1]) assert.equal(ledger.applyCheque(c).applied, false)
    assert.equal(ledger.account(caller.peer).received, 6000)
    assert.deepEqual(ledger.applyCheque(c1).best, c3, 'the reply shows the best cheque held')

    const forgeries: Array<[string, unknown]> = [
      ['raised', { ...c3, cumulative: 1e9 }],
      ['signed by another key', { ...cheque(1e9, 4, other), payer: caller.peer }],
      [
        'made out to another node',
        signCheque(caller.key, { payee: other.peer, cumulative: 1e9, seq: 4, issuedAt: 0 }),
      ],
      ['garbage', { hello: 'world' }],
    ]
    for (const [what, value] of forgeries)
      assert.equal(
        errorCode(() => ledger.applyCheque(value)),
        'INVALID_CHEQUE',
        what,
      )
    assert.equal(ledger.account(caller.peer).received, 6000)
    assert.equal(ledger.account(other.peer).received, 0)
  })

  it('takes a cheque beyond what is owed as payment ahead, which admits more calls', () => {
    ledger.applyCheque(cheque(10 * MAX_CHARGE, 1))
    const account = ledger.account(caller.peer)
    assert.equal(account.outstanding, -10 * MAX_CHARGE)
    assert.equal(account.available, PRICES.credit + 10 * MAX_CHARGE)
    for (let i = 0; i < 12; i++)
      admitCall(certifiedRun(network, caller.key, [node], { nonce: `ahead-${i}-xxxx` }))
  })

  it('keeps accounts, charges, cheques and prices across a restart; calls in flight are written off', () => {
    const run = certifiedRun(network, caller.key, [node], { fuel: 55 })
    ledger.recordCertified(run.certificate)
    ledger.applyCheque(cheque(4000, 1))
    const inflight = certifiedRun(network, caller.key, [node], { nonce: 'in-flight-x' })
    admitCall(inflight)
    const before = ledger.account(caller.peer)
    ledger.close()
    assert.equal(
      errorCode(() => ledger.account(caller.peer)),
      'NOT_STARTED',
    )
    ledger = open()
    assert.deepEqual(ledger.account(caller.peer), {
      ...before,
      exposure: 0,
      available: before.available + MAX_CHARGE,
    })
    assert.equal(ledger.recordCertified(run.certificate).status, 'duplicate')
    assert.equal(ledger.applyCheque(cheque(4000, 1)).applied, false)
    // the price of version 1 was kept, so a certificate of it still charges after version 2 is live
    covenant = signCovenant(node.key, pricedCovenant({ ...PRICES, basePrice: 1 }), 2, T0 + 5)
    assert.equal(ledger.recordCertified(inflight.certificate).amount, chargeFor(PRICES, 100))
  })

  it('forgets charges only after the window in which their certificate could come again', () => {
    const run = certifiedRun(network, caller.key, [node])
    ledger.recordCertified(run.certificate)
    clock.t = T0 + 31 * DAY_MS
    ledger.recordCertified(
      certifiedRun(network, caller.key, [node], { now: clock.t, nonce: 'prune-now' }).certificate,
    )
    assert.deepEqual(
      ledger.history(caller.peer).map((c) => c.ref),
      [ledger.history(caller.peer)[0].ref],
      'the month-old charge is gone from the history',
    )
    assert.equal(
      ledger.recordCertified(run.certificate).status,
      'stale',
      'and its certificate cannot charge again',
    )
    assert.equal(ledger.account(caller.peer).charged, 2 * chargeFor(PRICES, 100), 'the totals keep it')
  })

  it('lets the operator set a payer’s credit, and refuses a ledger full of strangers', () => {
    ledger.setLimit(caller.peer, 0)
    assert.equal(
      errorCode(() => admitCall(certifiedRun(network, caller.key, [node]))),
      'PAYMENT_REQUIRED',
    )
    ledger.setLimit(caller.peer, undefined)
    admitCall(certifiedRun(network, caller.key, [node]))
    assert.equal(
      errorCode(() => ledger.setLimit(caller.peer, -1)),
      'INVALID_INPUT',
    )
    ledger.close()
    ledger = open({ maxAccounts: 1 })
    assert.equal(
      errorCode(() =>
        ledger.applyCheque(signCheque(other.key, { payee: node.peer, cumulative: 1, seq: 1, issuedAt: 0 })),
      ),
      'PEER_BUSY',
    )
    assert.equal(
      errorCode(() => admitCall(certifiedRun(network, other.key, [node]))),
      'PEER_BUSY',
    )
    ledger.applyCheque(cheque(1, 1))
  })

  it('mints faucet deposits on a devnet node only, up to its limit, once per id', () => {
    assert.equal(
      errorCode(() => ledger.deposit(caller.peer, 1000)),
      'FAUCET_REFUSED',
    )
    ledger.close()
    ledger = open({ devnet: true, faucetLimit: 5000 })
    const d = ledger.deposit(caller.peer, 3000, 'first-grant')
    assert.deepEqual(ledger.deposit(caller.peer, 3000, 'first-grant'), d, 'the same id is the same deposit')
    assert.equal(
      errorCode(() => ledger.deposit(caller.peer, 3000)),
      'FAUCET_REFUSED',
    )
    assert.equal(
      errorCode(() => ledger.deposit(caller.peer, 1, 'first-grant')),
      'INVALID_INPUT',
    )
    assert.equal(ledger.account(caller.peer).granted, 3000)
    assert.equal(ledger.account(caller.peer).outstanding, -3000)
    const payer = openPayerLedger({
      path: dir.file(`payer-${files++}.db`),
      key: caller.key,
      now: clock.now,
      ...network.verifiers,
    })
    assert.deepEqual(payer.applyDeposit(d), { applied: true })
    assert.deepEqual(payer.applyDeposit(d), { applied: false })
    assert.equal(payer.account(node.peer).granted, 3000)
    assert.equal(
      errorCode(() => payer.applyDeposit(ledger.deposit(other.peer, 1))),
      'INVALID_DEPOSIT',
    )
    payer.close()
  })

  it('charges a job once per job, only ever growing, and both sides reconcile', () => {
    const payer = openPayerLedger({
      path: dir.file(`payer-${files++}.db`),
      key: caller.key,
      now: clock.now,
      ...network.verifiers,
    })
    const ref = 'job:bafyreibtmy5nghh46uv4kumxy5izkgriwbejlazudn4egt7beazkz4ojpm'
    // a keeper charges what the job's state says it charged so far; a state read again (or an
    // older one) changes nothing
    assert.equal(ledger.chargeJob(caller.peer, ref, 30_000), 30_000)
    assert.equal(ledger.chargeJob(caller.peer, ref, 30_000), 0)
    assert.equal(ledger.chargeJob(caller.peer, ref, 20_000), 0)
    assert.equal(ledger.chargeJob(caller.peer, ref, 55_000), 25_000)
    assert.equal(ledger.account(caller.peer).charged, 55_000)
    assert.deepEqual(
      ledger.history(caller.peer).map((h) => [h.ref, h.kind, h.amount]),
      [[ref, 'job', 55_000]],
    )
    // the same charge cannot be another payer's, nor an amount that is none
    assert.equal(
      errorCode(() => ledger.chargeJob(other.peer, ref, 60_000)),
      'INVALID_INPUT',
    )
    assert.equal(
      errorCode(() => ledger.chargeJob(caller.peer, ref, -1)),
      'INVALID_INPUT',
    )
    // the enqueuer records the same totals, in any order and as often as it reads the job
    assert.equal(payer.recordJobCharge(node.peer, ref, 30_000), 30_000)
    assert.equal(payer.recordJobCharge(node.peer, ref, 55_000), 25_000)
    assert.equal(payer.recordJobCharge(node.peer, ref, 30_000), 0)
    for (const c of payer.settle()) payer.acknowledge(ledger.applyCheque(c).best)
    assert.equal(reconcile(payer.statements(), [ledger.statement(caller.peer)]).ok, true)
    assert.equal(ledger.account(caller.peer).outstanding, 0)
    payer.close()
  })
})

describe('payee ledger: storage', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let holder: Party
  let publisher: Party
  let network: Network
  const cid = (s: string) => cidForBytes(new TextEncoder().encode(s)).toString()
  const openHolder = (file: string, clock: Clock, party = holder, opts: Partial<PayeeLedgerOptions> = {}) =>
    openPayeeLedger({
      path: dir.file(file),
      key: party.key,
      covenant: () => party.covenant,
      now: clock.now,
      ...network.verifiers,
      ...opts,
    })
  const other = (p: Party) => network.parties.find((q) => q !== p)!.peer

  before(async () => {
    dir = await tempDir()
    holder = await makeParty(
      pricedCovenant({ pricePerBytePerDay: 2, pricePerByte: 3, credit: 10_000, noticeDays: 2 }),
    )
    publisher = await makeParty()
    network = networkOf([holder, publisher])
  })
  after(() => dir.remove())

  it('bills whole days held at the price per byte per day, a day once, and unpinned blocks up to their last day', () => {
    const clock = new Clock(T0 + 3_600_000)
    const ledger = openHolder('store.db', clock)
    ledger.pin(publisher.peer, cid('a'), 1000)
    ledger.pin(publisher.peer, cid('a'), 1000)
    assert.deepEqual(ledger.billStorage(), [], 'the first day is billed once it is over')
    clock.advance(DAY_MS)
    ledger.pin(publisher.peer, cid('b'), 100)
    clock.advance(2 * DAY_MS)
    const [invoice] = ledger.billStorage(publisher.peer)
    verifyInvoice(invoice, { payer: publisher.peer })
    const day0 = utcDay(T0)
    assert.equal(invoice.kind, 'store')
    if (invoice.kind !== 'store') return
    assert.deepEqual([invoice.fromDay, invoice.toDay], [day0, day0 + 3])
    assert.deepEqual(
      invoice.lines.map((l) => [l.cid, l.days]),
      [
        [cid('a'), 3],
        [cid('b'), 2],
      ].sort(),
    )
    assert.equal(invoice.amount, 2 * (1000 * 3 + 100 * 2))
    assert.deepEqual(ledger.billStorage(), [], 'a day is billed once')
    ledger.unpin(publisher.peer, cid('a'))
    clock.advance(2 * DAY_MS)
    const [second] = ledger.billStorage()
    assert.deepEqual(
      second.lines.map((l) => [l.cid, 'days' in l ? l.days : 0]),
      [
        [cid('a'), 1],
        [cid('b'), 2],
      ].sort(),
    )
    assert.equal(ledger.account(publisher.peer).charged, invoice.amount + second.amount)
    assert.deepEqual(
      ledger.history(publisher.peer).map((c) => c.kind),
      ['store', 'store'],
    )
    ledger.close()
  })

  it('lists a publisher past its credit, and its blocks as droppable once the notice period is over', () => {
    const clock = new Clock()
    const ledger = openHolder('notice.db', clock)
    ledger.pin(publisher.peer, cid('big'), 1000)
    clock.advance(3 * DAY_MS)
    ledger.billStorage()
    assert.equal(ledger.account(publisher.peer).outstanding, 6000)
    assert.deepEqual(ledger.overdue(), [], 'within its credit of 10 000 ncr')
    clock.advance(3 * DAY_MS)
    ledger.billStorage()
    const [late] = ledger.overdue()
    assert.equal(late.payer, publisher.peer)
    assert.equal(late.outstanding, 12_000)
    assert.equal(late.since, clock.t, 'past its credit since this bill')
    assert.deepEqual([late.droppable, late.blocks], [false, [cid('big')]])
    clock.advance(2 * DAY_MS)
    assert.equal(ledger.overdue()[0].droppable, true, 'the notice period is over')
    ledger.applyCheque(
      signCheque(publisher.key, { payee: holder.peer, cumulative: 10_000, seq: 1, issuedAt: clock.t }),
    )
    assert.deepEqual(ledger.overdue(), [], 'paid: within its credit again')
    ledger.close()
  })

  it('refuses a charge that would make a balance inexact, and keeps the account as it was', async () => {
    const cheapest = await makeParty(pricedCovenant({ pricePerBytePerDay: 1 }))
    const clock = new Clock()
    const ledger = openHolder('huge.db', clock, cheapest)
    ledger.pin(publisher.peer, cid('huge'), 3e15)
    for (let day = 1; day <= 3; day++) {
      clock.advance(DAY_MS)
      assert.equal(ledger.billStorage().length, 1)
    }
    assert.equal(ledger.account(publisher.peer).charged, 9e15)
    clock.advance(DAY_MS)
    assert.equal(
      errorCode(() => ledger.billStorage()),
      'AMOUNT_TOO_LARGE',
    )
    assert.equal(ledger.account(publisher.peer).charged, 9e15)
    assert.equal(ledger.history(publisher.peer).length, 3, 'the refused invoice left no trace')
    ledger.close()
  })

  it('keeps the invoices it issues for their payer to fetch, after the last one it dealt with', () => {
    const clock = new Clock()
    const ledger = openHolder('kept.db', clock)
    ledger.pin(publisher.peer, cid('a'), 10)
    ledger.pin(publisher.peer, cid('b'), 20)
    ledger.unpin(publisher.peer, cid('b'))
    assert.deepEqual(ledger.pinned(), [{ payer: publisher.peer, cid: cid('a'), bytes: 10 }])
    clock.advance(2 * DAY_MS)
    const stored = ledger.billStorage()
    const served = ledger.billServed(publisher.peer, [{ cid: cid('a'), bytes: 5 }])!
    assert.deepEqual(ledger.invoices(publisher.peer), [...stored, served])
    assert.deepEqual(ledger.invoices(publisher.peer, { after: stored.at(-1)!.seq }), [served])
    assert.deepEqual(ledger.invoices(other(publisher)), [], 'another payer has none')
    ledger.close()
    const again = openHolder('kept.db', clock)
    assert.deepEqual(again.invoices(publisher.peer), [...stored, served], 'kept across a restart')
    again.close()
  })

  it('counts storage days shorter than 24 h only on a devnet, notice period included', () => {
    const clock = new Clock()
    assert.equal(
      errorCode(() => openHolder('short.db', clock, holder, { dayMs: 2000 })),
      'INVALID_INPUT',
    )
    const ledger = openHolder('short.db', clock, holder, { dayMs: 2000, devnet: true })
    ledger.pin(publisher.peer, cid('big'), 1000)
    clock.advance(6 * 2000)
    const [invoice] = ledger.billStorage()
    assert.equal(invoice.amount, 2 * 1000 * 6, 'six short days')
    const [late] = ledger.overdue()
    assert.equal(late.dropAt, late.since + 2 * 2000, 'notice: two short days')
    ledger.close()
  })

  it('bills blocks served at the price per byte, and nothing when serving is free', async () => {
    const clock = new Clock()
    const ledger = openHolder('serve.db', clock)
    const invoice = ledger.billServed(publisher.peer, [{ cid: cid('a'), bytes: 500 }])!
    assert.equal(invoice.amount, 1500)
    assert.equal(ledger.account(publisher.peer).charged, 1500)
    const free = await makeParty(pricedCovenant({}))
    const freeLedger = openHolder('free.db', clock, free)
    assert.equal(freeLedger.billServed(publisher.peer, [{ cid: cid('a'), bytes: 500 }]), undefined)
    freeLedger.close()
    assert.equal(priceSheet(holder.covenant).pricePerByte, 3)
    ledger.close()
  })
})
