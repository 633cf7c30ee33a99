import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { OutputSchema, outputHash, outputValue } from '../../src/exec/output.ts'

/** The definition, spelled out with an independent sha2-256. */
function expected(json: string, logs: string[], error: { code: string; message: string } | null): string {
  return createHash('sha256').update(dagCbor.encode({ json, logs, error })).digest('hex')
}

describe('outputHash', () => {
  it('is hex sha2-256 of the DAG-CBOR of { json, logs, error }', () => {
    const json = '{"b":[1,2.5,"x"],"a":null,"c":true}'
    assert.equal(
      outputHash({ json, logs: ['one', 'two'], error: null }),
      expected(json, ['one', 'two'], null),
    )
    assert.match(outputHash({ json, logs: [], error: null }), /^[0-9a-f]{64}$/)
  })

  it('keeps the key order the function returned: the text is hashed, not a map', () => {
    const zetaFirst = '{"zeta":1,"alpha":2}'
    assert.notEqual(
      outputHash({ json: zetaFirst, logs: [] }),
      outputHash({ json: '{"alpha":2,"zeta":1}', logs: [] }),
    )
    assert.deepEqual(Object.keys(outputValue({ json: zetaFirst }) as object), ['zeta', 'alpha'])
    // through DAG-CBOR the text stays the text
    const back = dagCbor.decode(dagCbor.encode({ json: zetaFirst, logs: [], error: null })) as {
      json: string
    }
    assert.equal(back.json, zetaFirst)
    assert.throws(() => outputValue({ json: '{"a":' }), { code: 'PROTOCOL_ERROR' })
  })

  it('hashes errors by code and message only', () => {
    const error = { code: 'FUEL_EXHAUSTED', message: 'the call used all its fuel' }
    const withDetails = { ...error, details: { ticks: 5 }, stack: 'at x' } as typeof error
    assert.equal(outputHash({ json: 'null', logs: [], error: withDetails }), expected('null', [], error))
    assert.equal(outputHash({ json: 'null', logs: [] }), expected('null', [], null))
    assert.notEqual(
      outputHash({ json: 'null', logs: [], error }),
      outputHash({ json: 'null', logs: [], error: { ...error, message: 'other' } }),
    )
  })

  it('changes with any part of the output', () => {
    const base = outputHash({ json: '3', logs: ['a'], error: null })
    assert.notEqual(outputHash({ json: '4', logs: ['a'], error: null }), base)
    assert.notEqual(outputHash({ json: '3', logs: ['b'], error: null }), base)
    assert.notEqual(outputHash({ json: '3', logs: [], error: null }), base)
    assert.notEqual(outputHash({ json: '"3"', logs: ['a'], error: null }), base)
  })

  it('accepts only JSON text, logs as strings and a code-and-message error on the wire', () => {
    assert.equal(OutputSchema.safeParse({ json: '[1,{"a":"b"}]', logs: [], error: null }).success, true)
    assert.equal(OutputSchema.safeParse({ json: [1], logs: [], error: null }).success, false)
    assert.equal(OutputSchema.safeParse({ json: '', logs: [], error: null }).success, false)
    assert.equal(OutputSchema.safeParse({ json: '1', logs: [1], error: null }).success, false)
    assert.equal(OutputSchema.safeParse({ json: '1', logs: [], error: { code: 'X' } }).success, false)
    assert.equal(OutputSchema.safeParse({ value: 1, logs: [], error: null }).success, false)
  })
})
