import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type OutputLike, outputHash } from '../../src/exec/index.ts'
import { DivergenceReportSchema, divergenceReport, firstDifference } from '../../src/ledger/index.ts'

const receiptOf = (executor: string, output: OutputLike, build?: string) => ({
  executor,
  outputHash: outputHash(output),
  ...(build === undefined ? {} : { build }),
})

describe('first difference', () => {
  it('finds the first path where two JSON values differ, depth first', () => {
    assert.equal(firstDifference({ a: 1 }, { a: 1 }), undefined)
    assert.deepEqual(firstDifference({ a: { b: [1, 2, { c: 'x' }] } }, { a: { b: [1, 2, { c: 'y' }] } }), {
      path: '$.a.b[2].c',
      a: 'x',
      b: 'y',
    })
    // the earlier of two differences, in the first value's order of keys, then by index
    assert.equal(firstDifference({ z: 1, a: [0, 1] }, { z: 2, a: [0, 2] })?.path, '$.z')
    assert.equal(firstDifference({ a: [0, 1], z: 1 }, { a: [0, 2], z: 2 })?.path, '$.a[1]')
    // a longer array differs at the first index the shorter lacks
    assert.deepEqual(firstDifference([1, 2], [1, 2, 3]), { path: '$[2]', a: undefined, b: 3 })
    // a missing key
    assert.deepEqual(firstDifference({ a: 1 }, { a: 1, b: null }), { path: '$.b', a: undefined, b: null })
    // types: an array is not an object, null is not an object, 1 is not '1'
    assert.equal(firstDifference({ a: [] }, { a: {} })?.path, '$.a')
    assert.equal(firstDifference({ a: null }, { a: {} })?.path, '$.a')
    assert.equal(firstDifference([1], ['1'])?.path, '$[0]')
    // key order is a difference, as in the output hash (the JSON text is hashed as it is): at the
    // object, once its values are found equal
    assert.deepEqual(firstDifference({ x: { a: 1, b: 2 } }, { x: { b: 2, a: 1 } }), {
      path: '$.x',
      a: { a: 1, b: 2 },
      b: { b: 2, a: 1 },
      order: true,
    })
    assert.equal(firstDifference({ a: 1, b: 2 }, { b: 3, a: 1 })?.path, '$.b', 'a value before the order')
    assert.equal(firstDifference({ a: 1, b: 2 }, { a: 1, b: 2 }), undefined)
    // keys that are not identifiers are quoted
    assert.equal(firstDifference({ 'a b': { '0': 1 } }, { 'a b': { '0': 2 } })?.path, '$["a b"]["0"]')
  })

  it('walks a deep value without recursion', () => {
    let a: unknown = 1
    let b: unknown = 2
    for (let i = 0; i < 100_000; i++) {
      a = [a]
      b = [b]
    }
    assert.equal(firstDifference(a, b)?.path, `$${'[0]'.repeat(100_000)}`)
  })
})

describe('divergence report', () => {
  it('names each executor’s output hash and where each minority output departs from the majority', () => {
    const majority: OutputLike = { json: '{"rolls":[3,5],"at":1000}', logs: ['rolled'], error: null }
    const drift: OutputLike = { json: '{"rolls":[3,6],"at":1000}', logs: ['rolled'], error: null }
    const report = divergenceReport(
      [receiptOf('A', majority, 'b1'), receiptOf('B', drift, 'b1'), receiptOf('C', majority, 'b1')],
      [drift, majority],
    )
    assert.ok(DivergenceReportSchema.safeParse(JSON.parse(JSON.stringify(report))).success)
    assert.deepEqual(
      report.executors.map((e) => [e.executor, e.outputHash]),
      [
        ['A', outputHash(majority)],
        ['B', outputHash(drift)],
        ['C', outputHash(majority)],
      ],
    )
    assert.equal(report.executors[0].build, 'b1')
    assert.deepEqual(report.groups, [
      { outputHash: outputHash(majority), executors: ['A', 'C'] },
      { outputHash: outputHash(drift), executors: ['B'] },
    ])
    assert.equal(report.reference, outputHash(majority))
    assert.deepEqual(report.differences, [
      { outputHash: outputHash(drift), path: '$.value.rolls[1]', expected: '5', actual: '6' },
    ])
  })

  it('tells a thrown error, a different value and different logs apart, error first', () => {
    const ok: OutputLike = { json: '42', logs: ['a', 'b'], error: null }
    const threw: OutputLike = { json: 'null', logs: ['a'], error: { code: 'USER_ERROR', message: 'boom' } }
    const logged: OutputLike = { json: '42', logs: ['a', 'c'], error: null }
    const other: OutputLike = { json: '41', logs: ['a', 'c'], error: null }
    const report = divergenceReport(
      [
        receiptOf('A', ok),
        receiptOf('B', ok),
        receiptOf('C', threw),
        receiptOf('D', logged),
        receiptOf('E', other),
      ],
      [ok, threw, logged, other],
    )
    assert.deepEqual(
      report.differences.map((d) => [d.outputHash, d.path, d.expected, d.actual]),
      [
        [outputHash(threw), '$.error', 'null', '{"code":"USER_ERROR","message":"boom"}'],
        [outputHash(logged), '$.logs[1]', '"b"', '"c"'],
        [outputHash(other), '$.value', '42', '41'],
      ],
    )
  })

  it('keeps the first signed output as reference on a tie, and lists an output it never saw without a path', () => {
    const x: OutputLike = { json: JSON.stringify('x'.repeat(500)), logs: [], error: null }
    const y: OutputLike = { json: '"y"', logs: [], error: null }
    const unseen: OutputLike = { json: '"z"', logs: [], error: null }
    const report = divergenceReport([receiptOf('A', x), receiptOf('B', y), receiptOf('C', unseen)], [y, x])
    assert.equal(report.reference, outputHash(x))
    assert.equal(report.differences.length, 1, 'no path for an output whose content never came')
    assert.equal(report.differences[0].outputHash, outputHash(y))
    assert.ok(report.differences[0].expected.length <= 120, 'long values are shortened')
    assert.ok(report.differences[0].expected.endsWith('…'))
    assert.deepEqual(
      report.groups.map((g) => g.executors),
      [['A'], ['B'], ['C']],
    )
  })

  it('shows where outputs differ only in key order, or only in their JSON text', () => {
    const sorted: OutputLike = { json: '{"user":{"id":7,"name":"Ada"}}', logs: [], error: null }
    const unsorted: OutputLike = { json: '{"user":{"name":"Ada","id":7}}', logs: [], error: null }
    const spaced: OutputLike = { json: '{ "user": { "id": 7, "name": "Ada" } }', logs: [], error: null }
    const report = divergenceReport(
      [receiptOf('A', sorted), receiptOf('B', sorted), receiptOf('C', unsorted), receiptOf('D', spaced)],
      [sorted, unsorted, spaced],
    )
    assert.deepEqual(
      report.differences.map((d) => [d.outputHash, d.path, d.expected, d.actual]),
      [
        [outputHash(unsorted), '$.value.user', '{"id":…,"name":…}', '{"name":…,"id":…}'],
        [outputHash(spaced), '$.value', sorted.json, spaced.json],
      ],
    )
  })

  it('is empty for no receipts, and ignores outputs that are no outputs', () => {
    assert.deepEqual(divergenceReport([], []), { executors: [], groups: [], differences: [] })
    const one: OutputLike = { json: '1', logs: [], error: null }
    const notJson: OutputLike = { json: '{1', logs: [], error: null }
    const unhashable = { json: '2', logs: [() => 1], error: null } as unknown as OutputLike
    // B signed a text that is not JSON: its output is no output, so no path is given for it
    const report = divergenceReport(
      [receiptOf('A', one), receiptOf('B', notJson)],
      [notJson, unhashable, one],
    )
    assert.deepEqual(report.differences, [])
    assert.deepEqual(
      report.groups.map((g) => g.executors),
      [['A'], ['B']],
    )
  })
})
