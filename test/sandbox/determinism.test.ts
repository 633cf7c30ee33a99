/**
 * The same call must give byte-identical results (value, logs, error, fuel) in any worker, in
 * another process, and under another time zone or locale.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { cidForBytes } from '../../src/content/index.ts'
import {
  createSandbox,
  type SandboxCall,
  type StoreReadAnswer,
  type StoreReader,
} from '../../src/sandbox/index.ts'

const exec = promisify(execFile)
const child = new URL('../fixtures/sandbox-child.ts', import.meta.url).pathname

const code = `
export function probe(n, ctx) {
  let acc = 0
  for (let i = 0; i < n; i++) acc = (acc + i * 31) % 1000003
  const d = new Date(2020, 0, 1, 12, 30)
  ctx.log('probe', { acc }, [ctx.random(), Math.random()])
  return {
    acc,
    random: [Math.random(), ctx.random()],
    now: [Date.now(), new Date().toISOString(), ctx.now, String(new Date(0))],
    local: [d.getTime(), d.getHours(), d.getTimezoneOffset(), d.toString(), d.toLocaleString(), d.toLocaleDateString()],
    locale: ['i'.toLocaleUpperCase(), 'ä'.localeCompare('z'), (1234567.891).toLocaleString(), typeof Intl],
    uuid: crypto.randomUUID(),
    request: ctx.request,
  }
}
export function fails(ctx) { ctx.log('before'); for (;;) {} }
`
// a wall clock no machine reaches: the result must not depend on the machine's speed
const NEVER_MS = 120_000
const calls: SandboxCall[] = [
  {
    code,
    exportName: 'probe',
    args: [400000],
    seed: 'req-1',
    now: 1_700_000_000_000,
    request: { id: 'req-1', caller: 'alice' },
    limits: { timeoutMs: NEVER_MS },
  },
  { code, exportName: 'fails', args: [], seed: 'req-2', now: 5, limits: { fuel: 150, timeoutMs: NEVER_MS } },
]

const sandbox = createSandbox({ workers: 2 })
after(() => sandbox.stop())

async function inChild(call: SandboxCall, env: Record<string, string>): Promise<string> {
  const { stdout } = await exec(process.execPath, [child, JSON.stringify(call)], {
    env: { ...process.env, ...env },
    timeout: 2 * NEVER_MS,
  })
  return stdout.trim()
}

describe('determinism', () => {
  it('gives identical results, with fuel, in every worker and on repeat', async () => {
    for (const call of calls) {
      // four at once over two workers: each worker runs the call at least twice
      const results = await Promise.all([1, 2, 3, 4].map(() => sandbox.run(call)))
      const first = JSON.stringify(results[0])
      for (const r of results) assert.equal(JSON.stringify(r), first)
    }
    const probe = await sandbox.run(calls[0])
    assert.ok(probe.ok && probe.fuel > 0, 'the probe does measurable work')
    const failed = await sandbox.run(calls[1])
    assert.ok(!failed.ok && failed.error.code === 'FUEL_EXHAUSTED' && failed.fuel === 150)
  })

  it('gives identical results in other processes, time zones and locales', async () => {
    for (const call of calls) {
      const here = JSON.stringify(await sandbox.run(call))
      const [utc, newYork, kolkata] = await Promise.all([
        inChild(call, { TZ: 'UTC', LANG: 'C', LC_ALL: 'C' }),
        inChild(call, { TZ: 'America/New_York', LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' }),
        inChild(call, { TZ: 'Asia/Kolkata', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8' }),
      ])
      assert.equal(utc, here)
      assert.equal(newYork, here)
      assert.equal(kolkata, here)
    }
  })

  it('gives the same results from restored instances as from fresh ones', async () => {
    const fresh = createSandbox({ workers: 1, freshInstances: true })
    try {
      const pollute: SandboxCall = {
        code: 'export function f(ctx) { globalThis.x = 1; Object.prototype.y = 2; Math.random = () => 0; ctx.log("p"); return 1 }',
        exportName: 'f',
        args: [],
        seed: 's',
        now: 0,
        limits: { timeoutMs: NEVER_MS },
      }
      // each call after a polluting one, so the restored worker has been dirtied first
      for (const call of [...calls, calls[0], calls[1]]) {
        const [, restored] = [await sandbox.run(pollute), await sandbox.run(call)]
        const [, built] = [await fresh.run(pollute), await fresh.run(call)]
        assert.equal(JSON.stringify(restored), JSON.stringify(built))
      }
    } finally {
      await fresh.stop()
    }
  })

  it('gives identical results whatever the timing of the host’s answers to reads', async () => {
    const ns = cidForBytes(new Uint8Array([9]), 'dag-cbor').toString()
    const code = `const NS = '${ns}'
      export async function f(rounds, ctx) {
        const seen = []
        for (let r = 0; r < rounds; r++) {
          // reads in parallel, a race between two, a chain of thens, and work between them
          const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((k) => ctx.store.get(NS, k + r)))
          const first = await Promise.race([ctx.store.get(NS, 'x' + r), ctx.store.get(NS, 'y' + r)])
          ctx.store.get(NS, 'log' + r).then((v) => ctx.log('then', r, v))
          let acc = 0
          for (let i = 0; i < 30000; i++) acc = (acc + i * a) % 1000003
          ctx.store.put(NS, 'sum' + (r % 3), a + b + c + acc + Math.random())
          if (r % 4 === 0) ctx.enqueue(NS, 'later', [r, first])
          seen.push([a, b, c, first, await ctx.store.get(NS, 'sum' + (r % 3))])
        }
        return seen
      }
      export async function fails(ctx) {
        return Promise.all(['ok1', 'bad1', 'ok2', 'bad2'].map((k) => ctx.store.get(NS, k)))
      }`
    const answer = (key: string): StoreReadAnswer =>
      key.startsWith('bad')
        ? { error: { code: 'NAMESPACE_NOT_FOUND', message: key } }
        : { value: key.length * 10 + key.charCodeAt(0), version: key.length }
    const immediate: StoreReader = (_ns, key) => answer(key)
    const jittery: StoreReader = (_ns, key) =>
      new Promise((resolve) => setTimeout(() => resolve(answer(key)), Math.floor(Math.random() * 8)))
    const fresh = createSandbox({ workers: 1, freshInstances: true })
    try {
      for (const [exportName, args] of [
        ['f', [12]],
        ['fails', []],
      ] as const) {
        const call: SandboxCall = {
          code,
          exportName,
          args: [...args],
          seed: 'reads',
          now: 0,
          limits: { timeoutMs: NEVER_MS, fuel: 1_000_000 },
        }
        const expected = JSON.stringify(await sandbox.run({ ...call, read: immediate }))
        // six at once over two workers, each reader answering in its own random order and time
        const results = await Promise.all([
          ...[1, 2, 3, 4, 5, 6].map(() => sandbox.run({ ...call, read: jittery })),
          fresh.run({ ...call, read: jittery }),
        ])
        for (const r of results) assert.equal(JSON.stringify(r), expected)
        const parsed = JSON.parse(expected) as {
          ok: boolean
          fuel: number
          error?: { code: string; message: string }
        }
        if (exportName === 'f') assert.ok(parsed.ok && parsed.fuel > 0, expected.slice(0, 300))
        else
          assert.deepEqual(parsed.error, {
            code: 'NAMESPACE_NOT_FOUND',
            message: `reading "bad1" of ${ns}: bad1`,
          })
      }
    } finally {
      await fresh.stop()
    }
  })

  it('pins local time to UTC and time to the request', async () => {
    const r = await sandbox.run(calls[0])
    assert.ok(r.ok)
    const v = r.value as { now: unknown[]; local: unknown[]; request: unknown }
    assert.deepEqual(v.now, [
      1_700_000_000_000,
      '2023-11-14T22:13:20.000Z',
      1_700_000_000_000,
      'Thu Jan 01 1970 00:00:00 GMT+0000',
    ])
    assert.equal(v.local[0], Date.UTC(2020, 0, 1, 12, 30))
    assert.equal(v.local[1], 12)
    assert.equal(v.local[2], 0)
    assert.deepEqual(v.request, { id: 'req-1', caller: 'alice' })
  })

  it('changes randomness with the seed and only with it', async () => {
    const a = await sandbox.run(calls[0])
    const b = await sandbox.run({ ...calls[0], seed: 'req-other' })
    assert.ok(a.ok && b.ok)
    assert.notDeepEqual((a.value as { random: number[] }).random, (b.value as { random: number[] }).random)
    assert.deepEqual((a.value as { acc: number }).acc, (b.value as { acc: number }).acc)
  })
})
