import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatAmount, MAX_AMOUNT, NCR_PER_CREDIT, parseAmount } from '../../src/covenant/index.ts'

describe('money', () => {
  it('reads amounts with units exactly, in whole nano-credits', () => {
    assert.equal(NCR_PER_CREDIT, 1e9)
    const cases: Array<[string, number]> = [
      ['0.000001 cr', 1000],
      ['1 cr', 1e9],
      ['1.5 credits', 1.5e9],
      ['2 credit', 2e9],
      ['3 mcr', 3e6],
      ['0.25 mcr', 250_000],
      ['7 µcr', 7000],
      ['7 ucr', 7000],
      ['7 UCR', 7000],
      ['42 ncr', 42],
      ['42', 42],
      [' 0.100 cr ', 100_000_000],
      ['0 cr', 0],
      // the float nearest 0.1 + 0.2 is not what this reads: text is read digit by digit
      ['0.300000000 cr', 300_000_000],
    ]
    for (const [text, ncr] of cases) assert.equal(parseAmount(text), ncr, text)
  })

  it('refuses what is not exactly a whole number of nano-credits', () => {
    for (const text of [
      '',
      'cr',
      '-1 cr',
      '1e3',
      '1,5 cr',
      '0.5 ncr',
      '0.0000000001 cr',
      '1.0001 µcr',
      '5 dollars',
      '9007199254740992', // 2^53: no longer exact
      '9007200 cr',
      'NaN',
      'Infinity',
    ])
      assert.equal(parseAmount(text), undefined, text)
    assert.equal(parseAmount(String(MAX_AMOUNT)), MAX_AMOUNT)
  })

  it('writes amounts in credits, exactly, and reads them back', () => {
    assert.equal(formatAmount(1000), '0.000001 cr')
    assert.equal(formatAmount(0), '0 cr')
    assert.equal(formatAmount(1), '0.000000001 cr')
    assert.equal(formatAmount(1.5e9), '1.5 cr')
    assert.equal(formatAmount(-2_500), '-0.0000025 cr')
    assert.equal(formatAmount(123_000_000_000), '123 cr')
    for (const n of [0, 1, 999, 1000, 10_000_000, 1_234_567_891, MAX_AMOUNT])
      assert.equal(parseAmount(formatAmount(n)), n, String(n))
  })
})
