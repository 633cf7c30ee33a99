import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import { signCovenant } from '../../src/covenant/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { type Certificate, certificateToJSON, outputHash, signReceipt } from '../../src/exec/index.ts'
import {
  chargeFor,
  DAY_MS,
  openPayeeLedger,
  openPayerLedger,
  type PayerLedger,
  quote,
  reconcile,
  signCheque,
  signInvoice,
  utcDay,
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

describe('payer ledger', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let caller: Party
  let cheap: Party
  let dear: Party
  let third: Party
  let someoneElse: Party
  let network: Network
  let clock: Clock
  let path: string
  let files = 0
  let ledger: PayerLedger
  const open = () => openPayerLedger({ path, key: caller.key, now: clock.now, ...network.verifiers })

  before(async () => {
    dir = await tempDir()
    ;[caller, cheap, dear, third, someoneElse] = await Promise.all([
      makeParty(),
      makeParty(pricedCovenant({ basePrice: 1000, pricePerFuel: 10 })),
      makeParty(pricedCovenant({ basePrice: 50_000, pricePerFuel: 2000 })),
      makeParty(),
      makeParty(),
    ])
    network = networkOf([caller, cheap, dear, third, someoneElse])
  })
  after(() => dir.remove())
  beforeEach(() => {
    clock = new Clock()
    path = dir.file(`payer-${files++}.db`)
    ledger = open()
  })

  it('owes each executor in a certificate its price × the fuel it signed for, exactly as quoted', () => {
    const run = certifiedRun(network, caller.key, [cheap, dear], { fuel: [777, 777] })
    const charges = ledger.recordCertified(run.certificate, { covenants: [cheap.covenant, dear.covenant] })
    const quoted = quote({ fuel: 777, q: 2, executors: [cheap, dear] })
    assert.deepEqual(
      charges,
      quoted.executors.map((e) => ({ payee: e.peer, status: 'charged', amount: e.charge })),
    )
    assert.equal(ledger.account(cheap.peer).owed, 1000 + 7770)
    assert.equal(ledger.account(dear.peer).owed, 50_000 + 777 * 2000)
    assert.equal(
      charges.reduce((sum, c) => sum + c.amount, 0),
      quoted.max,
    )
    // recorded once, however often it is shown
    assert.deepEqual(
      ledger.recordCertified(run.certificate).map((c) => c.status),
      ['duplicate', 'duplicate'],
    )
    assert.deepEqual(
      ledger.history({ payee: dear.peer }).map((c) => [c.ref, c.kind, c.fuel, c.amount]),
      [[run.id, 'exec', 777, 50_000 + 777 * 2000]],
    )
  })

  it('refuses to guess a price it does not know, and records nothing until it does', () => {
    const run = certifiedRun(network, caller.key, [cheap, dear])
    assert.throws(
      () => ledger.recordCertified(run.certificate, { covenants: [cheap.covenant] }),
      (err: CovenantError) => {
        assert.equal(err.code, 'PRICE_UNKNOWN')
        assert.deepEqual(err.details, { missing: [{ peer: dear.peer, version: 1 }] })
        return true
      },
    )
    assert.equal(ledger.account(cheap.peer).owed, 0, 'all or nothing')
    ledger.learnCovenant(dear.covenant)
    assert.equal(ledger.recordCertified(run.certificate).length, 2)
    // a covenant that does not verify teaches nothing
    const v2 = signCovenant(dear.key, pricedCovenant({ basePrice: 1 }), 2)
    const forged = { ...v2, config: { ...v2.config, execute: { ...v2.config.execute, basePrice: 0 } } }
    assert.equal(
      errorCode(() => ledger.learnCovenant(forged)),
      'INVALID_SIGNATURE',
    )
  })

  it('owes nothing for another caller’s certificate, nor to an executor accused for that request', () => {
    ledger.learnCovenant(cheap.covenant)
    ledger.learnCovenant(dear.covenant)
    assert.equal(
      errorCode(() => ledger.recordCertified(certifiedRun(network, someoneElse.key, [cheap]).certificate)),
      'INVALID_INPUT',
    )
    // dear signed the agreeing output, in the certificate, and another one for the same request
    ledger.learnCovenant(third.covenant)
    const run = certifiedRun(network, caller.key, [cheap, dear, third])
    const lie = signReceipt(dear.key, {
      request: run.id,
      outputHash: outputHash(OTHER_OUTPUT),
      fuel: 100,
      covenantVersion: 1,
      build: BUILD,
    })
    const evidence = { receipt: lie, certificate: run.certificate }
    // evidence is checked: without a certificate that verifies, a receipt accuses no one
    const unproven = { ...run.certificate, receipts: [run.receipts[0], run.receipts[2]] }
    assert.equal(
      errorCode(() =>
        ledger.recordCertified(run.certificate, { conflicts: [{ ...evidence, certificate: unproven }] }),
      ),
      'INVALID_CONFLICT',
    )
    assert.deepEqual(
      ledger.recordCertified(run.certificate, { conflicts: [evidence] }).map((c) => [c.payee, c.status]),
      [
        [cheap.peer, 'charged'],
        [dear.peer, 'accused'],
        [third.peer, 'charged'],
      ],
    )
    assert.equal(ledger.account(dear.peer).owed, 0)
  })

  it('owes itself nothing for its own receipt (a keeper that ran its own job attempt), and says what it cost', () => {
    const keeper = openPayerLedger({
      path: dir.file(`payer-${files++}.db`),
      key: cheap.key,
      now: clock.now,
      ...network.verifiers,
    })
    const run = certifiedRun(network, cheap.key, [cheap, dear], { fuel: [5, 5] })
    assert.deepEqual(
      keeper.recordCertified(run.certificate, { covenants: [cheap.covenant, dear.covenant] }),
      [
        { payee: cheap.peer, status: 'self', amount: 1000 + 5 * 10 },
        { payee: dear.peer, status: 'charged', amount: 50_000 + 5 * 2000 },
      ],
    )
    assert.deepEqual(
      keeper.statements().map((s) => [s.payee, s.charged]),
      [[dear.peer, 60_000]],
    )
    assert.deepEqual(keeper.due(), [dear.peer])
    keeper.close()
  })

  it('settles with cumulative cheques, written before they are sent, resent until confirmed', () => {
    ledger.learnCovenant(cheap.covenant)
    ledger.recordCertified(certifiedRun(network, caller.key, [cheap], { fuel: 5 }).certificate)
    const [first] = ledger.settle()
    assert.deepEqual([first.payee, first.cumulative, first.seq], [cheap.peer, 1050, 1])
    assert.deepEqual(ledger.settle(), [], 'nothing more is owed')
    ledger.recordCertified(
      certifiedRun(network, caller.key, [cheap], { fuel: 10, nonce: 'second-call' }).certificate,
    )
    const [second] = ledger.settle(cheap.peer)
    assert.deepEqual([second.cumulative, second.seq], [1050 + 1100, 2])
    assert.deepEqual(ledger.pending(), [second], 'the newest unconfirmed cheque is the one to resend')
    // a crash between writing and confirming: the same cheque is still pending after a restart
    ledger.close()
    ledger = open()
    assert.deepEqual(ledger.pending(), [second])
    const payee = openPayeeLedger({
      path: dir.file(`payee-${files++}.db`),
      key: cheap.key,
      covenant: () => cheap.covenant,
      now: clock.now,
      ...network.verifiers,
    })
    const outcome = payee.applyCheque(ledger.pending()[0])
    assert.equal(ledger.acknowledge(outcome.best).unconfirmed, false)
    assert.deepEqual(ledger.pending(), [])
    // a cheque the payer never signed is no confirmation
    assert.equal(
      errorCode(() =>
        ledger.acknowledge(signCheque(dear.key, { payee: cheap.peer, cumulative: 9e9, seq: 9, issuedAt: 0 })),
      ),
      'INVALID_CHEQUE',
    )
    payee.close()
  })

  it('pays ahead on demand, and adopts a higher cheque of its own that a restored file had lost', () => {
    const c = ledger.prepay(dear.peer, 5000)
    assert.deepEqual([c.cumulative, c.seq], [5000, 1])
    assert.equal(ledger.account(dear.peer).outstanding, -5000)
    assert.equal(
      errorCode(() => ledger.prepay(dear.peer, 0)),
      'INVALID_INPUT',
    )
    assert.equal(
      errorCode(() => ledger.prepay(caller.peer, 1)),
      'INVALID_INPUT',
    )
    const lost = signCheque(caller.key, { payee: dear.peer, cumulative: 8000, seq: 4, issuedAt: 0 })
    const account = ledger.acknowledge(lost)
    assert.deepEqual([account.paid, account.acked, account.seq], [8000, 8000, 4])
    assert.equal(ledger.prepay(dear.peer, 1).seq, 5, 'never reuses a number the payee has seen')
  })

  it('accepts a holder’s invoice for blocks it asked for, once, and never a day billed twice', async () => {
    const holder = await makeParty(pricedCovenant({ pricePerBytePerDay: 2, pricePerByte: 1 }))
    const a = cidForBytes(new TextEncoder().encode('a')).toString()
    const b = cidForBytes(new TextEncoder().encode('b')).toString()
    const day = utcDay(T0)
    const invoice = signInvoice(holder.key, {
      kind: 'store',
      payer: caller.peer,
      seq: 1,
      covenantVersion: 1,
      pricePerBytePerDay: 2,
      fromDay: day,
      toDay: day + 2,
      lines: [{ cid: a, bytes: 100, days: 2 }],
      issuedAt: T0 + 2 * DAY_MS,
    })
    const mine = new Set([a])
    const owns = (l: { cid: string }) => mine.has(l.cid)
    clock.t = T0 + 2 * DAY_MS
    assert.equal(
      errorCode(() => ledger.acceptInvoice(invoice, { owns })),
      'PRICE_UNKNOWN',
    )
    const accepted = ledger.acceptInvoice(invoice, { owns, covenants: [holder.covenant] })
    assert.deepEqual([accepted.status, accepted.amount], ['charged', 400])
    assert.equal(ledger.acceptInvoice(invoice, { owns }).status, 'duplicate')
    const overlapping = signInvoice(holder.key, {
      kind: 'store',
      payer: caller.peer,
      seq: 2,
      covenantVersion: 1,
      pricePerBytePerDay: 2,
      fromDay: day + 1,
      toDay: day + 3,
      lines: [{ cid: a, bytes: 100, days: 2 }],
      issuedAt: T0 + 3 * DAY_MS,
    })
    assert.equal(
      errorCode(() => ledger.acceptInvoice(overlapping, { owns })),
      'INVALID_INVOICE',
    )
    const notMine = signInvoice(holder.key, {
      kind: 'serve',
      payer: caller.peer,
      seq: 3,
      covenantVersion: 1,
      pricePerByte: 1,
      lines: [{ cid: b, bytes: 100 }],
      issuedAt: T0,
    })
    assert.equal(
      errorCode(() => ledger.acceptInvoice(notMine, { owns })),
      'INVALID_INVOICE',
    )
    assert.equal(
      errorCode(() => ledger.acceptInvoice({ ...invoice, amount: 1 }, { owns })),
      'INVALID_INVOICE',
    )
    assert.equal(ledger.account(holder.peer).owed, 400)
  })

  it('keeps each certificate it was charged for until every payee in it confirms it, across a restart', () => {
    const run = certifiedRun(network, caller.key, [cheap, dear])
    const evidence = certifiedRun(network, caller.key, [cheap, dear, third], {
      liars: [2],
      nonce: 'accused-1',
    })
    ledger.recordCertified(run.certificate, { covenants: [cheap.covenant, dear.covenant] })
    ledger.recordCertified(evidence.certificate, {
      covenants: [third.covenant],
      conflicts: evidence.conflicts,
    })
    assert.deepEqual(ledger.due(), [cheap.peer, dear.peer].sort())
    // recorded at the same instant (the test's clock), so in the order of their ids
    assert.deepEqual(
      ledger.undelivered(cheap.peer).map((c) => c.id),
      [run.id, evidence.id].sort(),
    )
    const json = (c: Certificate | undefined) => (c === undefined ? c : certificateToJSON(c))
    assert.deepEqual(json(ledger.certificate(run.id)), json(run.certificate))
    ledger.close()
    ledger = open()
    const [first] = [run, evidence].sort((a, b) => (a.id < b.id ? -1 : 1))
    assert.deepEqual(
      ledger.undelivered(dear.peer, 1).map(json),
      [json(first.certificate)],
      'kept across a restart',
    )
    ledger.delivered(cheap.peer, [run.id, evidence.id])
    assert.deepEqual(ledger.undelivered(cheap.peer), [])
    assert.equal(ledger.account(cheap.peer).undelivered, 0)
    assert.equal(ledger.account(dear.peer).undelivered, 2)
    assert.deepEqual(ledger.due(), [dear.peer])
    ledger.recordCertified(run.certificate)
    assert.deepEqual(ledger.undelivered(cheap.peer), [], 'a certificate shown again is not sent again')
    ledger.settle(cheap.peer)
    assert.deepEqual(ledger.due(), [cheap.peer, dear.peer].sort(), 'and an unconfirmed cheque is due')
  })

  it('owes a holder only for blocks it published, from the day it published them, and no day to come', async () => {
    const holder = await makeParty(pricedCovenant({ pricePerBytePerDay: 2 }))
    const a = cidForBytes(new TextEncoder().encode('published')).toString()
    const day = utcDay(T0)
    clock.t = T0 + DAY_MS
    ledger.publish(a, 100)
    clock.t = T0 + 4 * DAY_MS
    const bill = (seq: number, fromDay: number, toDay: number, days: number) =>
      signInvoice(holder.key, {
        kind: 'store',
        payer: caller.peer,
        seq,
        covenantVersion: 1,
        pricePerBytePerDay: 2,
        fromDay,
        toDay,
        lines: [{ cid: a, bytes: 100, days }],
        issuedAt: clock.t,
      })
    const covenants = [holder.covenant]
    assert.equal(
      errorCode(() => ledger.acceptInvoice(bill(1, day, day + 3, 3), { covenants })),
      'INVALID_INVOICE',
      'the day before it was published',
    )
    assert.equal(
      errorCode(() => ledger.acceptInvoice(bill(2, day + 1, day + 9, 8), { covenants })),
      'INVALID_INVOICE',
      'days to come',
    )
    assert.equal(ledger.account(holder.peer).invoiceSeq, 2, 'refused invoices are not fetched again')
    const ok = ledger.acceptInvoice(bill(3, day + 1, day + 4, 3), { covenants })
    assert.deepEqual([ok.status, ok.amount], ['charged', 600])
    assert.equal(ledger.account(holder.peer).invoiceSeq, 3)
    const bigger = signInvoice(holder.key, {
      kind: 'serve',
      payer: caller.peer,
      seq: 4,
      covenantVersion: 1,
      pricePerByte: 0,
      lines: [{ cid: a, bytes: 101 }],
      issuedAt: clock.t,
    })
    assert.equal(
      errorCode(() => ledger.acceptInvoice(bigger, { covenants })),
      'INVALID_INVOICE',
      'a published block of another size',
    )
  })

  it('reconciles with its payees pair by pair, and says where they differ', () => {
    ledger.learnCovenant(cheap.covenant)
    const run = certifiedRun(network, caller.key, [cheap])
    ledger.recordCertified(run.certificate)
    const payee = openPayeeLedger({
      path: dir.file(`payee-${files++}.db`),
      key: cheap.key,
      covenant: () => cheap.covenant,
      now: clock.now,
      ...network.verifiers,
    })
    const [cheque] = ledger.settle()
    let report = reconcile(ledger.statements(), [payee.statement(caller.peer)])
    assert.equal(report.ok, false)
    assert.deepEqual(report.pairs[0].differences, [
      `charged: payer says ${chargeFor({ basePrice: 1000, pricePerFuel: 10 }, 100)}, payee says 0`,
      `paid: payer says ${cheque.cumulative}, payee says 0`,
    ])
    payee.recordCertified(run.certificate)
    ledger.acknowledge(payee.applyCheque(cheque).best)
    report = reconcile(ledger.statements(), [payee.statement(caller.peer)])
    assert.equal(report.ok, true)
    payee.close()
  })
})
