import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  type CovenantIssue,
  covenantToYaml,
  DEFAULT_COVENANT,
  loadCovenantFile,
  parseByteSize,
  parseCovenantYaml,
} from '../../src/covenant/index.ts'
import { CovenantError } from '../../src/errors/index.ts'

const PUBLISHER = '12D3KooWRPh1PL3CFMzDvG31TswggpDXpR3ZoF25454y5tEaGzqs'

/** The issues a covenant text is rejected with, checking the message repeats each one. */
function issuesOf(text: string): CovenantIssue[] {
  try {
    parseCovenantYaml(text, 'node.yaml')
  } catch (err) {
    assert.ok(err instanceof CovenantError)
    assert.equal(err.code, 'COVENANT_INVALID')
    const issues = err.details as CovenantIssue[]
    for (const i of issues) assert.ok(err.message.includes(`node.yaml:${i.line}:${i.col}: ${i.path}`))
    return issues
  }
  assert.fail('expected COVENANT_INVALID')
}

describe('covenant.yaml', () => {
  it('fills every default from an empty file; execution is off by default', () => {
    assert.deepEqual(DEFAULT_COVENANT, {
      statement: '',
      store: { enabled: true, maxBytes: 1024 ** 3, refusedTags: [], pricePerBytePerDay: 1, noticeDays: 7 },
      serve: { pricePerByte: 0 },
      execute: {
        enabled: false,
        maxFuel: 1_000_000_000,
        maxMemoryMiB: 64,
        maxWallClockMs: 5000,
        maxOutputMiB: 16,
        concurrency: 2,
        basePrice: 10_000,
        pricePerFuel: 1000,
        refusedTags: [],
        allowedPublishers: [],
        refusedPublishers: [],
      },
      credit: 10_000_000,
    })
    assert.deepEqual(parseCovenantYaml(''), DEFAULT_COVENANT)
    assert.deepEqual(parseCovenantYaml('# only a comment\n'), DEFAULT_COVENANT)
    assert.deepEqual(parseCovenantYaml('store: {}\nexecute: {}\n'), DEFAULT_COVENANT)
  })

  it('reads a full file, sizes as numbers or with units, and writes it back unchanged', () => {
    const config = parseCovenantYaml(`
statement: "A lab node: math only"
store:
  enabled: true
  maxBytes: 512MiB
  refusedTags: [nsfw, "crypto:mining"]
execute:
  enabled: true
  maxFuel: 5000000
  maxMemoryMiB: 32
  maxWallClockMs: 1000
  concurrency: 4
  basePrice: 2 µcr
  pricePerFuel: 0.0005 cr
  refusedTags: [gambling]
  allowedPublishers: [${PUBLISHER}]
  refusedPublishers: []
`)
    assert.equal(config.store.maxBytes, 512 * 1024 ** 2)
    assert.equal(config.execute.basePrice, 2000)
    assert.equal(config.execute.pricePerFuel, 500_000)
    assert.deepEqual(config.store.refusedTags, ['nsfw', 'crypto:mining'])
    assert.equal(config.execute.enabled, true)
    assert.deepEqual(config.execute.allowedPublishers, [PUBLISHER])
    assert.deepEqual(parseCovenantYaml(covenantToYaml(config)), config)
    assert.match(covenantToYaml(config), /maxBytes: 512MiB/)
    assert.match(covenantToYaml(config), /pricePerFuel: 0.0005 cr/)
    assert.deepEqual(parseCovenantYaml(covenantToYaml(DEFAULT_COVENANT)), DEFAULT_COVENANT)
    const odd = parseCovenantYaml('store:\n  maxBytes: 1000001\n')
    assert.deepEqual(parseCovenantYaml(covenantToYaml(odd)), odd)

    assert.equal(parseByteSize('1GiB'), 1024 ** 3)
    assert.equal(parseByteSize('1.5 KiB'), 1536)
    assert.equal(parseByteSize('2GB'), 2e9)
    assert.equal(parseByteSize('1024'), 1024)
    assert.equal(parseByteSize('12 parsecs'), undefined)
    assert.equal(parseByteSize('-1MiB'), undefined)
  })

  it('names the field, line and column of every mistake', () => {
    const issues = issuesOf(
      [
        'statement: 42', // 1
        'store:', // 2
        '  maxBytes: 12 parsecs', // 3
        '  surprise: true', // 4
        'execute:', // 5
        '  enabled: yes please', // 6
        '  concurrency: 0', // 7
        '  maxFuel: 1.5', // 8
        '  pricePerFuel: -1', // 9
        '  refusedTags: [ok, NSFW]', // 10
        '  allowedPublishers: [alice]', // 11
        'colour: blue', // 12
      ].join('\n'),
    )
    const at = Object.fromEntries(issues.map((i) => [i.path, `${i.line}:${i.col}`]))
    assert.deepEqual(at, {
      statement: '1:12',
      'store.maxBytes': '3:13',
      'store.surprise': '4:3',
      'execute.enabled': '6:12',
      'execute.concurrency': '7:16',
      'execute.maxFuel': '8:12',
      'execute.pricePerFuel': '9:17',
      'execute.refusedTags[1]': '10:21',
      'execute.allowedPublishers[0]': '11:23',
      colour: '12:1',
    })
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]))
    assert.match(byPath['store.maxBytes'], /not a byte size: "12 parsecs"/)
    assert.match(byPath['store.surprise'], /unknown field/)
    assert.match(byPath['execute.refusedTags[1]'], /lowercase/)
  })

  it('rejects numbers out of bounds', () => {
    for (const [text, path] of [
      ['store:\n  maxBytes: 2000TiB\n', 'store.maxBytes'],
      ['execute:\n  maxMemoryMiB: 100000\n', 'execute.maxMemoryMiB'],
      ['execute:\n  maxWallClockMs: 0\n', 'execute.maxWallClockMs'],
      // beyond what the sandbox can enforce, so beyond what any request may ask
      ['execute:\n  maxFuel: 1000000001\n', 'execute.maxFuel'],
      ['execute:\n  maxMemoryMiB: 8\n', 'execute.maxMemoryMiB'],
      ['execute:\n  maxMemoryMiB: 1025\n', 'execute.maxMemoryMiB'],
      ['execute:\n  maxWallClockMs: 600001\n', 'execute.maxWallClockMs'],
      ['execute:\n  concurrency: 1000\n', 'execute.concurrency'],
      ['execute:\n  maxFuel: .inf\n', 'execute.maxFuel'],
      ['execute:\n  pricePerFuel: .nan\n', 'execute.pricePerFuel'],
      // prices stay where no charge can leave the integers counted exactly
      ['execute:\n  pricePerFuel: 0.001000001 cr\n', 'execute.pricePerFuel'],
      ['execute:\n  basePrice: 1001 cr\n', 'execute.basePrice'],
      ['execute:\n  basePrice: -1\n', 'execute.basePrice'],
      ['store:\n  pricePerBytePerDay: 2 mcr\n', 'store.pricePerBytePerDay'],
      ['store:\n  noticeDays: 366\n', 'store.noticeDays'],
      ['serve:\n  pricePerByte: 1 cr\n', 'serve.pricePerByte'],
    ])
      assert.deepEqual(
        issuesOf(text).map((i) => [i.path, i.line]),
        [[path, 2]],
        text,
      )
  })

  it('reads prices as whole nano-credits or amounts with a unit, and writes them back as credits', () => {
    const config = parseCovenantYaml(
      [
        'credit: 0.5 cr',
        'store:',
        '  pricePerBytePerDay: 3',
        '  noticeDays: 0',
        'serve:',
        '  pricePerByte: "2 ncr"',
        'execute:',
        '  basePrice: 1.5 µcr',
        '  pricePerFuel: 0',
      ].join('\n'),
    )
    assert.equal(config.credit, 500_000_000)
    assert.equal(config.store.pricePerBytePerDay, 3)
    assert.equal(config.store.noticeDays, 0)
    assert.equal(config.serve.pricePerByte, 2)
    assert.equal(config.execute.basePrice, 1500)
    assert.equal(config.execute.pricePerFuel, 0)
    const yaml = covenantToYaml(config)
    assert.match(yaml, /credit: 0\.5 cr/)
    assert.match(yaml, /basePrice: 0\.0000015 cr/)
    assert.deepEqual(parseCovenantYaml(yaml), config)
  })

  it('refuses a price written as a fraction of a credit (the form before payments), saying what it meant', () => {
    const [issue] = issuesOf('execute:\n  pricePerFuel: 0.000001\n')
    assert.equal(issue.path, 'execute.pricePerFuel')
    assert.match(issue.message, /whole nano-credits/)
    assert.match(issue.message, /"0\.000001 cr" \(1000 ncr\)/)
    // never rounded: half a nano-credit is no amount
    assert.match(issuesOf('execute:\n  pricePerFuel: 0.0000000005 cr\n')[0].message, /not an amount/)
    assert.match(issuesOf('credit: 5 dollars\n')[0].message, /not an amount: "5 dollars"/)
  })

  it('reports YAML syntax errors and wrong shapes with their line', () => {
    const syntax = issuesOf('store:\n  maxBytes: 1GiB\n  refusedTags: [a, b\nexecute: {}\n')
    assert.ok(syntax.length >= 1)
    assert.match(syntax[0].message, /^YAML syntax/)
    assert.ok(syntax[0].line >= 3)
    const dup = issuesOf('statement: a\nstatement: b\n')
    assert.equal(dup[0].line, 2)
    assert.match(dup[0].message, /YAML syntax/)
    assert.deepEqual(
      issuesOf('\n\nstore: 5\n').map((i) => [i.path, i.line, i.col]),
      [['store', 3, 8]],
    )
    assert.deepEqual(
      issuesOf('- a list\n').map((i) => [i.path, i.line]),
      [['(root)', 1]],
    )
  })

  it('reports a key written as a collection as an unknown field, and nothing on the process', async () => {
    // Found by the fuzzer (test/fuzz, target "covenant-yaml"): the YAML library also emitted a
    // Node process warning ("Set mapAsMap: true…") for each such key, printed by any node started
    // with that file.
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      assert.deepEqual(
        issuesOf('? [a, b]\n: 1\nstore:\n  ? {x: 1}\n  : true\n').map((i) => [i.path, i.line, i.message]),
        [
          ['store.{ x: 1 }', 4, 'unknown field'],
          ['[ a, b ]', 1, 'unknown field'],
        ],
      )
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    assert.deepEqual(
      warnings.map((w) => w.message),
      [],
    )
  })

  it('loads a file, naming it in errors; a missing file is NOT_FOUND', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'covenant-yaml-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const good = join(dir, 'covenant.yaml')
    await writeFile(good, 'execute:\n  enabled: true\n')
    assert.equal((await loadCovenantFile(good)).execute.enabled, true)
    const bad = join(dir, 'bad.yaml')
    await writeFile(bad, 'execute:\n  enabled: 3\n')
    await assert.rejects(loadCovenantFile(bad), (err: CovenantError) => {
      assert.equal(err.code, 'COVENANT_INVALID')
      assert.ok(err.message.includes(`${bad}:2:12: execute.enabled`))
      return true
    })
    await assert.rejects(loadCovenantFile(join(dir, 'missing.yaml')), { code: 'NOT_FOUND' })
  })
})
