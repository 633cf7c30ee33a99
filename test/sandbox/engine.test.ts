/**
 * The engine restores one QuickJS instance from a snapshot of its memory between calls instead of
 * instantiating again. These tests run the engine in this process (as a worker would) and hold it
 * to two promises: a restored instance gives exactly the result a fresh instance gives, and a call
 * sees nothing of any earlier call. A fault or a grown memory must cost the instance.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import { PRELUDE, QUICKJS_WASM } from '../../src/sandbox/build.ts'
import { dagCborSize } from '../../src/sandbox/effects.ts'
import {
  createEngine,
  type EngineCall,
  type EngineHost,
  pinHostTimeZoneToUTC,
} from '../../src/sandbox/engine.ts'
import { resolveLimits, type SandboxLimits } from '../../src/sandbox/limits.ts'

pinHostTimeZoneToUTC()
const wasm = new WebAssembly.Module(QUICKJS_WASM)

const MiB = 1024 * 1024

function call(
  code: string,
  exportName = 'f',
  args: unknown[] = [],
  limits: Partial<SandboxLimits> = {},
): EngineCall {
  return {
    code,
    exportName,
    argsJson: JSON.stringify(args),
    seedWords: [1, 2, 3, 4],
    now: 1_700_000_000_000,
    requestJson: JSON.stringify({ id: 'req', caller: 'tester' }),
    limits: resolveLimits(limits),
  }
}

const PROBE = `
let calls = 0
const big = []
export function probe(n, ctx) {
  calls++
  let acc = 0
  for (let i = 0; i < n; i++) acc = (acc + i * 31) % 1000003
  for (let i = 0; i < 2000; i++) big.push({ i, s: 'x'.repeat(i % 50) })
  ctx.log('probe', acc, Math.random())
  console.log('seen', typeof globalThis.leak, ({}).polluted ?? null, Symbol.for('k').description)
  return {
    calls, acc, bigLength: big.length,
    random: [Math.random(), ctx.random(), Math.random()],
    now: [Date.now(), new Date().toISOString(), String(new Date(2020, 0, 1, 12))],
    leak: typeof globalThis.leak, polluted: ({}).polluted ?? null, arrays: [].polluted ?? null,
    json: JSON.stringify({ a: 1 }), uuid: crypto.randomUUID(),
  }
}
export function pollute(ctx) {
  globalThis.leak = 1
  Object.prototype.polluted = 'yes'
  Array.prototype.polluted = 'yes'
  JSON.stringify = () => 'hijacked'
  Math.random = () => 0
  Date.now = () => 1
  // jobs still queued when the call returns
  for (let i = 0; i < 5; i++) Promise.resolve().then(() => { globalThis.leak = 2 })
  Promise.prototype.then = function () { throw new Error('hijacked then') }
  globalThis.crypto = undefined
  ctx.log('polluted')
  return 'done'
}
export async function later() { await null; globalThis.leak = 3; return 'later' }
export function spin() { for (;;) {} }
export function chatty(ctx) { for (;;) ctx.log('x'.repeat(1000)) }
export function throws() { throw new TypeError('no') }
export function never() { return new Promise(() => {}) }
export function grow() { const a = []; for (let i = 0; i < 40; i++) a.push(new Uint8Array(1 << 20)); return a.length }
export function bomb() { const a = []; for (;;) a.push(new Array(100000).fill(1)) }
export function deep() { const r = (n) => r(n + 1) + 1; return r(0) }
export function nested(n) { return n === 0 ? 0 : nested(n - 1) + 1 }
`

/** Calls in an order that mixes clean results, errors, stops, and faults between them. */
const SEQUENCE: EngineCall[] = [
  call(PROBE, 'probe', [100_000]),
  call(PROBE, 'pollute'),
  call(PROBE, 'probe', [100_000]),
  call(PROBE, 'later'),
  call(PROBE, 'probe', [200]),
  call(PROBE, 'spin', [], { fuel: 30 }),
  call(PROBE, 'probe', [100_000]),
  call(PROBE, 'chatty', [], { logBytes: 5000 }),
  call(PROBE, 'throws'),
  call(PROBE, 'never'),
  call(PROBE, 'nope'),
  call('export const f = (', 'f'),
  call('import "node:fs"; export const f = () => 1', 'f'),
  call(PROBE, 'probe', [100_000]),
  call(PROBE, 'grow'),
  call(PROBE, 'probe', [100_000]),
  call(PROBE, 'bomb', [], { memoryBytes: 32 * MiB, fuel: 1_000_000 }),
  call(PROBE, 'probe', [100_000]),
  call(PROBE, 'deep', [], { stackBytes: 64 * 1024 }),
  call(PROBE, 'probe', [100_000]),
  call(PROBE, 'probe', [100_000], { memoryBytes: 32 * MiB }),
  call(PROBE, 'probe', [100_000]),
]

async function runAll(fresh: boolean) {
  const engine = createEngine(wasm, PRELUDE, { fresh })
  await engine.prewarm(resolveLimits().memoryBytes)
  const results: string[] = []
  const built: number[] = []
  for (const c of SEQUENCE) {
    const r = await engine.run(c)
    assert.notEqual(r.discardWorker, true, JSON.stringify(r))
    results.push(JSON.stringify(r))
    await engine.prewarm(c.limits.memoryBytes)
    built.push(engine.stats().instantiated)
  }
  return { results, stats: engine.stats(), built }
}

describe('engine snapshot and restore', () => {
  it('gives a restored instance exactly the results of a fresh one, call after call', async () => {
    const fresh = await runAll(true)
    const restored = await runAll(false)
    for (let i = 0; i < SEQUENCE.length; i++) {
      assert.equal(restored.results[i], fresh.results[i], `call ${i} (${SEQUENCE[i].exportName})`)
    }
    assert.equal(fresh.stats.restored, 0)
    assert.ok(fresh.stats.instantiated > SEQUENCE.length)
    // instances built so far, after each call: only a grown memory (grow), a fault (bomb, deep)
    // or a change of memory limit (bomb and the 32 MiB probe, each way) costs a new one
    assert.deepEqual(restored.built, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 4, 5, 6, 6, 7, 8])
    // and the outcomes are the ones each call was written to reach
    const codes = fresh.results.map((r) => {
      const p = JSON.parse(r) as { ok: boolean; error?: { code: string } }
      return p.ok ? 'ok' : p.error!.code
    })
    assert.deepEqual(codes, [
      'ok',
      'ok',
      'ok',
      'ok',
      'ok',
      'FUEL_EXHAUSTED',
      'ok',
      'LOG_LIMIT',
      'USER_ERROR',
      'NEVER_SETTLED',
      'NO_SUCH_EXPORT',
      'INVALID_CODE',
      'INVALID_CODE',
      'ok',
      'ok',
      'ok',
      'MEMORY_LIMIT',
      'ok',
      'STACK_OVERFLOW',
      'ok',
      'ok',
      'ok',
    ])
  })

  it('lets no state of a call reach the next: globals, prototypes, modules, jobs, randomness, time, logs, fuel', async () => {
    const engine = createEngine(wasm, PRELUDE)
    const probe = call(PROBE, 'probe', [100_000])
    const first = await engine.run(probe)
    for (const c of [call(PROBE, 'pollute'), call(PROBE, 'later'), call(PROBE, 'spin', [], { fuel: 5 })]) {
      await engine.prewarm(c.limits.memoryBytes)
      await engine.run(c)
    }
    await engine.prewarm(probe.limits.memoryBytes)
    const again = await engine.run(probe)
    assert.deepEqual(again, first)
    assert.ok(first.ok)
    const v = first.value as Record<string, unknown>
    assert.equal(v.calls, 1, 'module state starts over')
    assert.equal(v.bigLength, 2000)
    assert.equal(v.leak, 'undefined')
    assert.equal(v.polluted, null)
    assert.equal(v.arrays, null)
    assert.equal(v.json, '{"a":1}')
    assert.deepEqual((v.now as unknown[])[0], 1_700_000_000_000)
    assert.deepEqual(first.logs.length, 2, 'logs are per call')
    assert.ok(first.fuel > 0, 'the probe does measurable work')
    assert.deepEqual(engine.stats(), { instantiated: 1, restored: 4 })
  })

  it('puts every byte of memory back as it was before the first call, zeros included', async () => {
    // (not compared with another fresh instance: QuickJS seeds its own Math.random state from the
    // clock in every new context, three bytes that differ between instances; the prelude replaces
    // Math.random, so nothing reads them)
    const reused = createEngine(wasm, PRELUDE)
    const limits = resolveLimits()
    await reused.prewarm(limits.memoryBytes)
    const pristine = await reused.nextMemory()
    // 8 MiB allocated and dropped: the heap reaches far past its break, the memory does not grow
    const churn = call(
      'export function f() { let a = []; for (let i = 0; i < 8; i++) a.push(new Uint8Array(1 << 20).fill(7)); a = null; return 1 }',
    )
    for (const c of [
      call(PROBE, 'probe', [1000]),
      churn,
      call(PROBE, 'pollute'),
      call(PROBE, 'nested', [1000]),
    ]) {
      await reused.prewarm(limits.memoryBytes)
      await reused.run(c)
    }
    await reused.prewarm(limits.memoryBytes)
    assert.deepEqual(reused.stats(), { instantiated: 1, restored: 4 })
    const restored = await reused.nextMemory()
    assert.ok(pristine !== undefined && restored !== undefined)
    assert.equal(restored.length, pristine.length)
    assert.ok(
      Buffer.from(restored).equals(Buffer.from(pristine)),
      'restored memory differs from the snapshot',
    )
  })

  it('throws the instance away after a memory or stack fault and after the memory grew', async () => {
    const engine = createEngine(wasm, PRELUDE)
    const limits = resolveLimits()
    await engine.prewarm(limits.memoryBytes)
    const ok = call(PROBE, 'probe', [10])
    const cases: Array<[EngineCall, string]> = [
      [call(PROBE, 'bomb', [], { fuel: 1_000_000 }), 'MEMORY_LIMIT'],
      [call(PROBE, 'deep', [], { stackBytes: 64 * 1024 }), 'STACK_OVERFLOW'],
      [call(PROBE, 'grow'), 'ok'],
    ]
    for (const [c, code] of cases) {
      const before = engine.stats().instantiated
      const r = await engine.run(c)
      assert.equal(r.ok ? 'ok' : r.error.code, code)
      await engine.prewarm(limits.memoryBytes)
      assert.equal(engine.stats().instantiated, before + 1, `a new instance after ${c.exportName}`)
      const after = await engine.run(ok)
      assert.ok(after.ok)
      await engine.prewarm(limits.memoryBytes)
      assert.equal(engine.stats().instantiated, before + 1, 'a clean call keeps its instance')
    }
  })

  it('keeps restoring its instance after calls that read, wrote and enqueued, with the results of a fresh one', async () => {
    const ns = cidForBytes(new Uint8Array([4]), 'dag-cbor').toString()
    const STORE = `const NS = '${ns}'
      export async function rw(ctx) {
        const [a, b] = await Promise.all([ctx.store.get(NS, 'a'), ctx.store.get(NS, 'b')])
        ctx.store.put(NS, 'c', { a, b, r: Math.random() })
        ctx.enqueue(NS, 'next', [a])
        return [a, b, await ctx.store.get(NS, 'c')]
      }
      export async function waits(ctx) { ctx.store.get(NS, 'a'); await new Promise(() => {}) }
      export function local(ctx) { ctx.store.put(NS, 'k', 1); return 'local' }`
    const host: EngineHost = {
      async read(batch) {
        await new Promise((resolve) => setTimeout(resolve, 1))
        return {
          answers: batch.map(({ key }) => {
            const value = { key, n: key.charCodeAt(0) }
            return { version: 3, bytes: dagCborSize(value)!, json: JSON.stringify(value) }
          }),
        }
      },
    }
    const sequence: Array<[EngineCall, EngineHost | undefined]> = [
      [call(STORE, 'rw'), host],
      [call(PROBE, 'probe', [1000]), undefined],
      [call(STORE, 'waits'), host],
      [call(STORE, 'local'), undefined],
      [call(STORE, 'rw'), host],
      [call(PROBE, 'pollute'), undefined],
      [call(STORE, 'rw'), host],
    ]
    const runAll = async (fresh: boolean) => {
      const engine = createEngine(wasm, PRELUDE, { fresh })
      await engine.prewarm(resolveLimits().memoryBytes)
      const before = await engine.nextMemory()
      const out: string[] = []
      for (const [c, h] of sequence) {
        await engine.prewarm(c.limits.memoryBytes)
        out.push(JSON.stringify(await engine.run(c, h)))
      }
      await engine.prewarm(resolveLimits().memoryBytes)
      return { out, stats: engine.stats(), before, after: await engine.nextMemory() }
    }
    const [fresh, restored] = [await runAll(true), await runAll(false)]
    assert.deepEqual(restored.out, fresh.out)
    assert.deepEqual(restored.stats, { instantiated: 1, restored: sequence.length })
    const codes = restored.out.map((r) => {
      const p = JSON.parse(r) as { ok: boolean; error?: { code: string }; effects?: unknown }
      return p.ok ? (p.effects === undefined ? 'ok' : 'ok+effects') : p.error!.code
    })
    assert.deepEqual(codes, [
      'ok+effects',
      'ok',
      'NEVER_SETTLED',
      'ok+effects',
      'ok+effects',
      'ok',
      'ok+effects',
    ])
    assert.ok(
      restored.before !== undefined &&
        restored.after !== undefined &&
        Buffer.from(restored.after).equals(Buffer.from(restored.before)),
      'after calls that used the host, the restored memory is the snapshot byte for byte',
    )
  })

  it('throws the instance away after a read the host failed, and keeps it after reads it answered', async () => {
    const ns = cidForBytes(new Uint8Array([5]), 'dag-cbor').toString()
    const code = `export async function f(ctx) { return ctx.store.get('${ns}', 'k') }`
    const engine = createEngine(wasm, PRELUDE)
    const limits = resolveLimits()
    await engine.prewarm(limits.memoryBytes)
    const failing: EngineHost = {
      read: async () => ({ error: { code: 'NAMESPACE_NOT_FOUND', message: 'no such namespace' } }),
    }
    const answering: EngineHost = {
      read: async (batch) => ({ answers: batch.map(() => ({ version: 1, bytes: 1, json: '7' })) }),
    }
    const failed = await engine.run(call(code), failing)
    assert.deepEqual(!failed.ok && failed.error.code, 'NAMESPACE_NOT_FOUND')
    await engine.prewarm(limits.memoryBytes)
    assert.deepEqual(engine.stats(), { instantiated: 2, restored: 0 })
    const answered = await engine.run(call(code), answering)
    assert.deepEqual(answered.ok && answered.value, 7)
    await engine.prewarm(limits.memoryBytes)
    assert.deepEqual(engine.stats(), { instantiated: 2, restored: 1 })
  })
})
