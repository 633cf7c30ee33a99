import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MAX_AMOUNT, MAX_PRICES, signCovenant } from '../../src/covenant/index.ts'
import {
  addAmounts,
  chargeFor,
  multiplyAmounts,
  priceSheet,
  QuoteSchema,
  quote,
  serveCharge,
  storageCharge,
  utcDay,
} from '../../src/ledger/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { makeParty, pricedCovenant, T0 } from '../fixtures/ledger.ts'

describe('prices and charges', () => {
  it('charges the base price plus the price per fuel times the fuel signed, exactly', () => {
    const price = { basePrice: 10_000, pricePerFuel: 1000 }
    assert.equal(chargeFor(price, 0), 10_000, 'a call that reports 0 fuel still costs the base price')
    assert.equal(chargeFor(price, 1), 11_000)
    assert.equal(chargeFor(price, 2000), 2_010_000)
    // equal work, equal credit
    assert.equal(chargeFor(price, 1234), chargeFor({ ...price }, 1234))
    assert.equal(chargeFor({ basePrice: 0, pricePerFuel: 0 }, 1e9), 0)
    // the dearest call a covenant allows still counts exactly
    const dearest = chargeFor(
      { basePrice: MAX_PRICES.basePrice, pricePerFuel: MAX_PRICES.pricePerFuel },
      1_000_000_000,
    )
    assert.equal(dearest, 1_001_000_000_000_000)
    assert.ok(Number.isSafeInteger(dearest))
  })

  it('refuses fuel that is no count, and totals beyond what is counted exactly', () => {
    const price = { basePrice: 1, pricePerFuel: 1 }
    for (const fuel of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])
      assert.equal(
        errorCode(() => chargeFor(price, fuel)),
        'INVALID_INPUT',
        String(fuel),
      )
    assert.equal(
      errorCode(() => chargeFor({ basePrice: 0, pricePerFuel: 1_000_000 }, 9_007_199_255)),
      'AMOUNT_TOO_LARGE',
    )
    assert.equal(
      errorCode(() => addAmounts(MAX_AMOUNT, 1)),
      'AMOUNT_TOO_LARGE',
    )
    assert.equal(addAmounts(MAX_AMOUNT - 1, 1), MAX_AMOUNT)
    assert.equal(multiplyAmounts(94_906_265, 94_906_265), 94_906_265 ** 2) // just under 2^53
    assert.equal(
      errorCode(() => multiplyAmounts(94_906_267, 94_906_267)),
      'AMOUNT_TOO_LARGE',
    )
  })

  it('prices storage per byte per day and serving per byte', () => {
    assert.equal(storageCharge(1, 1024 ** 3, 1), 1024 ** 3)
    assert.equal(storageCharge(3, 1000, 7), 21_000)
    assert.equal(serveCharge(2, 5000), 10_000)
    assert.equal(storageCharge(0, 1e12, 365), 0)
    assert.equal(
      errorCode(() => storageCharge(1_000_000, 1024 ** 5, 1)),
      'AMOUNT_TOO_LARGE',
    )
    assert.equal(utcDay(T0), 19_884)
    assert.equal(utcDay(T0 + 86_399_999), 19_884)
    assert.equal(utcDay(T0 + 86_400_000), 19_885)
  })

  it('reads a price sheet only from a covenant its peer signed', async () => {
    const node = await makeParty(
      pricedCovenant({ basePrice: 5, pricePerFuel: 7, pricePerBytePerDay: 2, pricePerByte: 3 }),
    )
    assert.deepEqual(priceSheet(node.covenant), {
      peer: node.peer,
      version: 1,
      issuedAt: T0,
      basePrice: 5,
      pricePerFuel: 7,
      pricePerBytePerDay: 2,
      pricePerByte: 3,
    })
    const cheaper = {
      ...node.covenant,
      config: { ...node.covenant.config, execute: { ...node.covenant.config.execute, pricePerFuel: 1 } },
    }
    assert.equal(
      errorCode(() => priceSheet(cheaper)),
      'INVALID_SIGNATURE',
    )
    assert.equal(
      errorCode(() => priceSheet({ peer: node.peer })),
      'PROTOCOL_ERROR',
    )
  })

  it('quotes each executor’s charge and the least and most q of them cost', async () => {
    const cheap = await makeParty(pricedCovenant({ basePrice: 100, pricePerFuel: 1 }))
    const mid = await makeParty(pricedCovenant({ basePrice: 100, pricePerFuel: 2 }))
    const dear = await makeParty(pricedCovenant({ basePrice: 1000, pricePerFuel: 3 }))
    const q = quote({ fuel: 50, q: 2, executors: [dear, cheap, mid] })
    assert.deepEqual(
      q.executors.map((e) => [e.peer, e.charge]),
      [
        [dear.peer, 1150],
        [cheap.peer, 150],
        [mid.peer, 200],
      ],
    )
    assert.equal(q.min, 350)
    assert.equal(q.max, 1350)
    assert.ok(QuoteSchema.safeParse(JSON.parse(JSON.stringify(q))).success, 'the quote is JSON as it is')
    // the quote is what chargeFor charges for a receipt of that fuel, by construction of both
    for (const e of q.executors) assert.equal(e.charge, chargeFor(e, 50))
    for (const bad of [0, 4, 1.5])
      assert.equal(
        errorCode(() => quote({ fuel: 50, q: bad, executors: [dear, cheap, mid] })),
        'INVALID_INPUT',
      )
    const v2 = signCovenant(cheap.key, pricedCovenant({ basePrice: 1, pricePerFuel: 1 }), 2)
    assert.equal(
      quote({ fuel: 0, q: 1, executors: [{ peer: cheap.peer, covenant: v2 }] }).executors[0].covenantVersion,
      2,
    )
  })
})
