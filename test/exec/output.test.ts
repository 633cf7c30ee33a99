import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { OutputSchema, outputHash } from '../../src/exec/output.ts'

/** The definition, spelled out with an independent sha2-256. */
function expected(value: unknown, logs: string[], error: { code: string; message: string } | null): string {
  return createHash('sha256').update(dagCbor.encode({ value, logs, error })).digest('hex')
}

describe('outputHash', () => {
  it('is hex sha2-256 of the DAG-CBOR of { value, logs, error }', () => {
    const value = { b: [1, 2.5, 'x'], a: null, c: true }
    assert.equal(
      outputHash({ value, logs: ['one', 'two'], error: null }),
      expected(value, ['one', 'two'], null),
    )
    assert.match(outputHash({ value, logs: [], error: null }), /^[0-9a-f]{64}$/)
    // Key order does not matter: DAG-CBOR sorts map keys.
    assert.equal(
      outputHash({ value: { a: 1, b: 2 }, logs: [] }),
      outputHash({ value: { b: 2, a: 1 }, logs: [], error: null }),
    )
  })

  it('hashes errors by code and message only, with a null value; a missing value is null', () => {
    const error = { code: 'FUEL_EXHAUSTED', message: 'the call used all its fuel' }
    const withDetails = { ...error, details: { ticks: 5 }, stack: 'at x' } as typeof error
    assert.equal(outputHash({ value: null, logs: [], error: withDetails }), expected(null, [], error))
    assert.equal(outputHash({ logs: [] }), expected(null, [], null))
    assert.notEqual(
      outputHash({ logs: [], error }),
      outputHash({ logs: [], error: { ...error, message: 'other' } }),
    )
  })

  it('changes with any part of the output', () => {
    const base = outputHash({ value: 3, logs: ['a'], error: null })
    assert.notEqual(outputHash({ value: 4, logs: ['a'], error: null }), base)
    assert.notEqual(outputHash({ value: 3, logs: ['b'], error: null }), base)
    assert.notEqual(outputHash({ value: 3, logs: [], error: null }), base)
    assert.notEqual(outputHash({ value: '3', logs: ['a'], error: null }), base)
  })

  it('accepts only JSON values on the wire', () => {
    assert.equal(OutputSchema.safeParse({ value: [1, { a: 'b' }], logs: [], error: null }).success, true)
    assert.equal(OutputSchema.safeParse({ value: new Uint8Array(1), logs: [], error: null }).success, false)
    assert.equal(OutputSchema.safeParse({ value: 1, logs: [1], error: null }).success, false)
    assert.equal(OutputSchema.safeParse({ value: 1, logs: [], error: { code: 'X' } }).success, false)
  })
})
