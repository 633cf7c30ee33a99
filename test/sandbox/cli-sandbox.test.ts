/** `covenant sandbox`, run as a real process. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { cidForBytes } from '../../src/content/index.ts'

const exec = promisify(execFile)
const main = new URL('../../src/cli/main.ts', import.meta.url).pathname
const NS = cidForBytes(new Uint8Array([1]), 'dag-cbor').toString()
let dir = ''

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'covenant-cli-sandbox-'))
  await writeFile(
    join(dir, 'fn.ts'),
    `import { helper } from './helper.ts'
export function add(a: number, b: number, ctx: { log(...x: unknown[]): void }): number { ctx.log('adding'); return helper(a, b) }
export function spin(): void { for (;;) {} }
export function echo(...args: unknown[]) { return args.slice(0, -1) }
export function fs() { return import('node:fs') }`,
  )
  await writeFile(join(dir, 'helper.ts'), 'export const helper = (a: number, b: number) => a + b\n')
  await writeFile(
    join(dir, 'guestbook.ts'),
    `const NS = '${NS}'
export async function sign(name: string, ctx: any) {
  const count = (await ctx.store.get(NS, 'count')) ?? 0
  ctx.store.put(NS, 'entries/' + count, { name })
  ctx.store.put(NS, 'count', count + 1)
  ctx.store.delete(NS, 'draft')
  ctx.enqueue(NS, 'thank', [name])
  return count + 1
}`,
  )
  await writeFile(join(dir, 'values.json'), JSON.stringify({ [NS]: { count: 2 } }))
  await writeFile(join(dir, 'bad-ns.json'), JSON.stringify({ guestbook: { count: 2 } }))
  await writeFile(join(dir, 'not-json.json'), '{ count: 2')
  await writeFile(
    join(dir, 'builtin.ts'),
    "import { readFileSync } from 'node:fs'\nexport const f = () => typeof readFileSync\n",
  )
})
after(() => rm(dir, { recursive: true, force: true }))

async function covenant(...args: string[]) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [main, 'sandbox', ...args], { timeout: 120_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('covenant sandbox', () => {
  it('prints one JSON object with --json', async () => {
    const r = await covenant(join(dir, 'fn.ts'), 'add', '2', '3', '--json')
    assert.equal(r.code, 0)
    const lines = r.stdout.trim().split('\n')
    assert.equal(lines.length, 1)
    const out = JSON.parse(lines[0])
    assert.deepEqual(
      { ...out, ms: typeof out.ms },
      { ok: true, value: 5, fuel: 0, logs: ['adding'], ms: 'number' },
    )
  })

  it('parses each arg as JSON, falling back to a string', async () => {
    const r = await covenant(join(dir, 'fn.ts'), 'echo', 'word', '{"a":[1]}', 'true', '--json')
    assert.deepEqual(JSON.parse(r.stdout).value, ['word', { a: [1] }, true])
  })

  it('reports a sandbox error in JSON with exit 0, and honours --fuel', async () => {
    const r = await covenant(
      join(dir, 'fn.ts'),
      'spin',
      '--json',
      '--fuel',
      '20',
      // a wall clock no machine reaches in 20 ticks: the fuel decides
      '--timeout',
      '120000',
      '--seed',
      'x',
    )
    assert.equal(r.code, 0)
    const out = JSON.parse(r.stdout)
    assert.deepEqual([out.ok, out.error.code, out.fuel], [false, 'FUEL_EXHAUSTED', 20])
  })

  it('prints the value for a person, logs on stderr, and exits 1 on a sandbox error', async () => {
    const ok = await covenant(join(dir, 'fn.ts'), 'add', '1', '1')
    assert.deepEqual([ok.code, ok.stdout, ok.stderr], [0, '2\n', 'log: adding\n'])
    const bad = await covenant(join(dir, 'builtin.ts'), 'f')
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /error INVALID_CODE: .*"node:fs"/)
  })

  it('fails the command itself on a missing file', async () => {
    const r = await covenant(join(dir, 'missing.ts'), 'f', '--json')
    assert.equal(r.code, 1)
    assert.equal(JSON.parse(r.stdout).error.code, 'NOT_FOUND')
  })

  it('reads from --store and shows what the call would write and enqueue', async () => {
    const store = join(dir, 'values.json')
    const json = await covenant(join(dir, 'guestbook.ts'), 'sign', 'Ada', '--store', store, '--json')
    assert.equal(json.code, 0, json.stderr)
    const out = JSON.parse(json.stdout)
    assert.deepEqual(out.value, 3)
    assert.deepEqual(out.effects, {
      reads: [{ ns: NS, key: 'count', version: 1 }],
      writes: [
        { ns: NS, key: 'entries/2', value: { name: 'Ada' } },
        { ns: NS, key: 'count', value: 3 },
        { ns: NS, key: 'draft', value: null },
      ],
      jobs: [{ fn: NS, export: 'thank', args: ['Ada'], options: {} }],
    })
    const person = await covenant(join(dir, 'guestbook.ts'), 'sign', 'Ada', '--store', store)
    assert.deepEqual([person.code, person.stdout], [0, '3\n'])
    assert.equal(
      person.stderr,
      [
        `read: ${NS} "count" at version 1`,
        `write: ${NS} "entries/2" = {"name":"Ada"}`,
        `write: ${NS} "count" = 3`,
        `delete: ${NS} "draft"`,
        `job: ${NS} thank ["Ada"] {}`,
        '',
      ].join('\n'),
    )
  })

  it('says a read needs --store, and refuses a --store file that is missing or wrong', async () => {
    const none = await covenant(join(dir, 'guestbook.ts'), 'sign', 'Ada', '--json')
    assert.equal(none.code, 0)
    const out = JSON.parse(none.stdout)
    assert.equal(out.error.code, 'USER_ERROR')
    assert.match(out.error.message, /no datastore to read from.*--store values\.json/)
    for (const [file, code, message] of [
      ['missing.json', 'NOT_FOUND', /cannot read/],
      ['bad-ns.json', 'INVALID_INPUT', /guestbook: not a namespace id/],
      ['not-json.json', 'INVALID_INPUT', /not JSON/],
    ] as const) {
      const r = await covenant(join(dir, 'guestbook.ts'), 'sign', 'Ada', '--store', join(dir, file), '--json')
      assert.equal(r.code, 1, file)
      const e = JSON.parse(r.stdout).error
      assert.equal(e.code, code, file)
      assert.match(e.message, message)
    }
  })

  it('has help', async () => {
    const r = await covenant('--help')
    assert.equal(r.code, 0)
    assert.match(r.stdout, /--fuel <ticks>/)
    assert.match(r.stdout, /--json/)
    assert.match(r.stdout, /--store <file>/)
  })
})
