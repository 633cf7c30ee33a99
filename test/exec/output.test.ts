import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { OutputSchema, outputEffects, outputHash, outputValue } from '../../src/exec/output.ts'

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

describe('an output with effects', () => {
  const NS = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
  const OTHER = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
  const FN = 'bafyreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq'
  const effects = {
    reads: [
      { ns: NS, key: 'count', version: 3 },
      { ns: OTHER, key: 'x', version: 0 },
    ],
    writes: [
      { ns: NS, key: 'count', value: 4 },
      { ns: OTHER, key: 'y', value: { a: [1, 'b'] } },
      { ns: NS, key: 'entries/3', value: 'hi' },
    ],
    jobs: [{ fn: FN, export: 'digest', args: [1], options: {} }],
  }

  it('groups reads and writes by namespace, in the order the namespaces were first read, then written', () => {
    const { store, jobs } = outputEffects(effects)
    assert.deepEqual(store, [
      {
        ns: NS,
        reads: [{ key: 'count', version: 3 }],
        writes: [
          { key: 'count', value: 4 },
          { key: 'entries/3', value: 'hi' },
        ],
      },
      { ns: OTHER, reads: [{ key: 'x', version: 0 }], writes: [{ key: 'y', value: { a: [1, 'b'] } }] },
    ])
    assert.deepEqual(jobs, effects.jobs)
    // each field only when the call had some; none at all without effects
    assert.deepEqual(outputEffects({ reads: [], writes: [], jobs: effects.jobs }), { jobs: effects.jobs })
    assert.deepEqual(outputEffects({ reads: [effects.reads[0]], writes: [], jobs: [] }), {
      store: [{ ns: NS, reads: [{ key: 'count', version: 3 }], writes: [] }],
    })
    assert.deepEqual(outputEffects(undefined), {})
  })

  it('is hashed with its effects, so the receipts sign the writes and jobs; without them, as before', () => {
    const bare = { json: '4', logs: [], error: null }
    const full = { ...bare, ...outputEffects(effects) }
    assert.equal(OutputSchema.safeParse(full).success, true)
    assert.equal(outputHash(bare), expected('4', [], null))
    assert.equal(
      outputHash(full),
      createHash('sha256')
        .update(dagCbor.encode({ json: '4', logs: [], error: null, store: full.store, jobs: full.jobs }))
        .digest('hex'),
    )
    const changed = structuredClone(full)
    changed.store![0].writes[1].value = 'spam'
    assert.notEqual(outputHash(changed), outputHash(full), 'another written value')
    const moreReads = structuredClone(full)
    moreReads.store![0].reads[0].version = 2
    assert.notEqual(outputHash(moreReads), outputHash(full), 'another version read')
    assert.notEqual(outputHash({ ...full, jobs: undefined }), outputHash(full), 'a job dropped')
    assert.notEqual(outputHash({ ...full, store: undefined }), outputHash(full), 'the writes dropped')
  })

  it('refuses effects out of shape or past a commit’s bounds on the wire', () => {
    const base = { json: '1', logs: [], error: null }
    const write = (key: string) => ({ key, value: 1 })
    assert.equal(OutputSchema.safeParse({ ...base, store: [] }).success, false, 'an empty list is absent')
    assert.equal(OutputSchema.safeParse({ ...base, jobs: [] }).success, false)
    assert.equal(
      OutputSchema.safeParse({ ...base, store: [{ ns: 'not-a-cid', writes: [], reads: [] }] }).success,
      false,
    )
    const many = Array.from({ length: 257 }, (_, i) => write(`k${i}`))
    assert.equal(
      OutputSchema.safeParse({ ...base, store: [{ ns: NS, writes: many, reads: [] }] }).success,
      false,
    )
    assert.equal(
      OutputSchema.safeParse({
        ...base,
        store: [{ ns: NS, writes: [{ key: 'k', value: undefined }], reads: [] }],
      }).success,
      false,
    )
  })
})
