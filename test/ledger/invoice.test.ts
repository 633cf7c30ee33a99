import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import { signCovenant } from '../../src/covenant/index.ts'
import {
  checkInvoicePrice,
  DAY_MS,
  type InvoiceInit,
  invoiceId,
  priceSheet,
  signInvoice,
  utcDay,
  verifyInvoice,
} from '../../src/ledger/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { makeParty, type Party, pricedCovenant, T0 } from '../fixtures/ledger.ts'

const cid = (s: string) => cidForBytes(new TextEncoder().encode(s)).toString()
const DAY0 = utcDay(T0)

describe('invoices', () => {
  let holder: Party
  let publisher: Party
  let store: Extract<InvoiceInit, { kind: 'store' }>

  before(async () => {
    holder = await makeParty(pricedCovenant({ pricePerBytePerDay: 2, pricePerByte: 5 }))
    publisher = await makeParty()
    store = {
      kind: 'store',
      payer: publisher.peer,
      seq: 1,
      covenantVersion: 1,
      pricePerBytePerDay: 2,
      fromDay: DAY0,
      toDay: DAY0 + 3,
      lines: [
        { cid: cid('a'), bytes: 1000, days: 3 },
        { cid: cid('b'), bytes: 10, days: 1 },
      ],
      issuedAt: T0 + 3 * DAY_MS,
    }
  })

  it('bills bytes × days × price for storage and bytes × price for serving, signed by the holder', () => {
    const invoice = signInvoice(holder.key, store)
    assert.equal(invoice.holder, holder.peer)
    assert.equal(invoice.amount, 1000 * 3 * 2 + 10 * 1 * 2)
    assert.deepEqual(verifyInvoice(invoice, { payer: publisher.peer }), invoice)
    const served = signInvoice(holder.key, {
      kind: 'serve',
      payer: publisher.peer,
      seq: 2,
      covenantVersion: 1,
      pricePerByte: 5,
      lines: [{ cid: cid('a'), bytes: 1000 }],
      issuedAt: T0,
    })
    assert.equal(served.amount, 5000)
    assert.notEqual(invoiceId(served), invoiceId(invoice))
    checkInvoicePrice(invoice, [priceSheet(holder.covenant)])
    checkInvoicePrice(served, [priceSheet(holder.covenant)])
  })

  it('refuses an invoice whose sums, days, blocks or signature are wrong', () => {
    const invoice = signInvoice(holder.key, store)
    const cases: Array<[string, unknown]> = [
      ['an inflated amount', { ...invoice, amount: invoice.amount + 1 }],
      ['a raised price', { ...invoice, pricePerBytePerDay: 3 }],
      ['more days', { ...invoice, lines: [{ ...invoice.lines[0], days: 4 }, invoice.lines[1]] }],
      ['another payer', { ...invoice, payer: holder.peer }],
    ]
    for (const [what, value] of cases)
      assert.equal(
        errorCode(() => verifyInvoice(value)),
        'INVALID_INVOICE',
        what,
      )
    for (const [what, init] of [
      ['a block billed twice', { ...store, lines: [store.lines[0], store.lines[0]] }],
      ['more days than the period', { ...store, lines: [{ ...store.lines[0], days: 4 }] }],
      ['a period that ends before it starts', { ...store, toDay: DAY0 }],
    ] as Array<[string, InvoiceInit]>)
      assert.equal(
        errorCode(() => signInvoice(holder.key, init)),
        'INVALID_INVOICE',
        what,
      )
    assert.equal(
      errorCode(() => verifyInvoice(invoice, { payer: holder.peer })),
      'INVALID_INVOICE',
    )
  })

  it('charges the price of the newest covenant issued by the period’s start, never a rise after it', async () => {
    const v1 = priceSheet(holder.covenant)
    const rise = priceSheet(
      signCovenant(holder.key, pricedCovenant({ pricePerBytePerDay: 9 }), 2, T0 + 2 * DAY_MS),
    )
    // a period that began before the rise is billed at the old price …
    checkInvoicePrice(signInvoice(holder.key, store), [v1, rise])
    // … and billing it at the new one is refused
    const early = signInvoice(holder.key, { ...store, covenantVersion: 2, pricePerBytePerDay: 9 })
    assert.equal(
      errorCode(() => checkInvoicePrice(early, [v1, rise])),
      'INVALID_INVOICE',
    )
    // a period that starts after it is billed at the new price, and the old one is refused
    const later = {
      ...store,
      fromDay: DAY0 + 2,
      toDay: DAY0 + 3,
      lines: [{ cid: cid('a'), bytes: 1, days: 1 }],
    }
    checkInvoicePrice(signInvoice(holder.key, { ...later, covenantVersion: 2, pricePerBytePerDay: 9 }), [
      v1,
      rise,
    ])
    assert.equal(
      errorCode(() => checkInvoicePrice(signInvoice(holder.key, later), [v1, rise])),
      'INVALID_INVOICE',
    )
    // a price that is not the version's
    assert.equal(
      errorCode(() => checkInvoicePrice(signInvoice(holder.key, { ...store, pricePerBytePerDay: 1 }), [v1])),
      'INVALID_INVOICE',
    )
    // a version the checker has not seen
    assert.equal(
      errorCode(() => checkInvoicePrice(signInvoice(holder.key, { ...store, covenantVersion: 7 }), [v1])),
      'PRICE_UNKNOWN',
    )
  })
})
