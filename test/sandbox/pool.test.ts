/**
 * The pool and the function-facing API: ctx, async exports, globals, limits, isolation, stats.
 * Calls get a wall clock no machine reaches unless the wall clock is what a test is about, so
 * that only the limit under test decides.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { createSandbox, type SandboxCall } from '../../src/sandbox/index.ts'

const sandbox = createSandbox({ workers: 2 })
after(() => sandbox.stop())

const NEVER_MS = 120_000
const MiB = 1024 * 1024

const call = (code: string, exportName = 'f', args: unknown[] = [], extra: Partial<SandboxCall> = {}) =>
  sandbox.run({
    code,
    exportName,
    args,
    seed: 'seed',
    now: 86_400_000,
    ...extra,
    limits: { timeoutMs: NEVER_MS, ...extra.limits },
  })

/** Resolves on the event loop's next check phase: after pending I/O and messages, before timers due later. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

describe('sandbox pool', () => {
  it('passes args and ctx, and captures ctx.log and console', async () => {
    const r = await call(
      `export function f(a, b, ctx) {
        ctx.log('sum', a + b, { ok: true })
        console.warn('warned', [1, 'x'])
        return { sum: a + b, now: ctx.now, id: ctx.request.id, caller: ctx.request.caller, r: typeof ctx.random() }
      }`,
      'f',
      [2, 3],
      { request: { id: 'req', caller: 'bob' } },
    )
    assert.deepEqual(r, {
      ok: true,
      value: { sum: 5, now: 86_400_000, id: 'req', caller: 'bob', r: 'number' },
      fuel: 0,
      logs: ['sum 5 {"ok":true}', 'warned [1,"x"]'],
    })
  })

  it('defaults ctx.request to the seed', async () => {
    const r = await call('export const f = (ctx) => ctx.request')
    assert.deepEqual(r.ok && r.value, { id: 'seed', caller: '' })
  })

  it('runs async exports, default exports and top-level await', async () => {
    const r1 = await call(
      'export async function f(x) { const y = await Promise.resolve(x * 2); return [y, await null] }',
      'f',
      [21],
    )
    assert.deepEqual(r1.ok && r1.value, [42, null])
    const r2 = await call('export default function (s) { return s.toUpperCase() }', 'default', ['hi'])
    assert.deepEqual(r2.ok && r2.value, 'HI')
    const r3 = await call('const v = await Promise.resolve(7); export const f = () => v')
    assert.deepEqual(r3.ok && r3.value, 7)
    const r4 = await call('export async function f() { throw new RangeError("nope") }')
    assert.deepEqual(!r4.ok && r4.error, {
      code: 'USER_ERROR',
      message: 'the function threw an error: RangeError: nope',
    })
  })

  it('returns JSON values: undefined becomes null, functions are dropped', async () => {
    const r = await call('export const f = () => undefined')
    assert.deepEqual(r.ok && r.value, null)
    const r2 = await call(
      'export const f = () => ({ a: undefined, b: () => 1, c: [undefined, NaN], d: new Date(0) })',
    )
    assert.deepEqual(r2.ok && r2.value, { c: [null, null], d: '1970-01-01T00:00:00.000Z' })
  })

  it('offers deterministic standard globals', async () => {
    const r = await call(`export function f() {
      const bytes = new TextEncoder().encode('héllo €😀')
      const u = new URL('../x/./y?q=a b&r=1#frag', 'https://User:pw@Example.COM:443/a/b/c')
      u.searchParams.append('s', 'ü&')
      const c = structuredClone({ d: new Date(5), m: new Map([[1, { deep: [1] }]]), s: new Set([1]), u8: new Uint8Array([1, 2]) })
      const order = []
      queueMicrotask(() => order.push('micro'))
      order.push('sync')
      return {
        bytes: Array.from(bytes),
        text: new TextDecoder().decode(bytes),
        b64: [btoa('hello'), atob('aGVsbG8=')],
        href: u.href,
        parts: [u.protocol, u.username, u.host, u.pathname, u.search, u.hash, u.origin],
        params: [...new URLSearchParams('a=1&b=2&a=3').getAll('a')],
        clone: [c.d instanceof Date, c.m.get(1).deep[0], c.s.has(1), c.u8[1]],
        order,
        uuid: /^[0-9a-f-]{36}$/.test(crypto.randomUUID()),
        same: globalThis === Function('return this')(),
      }
    }`)
    assert.ok(r.ok, JSON.stringify(r))
    assert.deepEqual(r.value, {
      bytes: [104, 195, 169, 108, 108, 111, 32, 226, 130, 172, 240, 159, 152, 128],
      text: 'héllo €😀',
      b64: ['aGVsbG8=', 'hello'],
      href: 'https://User:pw@example.com/a/x/y?q=a+b&r=1&s=%C3%BC%26#frag',
      parts: [
        'https:',
        'User',
        'example.com',
        '/a/x/y',
        '?q=a+b&r=1&s=%C3%BC%26',
        '#frag',
        'https://example.com',
      ],
      params: ['1', '3'],
      clone: [true, 1, true, 2],
      order: ['sync'],
      uuid: true,
      same: true,
    })
  })

  it('gives each call a fresh context', async () => {
    const code = `export function set() { globalThis.leak = 1; Object.prototype.polluted = 1; Math.random = () => 0; Date.now = () => 1 }
      export function get() { return [typeof leak, ({}).polluted ?? null, Math.random() !== 0, Date.now()] }`
    for (let i = 0; i < 3; i++) assert.ok((await call(code, 'set')).ok)
    const r = await call(code, 'get')
    assert.deepEqual(r.ok && r.value, ['undefined', null, true, 86_400_000])
  })

  it('gives a fresh context to a call that comes before the worker restored its instance', async () => {
    // One worker, calls back to back: each comes while the worker may still be waiting to restore
    // the last call's instance (it waits a few ms after a result), so the call restores it itself.
    const one = createSandbox({ workers: 1 })
    try {
      const code = `export function set() { globalThis.leak = 1; Object.prototype.polluted = 1; return 1 }
        export function get() { return [typeof leak, ({}).polluted ?? null] }`
      const run = (exportName: string) =>
        one.run({ code, exportName, args: [], seed: 's', now: 0, limits: { timeoutMs: NEVER_MS } })
      for (let i = 0; i < 5; i++) {
        assert.ok((await run('set')).ok)
        const r = await run('get')
        assert.deepEqual(r.ok && r.value, ['undefined', null])
      }
    } finally {
      await one.stop()
    }
  })

  it('checks the call before running it', async () => {
    const code = 'export const f = (x) => x'
    const bad = await call(code, 'f', [{ toJSON: 1, fn: () => 1 }])
    assert.equal(!bad.ok && bad.error.code, 'INVALID_ARGS')
    const big = await call(code, 'f', ['x'.repeat(2000)], { limits: { argsBytes: 1000 } })
    assert.equal(!big.ok && big.error.code, 'INVALID_ARGS')
    const nan = await call(code, 'f', [Number.NaN])
    assert.equal(!nan.ok && nan.error.code, 'INVALID_ARGS')
    const huge = await call(`${code}//${'x'.repeat(3000)}`, 'f', [], { limits: { bundleBytes: 1000 } })
    assert.equal(!huge.ok && huge.error.code, 'BUNDLE_TOO_LARGE')
    const syntax = await call('export function f( {')
    assert.equal(!syntax.ok && syntax.error.code, 'INVALID_CODE')
    const missing = await call(code, 'g')
    assert.equal(!missing.ok && missing.error.code, 'NO_SUCH_EXPORT')
    const notFn = await call('export const g = 1', 'g')
    assert.equal(!notFn.ok && notFn.error.code, 'NO_SUCH_EXPORT')
    const limits = await call(code, 'f', [], { limits: { fuel: -1 } })
    assert.equal(!limits.ok && limits.error.code, 'INVALID_INPUT')
    const shape = await sandbox.run({ code: 1 } as unknown as SandboxCall)
    assert.equal(!shape.ok && shape.error.code, 'INVALID_INPUT')
  })

  it('enforces the output, log, fuel and stack limits it is given', async () => {
    const out = await call("export const f = () => 'x'.repeat(100)", 'f', [], { limits: { outputBytes: 50 } })
    assert.equal(!out.ok && out.error.code, 'OUTPUT_TOO_LARGE')
    const log = await call(
      "export const f = (ctx) => { ctx.log('a'.repeat(10)); ctx.log('b'.repeat(10)) }",
      'f',
      [],
      {
        limits: { logBytes: 15 },
      },
    )
    assert.deepEqual(!log.ok && [log.error.code, log.logs], ['LOG_LIMIT', ['aaaaaaaaaa']])
    const fuel = await call('export const f = () => { for (;;) {} }', 'f', [], { limits: { fuel: 10 } })
    assert.deepEqual(!fuel.ok && [fuel.error.code, fuel.fuel], ['FUEL_EXHAUSTED', 10])
    const depth =
      'export const f = () => { let d = 0; const r = () => { d++; r() }; try { r() } catch { return d } }'
    const shallow = await call(depth, 'f', [], { limits: { stackBytes: 64 * 1024 } })
    const deep = await call(depth, 'f', [])
    assert.ok(shallow.ok && deep.ok && (deep.value as number) > 4 * (shallow.value as number))
    assert.ok((deep.value as number) > 2000, `default stack allows ${deep.value} frames`)
  })

  it('gives a call 64 MiB of memory by default, engine included', async () => {
    const alloc = 'export const f = (mib) => new Uint8Array(mib * 1024 * 1024).length'
    const fits = await call(alloc, 'f', [48])
    assert.deepEqual(fits.ok && fits.value, 48 * MiB)
    const over = await call(alloc, 'f', [64])
    assert.equal(!over.ok && over.error.code, 'MEMORY_LIMIT')
    const raised = await call(alloc, 'f', [64], { limits: { memoryBytes: 128 * MiB } })
    assert.deepEqual(raised.ok && raised.value, 64 * MiB)
  })

  it('ends a call at its wall clock, replaces the worker and keeps the main thread responsive', async () => {
    const before = sandbox.stats().restarts
    let settled = false
    const hostile = Promise.all(
      [
        "export const f = () => /^(a+)+$/.test('a'.repeat(40) + 'b')",
        'export const f = () => { for (;;) {} }',
      ].map((code) => call(code, 'f', [], { limits: { fuel: 1_000_000_000, timeoutMs: 500 } })),
    ).finally(() => {
      settled = true
    })
    // While a worker is pinned, the main thread keeps turning: each check phase comes before the
    // wall-clock timer that ends the call, however slow the machine, unless the thread is blocked.
    let turnsWhilePinned = 0
    while (!settled) {
      await nextTurn()
      if (!settled && sandbox.stats().busy > 0) turnsWhilePinned++
    }
    const results = await hostile
    for (const r of results) assert.equal(!r.ok && r.error.code, 'TIMEOUT')
    assert.ok(turnsWhilePinned > 0, 'the event loop turned while the calls ran')
    assert.equal(sandbox.stats().restarts, before + 2)
    const ok = await call('export const f = () => 1')
    assert.deepEqual(ok.ok && ok.value, 1)
    assert.equal(sandbox.stats().workers, 2)
  })

  it('caches bundles in workers and reports stats', async () => {
    const code = 'export const f = (n) => n * 2'
    for (let i = 0; i < 4; i++) assert.deepEqual((await call(code, 'f', [i])).ok, true)
    const s = sandbox.stats()
    assert.equal(s.workers, 2)
    assert.equal(s.busy, 0)
    assert.equal(s.queued, 0)
    assert.ok(s.cachedModules >= 1)
  })

  it('runs calls in parallel and queues the rest', async () => {
    const pool = createSandbox({ workers: 2 })
    try {
      // nothing announces a started worker; poll until both are (the test's own timeout bounds it)
      while (pool.stats().ready < 2) await nextTurn()
      const code =
        'export const f = (n) => { let a = 0; for (let i = 0; i < 200000; i++) a += i % n; return a }'
      const all = Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          pool.run({
            code,
            exportName: 'f',
            args: [i + 1],
            seed: 's',
            now: 0,
            limits: { timeoutMs: NEVER_MS },
          }),
        ),
      )
      // run() checks each call on microtasks only: no worker can answer before this looks
      for (let i = 0; i < 10; i++) await null
      const s = pool.stats()
      assert.deepEqual({ busy: s.busy, queued: s.queued }, { busy: 2, queued: 4 })
      const results = await all
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, true, true, true, true, true],
      )
      assert.deepEqual({ busy: pool.stats().busy, queued: pool.stats().queued }, { busy: 0, queued: 0 })
    } finally {
      await pool.stop()
    }
  })

  it('resolves calls after stop with NOT_STARTED', async () => {
    const other = createSandbox({ workers: 1 })
    const pending = other.run({
      code: 'export const f = () => { for (;;) {} }',
      exportName: 'f',
      args: [],
      seed: 's',
      now: 0,
      limits: { fuel: 1e9 },
    })
    await other.stop()
    assert.equal(((await pending) as { error: { code: string } }).error.code, 'NOT_STARTED')
    const late = await other.run({
      code: 'export const f = () => 1',
      exportName: 'f',
      args: [],
      seed: 's',
      now: 0,
    })
    assert.equal(!late.ok && late.error.code, 'NOT_STARTED')
  })
})
