/**
 * Hostile code: each program tries to hang, exhaust, escape or poison the sandbox. Every case
 * asserts the outcome's code (or, for escapes, the harmless value the program sees) and then
 * that a benign call on the same pool still succeeds.
 *
 * Only the limit a case is about may decide it. Every case but the wall-clock ones gets a wall
 * clock no machine reaches (some memory bombs are single built-in calls that run for seconds on a
 * loaded machine before the memory stops them), and the wall-clock ones get fuel no machine uses up.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import { createSandbox, type LimitOverrides, type StoreReader } from '../../src/sandbox/index.ts'

const sandbox = createSandbox({ workers: 2 })
after(() => sandbox.stop())

/** A wall clock that never decides a case: fuel, memory, stack, output or logs stop it first. */
const NEVER_MS = 120_000
const MEMORY: LimitOverrides = { fuel: 2000, memoryBytes: 32 * 1024 * 1024, timeoutMs: NEVER_MS }
const WALL: LimitOverrides = { fuel: 1_000_000_000, timeoutMs: 500 }
/** Neither fuel nor the wall clock can end these: only the memory limit may. */
const ONLY_MEMORY: LimitOverrides = { ...MEMORY, fuel: 1_000_000_000 }

interface Case {
  name: string
  /** a whole module, or the body of `export function f(ctx) { … }` */
  code: string
  module?: boolean
  /** an error code, or `ok` with the exact value the program must see */
  expect: string | { ok: unknown }
  limits?: LimitOverrides
  /** give the call {@link reader}, and `NS` to the program */
  read?: boolean
}

const NS = cidForBytes(new Uint8Array([7]), 'dag-cbor').toString()
/** `huge` is larger than a value may be, `big` is half a megabyte, any other key its length */
const reader: StoreReader = (_ns, key) => ({
  value: key === 'huge' ? 'z'.repeat(2 << 20) : key === 'big' ? 'b'.repeat(1 << 19) : key.length,
  version: 1,
})

const cases: Case[] = [
  // ---- endless work
  { name: 'plain infinite loop', code: 'for (;;) {}', expect: 'FUEL_EXHAUSTED' },
  {
    name: 'infinite loop after await',
    code: 'export async function f() { await null; for (;;) {} }',
    module: true,
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'infinite generator drained',
    code: 'function* g() { for (;;) yield 1 } for (const x of g()) {}',
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'loop in a getter',
    code: 'const o = { get x() { for (;;) {} } }; return o.x',
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'loop in toJSON run while the result is serialised',
    code: 'return { toJSON() { for (;;) {} } }',
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'loop in toString of a thrown object',
    code: 'throw { toString() { for (;;) {} } }',
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'loop in an error message getter',
    code: "const e = new Error('x'); Object.defineProperty(e, 'message', { get() { for (;;) {} } }); throw e",
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'loop in a Proxy trap hit by serialisation',
    code: 'return new Proxy({}, { ownKeys() { for (;;) {} } })',
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'loop in a sort comparator',
    code: '[3, 2, 1].sort(() => { for (;;) {} })',
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'loop in toJSON of a logged value',
    code: 'ctx.log({ toJSON() { for (;;) {} } })',
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'self-rescheduling microtask storm',
    code: 'const s = () => queueMicrotask(s); s(); return new Promise(() => {})',
    expect: 'FUEL_EXHAUSTED',
    limits: { fuel: 100, timeoutMs: NEVER_MS },
  },
  {
    name: 'catch-and-continue around an interrupt',
    code: 'for (;;) { try { for (;;) {} } catch {} }',
    expect: 'FUEL_EXHAUSTED',
  },
  // ---- stack
  {
    name: 'infinite recursion',
    code: 'const r = (n) => r(n + 1) + 1; return r(0)',
    expect: 'STACK_OVERFLOW',
  },
  {
    name: 'recursion through getters',
    code: 'const o = { get a() { return this.b }, get b() { return this.a } }; return o.a',
    expect: 'STACK_OVERFLOW',
  },
  {
    name: 'recursion inside an async function',
    code: 'export async function f() { const r = async (n) => r(n + 1); return await r(0) }',
    module: true,
    expect: 'STACK_OVERFLOW',
  },
  {
    name: 'deeply nested JSON.parse',
    code: "return JSON.parse('['.repeat(200000) + ']'.repeat(200000))",
    expect: 'STACK_OVERFLOW',
  },
  {
    name: 'recursion through toString',
    code: "const o = { toString() { return 'x' + o } }; return String(o)",
    expect: 'STACK_OVERFLOW',
  },
  // ---- memory
  {
    name: 'array of objects bomb',
    code: 'const a = []; for (;;) a.push({ x: a.length })',
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'string doubling (flattened)',
    code: "let s = 'x'; for (;;) { s += s; s.charCodeAt(s.length - 1) }",
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'string doubling as ropes hits the length limit',
    code: "let s = 'x'; for (;;) s += s",
    expect: 'USER_ERROR',
    limits: MEMORY,
  },
  {
    name: 'ever-growing promise chain',
    code: 'const s = () => Promise.resolve().then(s); s(); return new Promise(() => {})',
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'synchronous promise storm',
    code: 'for (let i = 0; ; i++) Promise.resolve(i).then(() => {})',
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'one enormous repeat',
    code: "return 'x'.repeat(1e9).length",
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'one enormous ArrayBuffer',
    code: 'return new ArrayBuffer(1e9).byteLength',
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'many typed arrays',
    code: 'const a = []; for (;;) a.push(new Uint8Array(1e6))',
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'linked object graph',
    code: "let o = {}; for (let i = 0; ; i++) o = { next: o, i, s: 'v' + i }",
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'Map growth',
    code: "const m = new Map(); for (let i = 0; ; i++) m.set(i, 'v' + i)",
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'Array(n).fill',
    code: 'return new Array(1e8).fill(0).length',
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'join of a huge sparse array',
    code: "return Array(1e8).join('x').length",
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  {
    name: 'catching out-of-memory and allocating again',
    code: "const a = []; for (;;) { try { a.push('y'.repeat(1e6) + a.length) } catch { a.push(new Array(1e6)) } }",
    expect: 'MEMORY_LIMIT',
    limits: MEMORY,
  },
  // At the cap, each allocation fails without an interrupt check in between; a program that swallows
  // the failures used to spin there until the wall clock (the first growth that fails now ends it).
  {
    name: 'swallowing every out-of-memory error at the cap',
    code: 'const keep = []; for (;;) { try { keep.push(new Array(1000).fill(0)) } catch {} }',
    expect: 'MEMORY_LIMIT',
    limits: ONLY_MEMORY,
  },
  {
    name: 'swallowing out-of-memory errors from strings at the cap',
    code: "const keep = []; for (;;) { try { keep.push('x'.repeat(100) + keep.length) } catch {} }",
    expect: 'MEMORY_LIMIT',
    limits: ONLY_MEMORY,
  },
  {
    name: 'swallowing out-of-memory errors from a promise storm',
    code: 'for (let i = 0; ; i++) { try { Promise.resolve(i).then(() => {}) } catch {} }',
    expect: 'MEMORY_LIMIT',
    limits: ONLY_MEMORY,
  },
  // ---- wall clock (work that fuel cannot see, or fuel set out of reach)
  {
    name: 'catastrophic regular expression',
    code: "return /^(a+)+$/.test('a'.repeat(40) + 'b')",
    expect: 'TIMEOUT',
    limits: WALL,
  },
  { name: 'infinite loop with unbounded fuel', code: 'for (;;) {}', expect: 'TIMEOUT', limits: WALL },
  // ---- output and logs
  { name: 'huge string result', code: "return 'x'.repeat(2 * 1024 * 1024)", expect: 'OUTPUT_TOO_LARGE' },
  {
    name: 'many small results',
    code: 'return Array.from({ length: 300000 }, (_, i) => i)',
    expect: 'OUTPUT_TOO_LARGE',
  },
  {
    name: 'huge output via toJSON',
    code: "return { toJSON: () => 'y'.repeat(3e6) }",
    expect: 'OUTPUT_TOO_LARGE',
  },
  { name: 'log storm', code: "for (;;) ctx.log('spam')", expect: 'LOG_LIMIT' },
  { name: 'one enormous log line', code: "console.log('z'.repeat(1e6))", expect: 'LOG_LIMIT' },
  {
    name: 'log storm that swallows the limit error',
    code: "for (;;) { try { console.error('spam') } catch {} }",
    expect: 'LOG_LIMIT',
  },
  // ---- promises that never end
  { name: 'never-settling promise', code: 'return new Promise(() => {})', expect: 'NEVER_SETTLED' },
  {
    name: 'awaiting a never-settling promise',
    code: 'export async function f() { await new Promise(() => {}); return 1 }',
    module: true,
    expect: 'NEVER_SETTLED',
  },
  // ---- reaching for the host
  { name: 'process', code: 'return process.env', expect: 'USER_ERROR' },
  { name: 'require', code: "return require('fs')", expect: 'USER_ERROR' },
  {
    name: 'dynamic import of a built-in',
    code: "export async function f() { return await import('fs') }",
    module: true,
    expect: 'USER_ERROR',
  },
  {
    name: 'static import of a built-in',
    code: "import fs from 'node:fs'; export function f() { return fs }",
    module: true,
    expect: 'INVALID_CODE',
  },
  {
    name: 'fetch and timers',
    code: 'return [typeof fetch, typeof setTimeout, typeof setInterval, typeof XMLHttpRequest, typeof WebAssembly]',
    expect: { ok: ['undefined', 'undefined', 'undefined', 'undefined', 'undefined'] },
  },
  {
    name: "Function('return this') sees only the sandbox global",
    code: "const g = Function('return this')(); return Object.getOwnPropertyNames(g).filter((n) => /process|require|host|covenant|global$/i.test(n))",
    expect: { ok: [] },
  },
  {
    name: 'constructor escape',
    code: "return ({}).constructor.constructor('return typeof process + typeof require')()",
    expect: { ok: 'undefinedundefined' },
  },
  {
    name: 'eval escape',
    code: "return eval('typeof process') + (0, eval)('typeof __covenantHost')",
    expect: { ok: 'undefinedundefined' },
  },
  {
    name: 'GC observers are gone',
    code: 'return [typeof WeakRef, typeof FinalizationRegistry]',
    expect: { ok: ['undefined', 'undefined'] },
  },
  { name: 'sloppy this', code: 'return (function () { return typeof this })()', expect: { ok: 'undefined' } },
  // ---- poisoning what the host reads
  {
    name: 'JSON.stringify override',
    code: 'JSON.stringify = () => \'"pwned"\'; return { a: 1 }',
    expect: { ok: { a: 1 } },
  },
  {
    name: 'JSON.parse override before args are read',
    code: "export function f(ctx) { JSON.parse = () => 'pwned'; return ctx.request.id }",
    module: true,
    expect: { ok: 'hostile' },
  },
  {
    name: 'Object.prototype.toJSON pollution',
    code: "Object.prototype.toJSON = function () { return 'polluted' }; return { a: 1 }",
    expect: { ok: 'polluted' },
  },
  {
    name: 'Array.prototype pollution',
    code: "Array.prototype.push = null; Array.prototype.toJSON = () => 'arr'; return { list: [1, 2] }",
    expect: { ok: { list: 'arr' } },
  },
  {
    name: 'Promise.prototype.then override',
    code: "export function f() { Promise.prototype.then = function () { return 'x' }; return (async () => 7)() }",
    module: true,
    expect: { ok: 7 },
  },
  {
    name: 'thenable result whose then never calls back',
    code: 'return { then() {} }',
    expect: 'NEVER_SETTLED',
  },
  { name: 'thrown null', code: 'throw null', expect: 'USER_ERROR' },
  { name: 'non-serialisable BigInt result', code: 'return 10n', expect: 'USER_ERROR' },
  // ---- the datastore and the job queue
  {
    name: 'awaits thousands of reads',
    code: 'export async function f(ctx) { for (let i = 0; i < 5000; i++) await ctx.store.get(NS, "k" + i) }',
    module: true,
    read: true,
    expect: 'USER_ERROR',
  },
  {
    name: 'awaits one key thousands of times',
    code: 'export async function f(ctx) { let s = 0; for (let i = 0; i < 5000; i++) s += await ctx.store.get(NS, "same"); return s }',
    module: true,
    read: true,
    expect: { ok: 20000 },
  },
  {
    name: 'reads a value larger than a value may be',
    code: 'export async function f(ctx) { return (await ctx.store.get(NS, "huge")).length }',
    module: true,
    read: true,
    expect: 'USER_ERROR',
  },
  {
    name: 'reads a big value in a loop it cannot afford',
    code: 'export async function f(ctx) { for (;;) await ctx.store.get(NS, "big") }',
    module: true,
    read: true,
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'loops between reads to burn fuel',
    code: 'export async function f(ctx) { for (let n = 0; ; n++) { await ctx.store.get(NS, "k" + (n % 9)); for (let i = 0; i < 1e5; i++); } }',
    module: true,
    read: true,
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'never awaits its read',
    code: 'export function f(ctx) { ctx.store.get(NS, "k"); ctx.store.get(NS, "huge"); return "done" }',
    module: true,
    read: true,
    expect: { ok: 'done' },
  },
  {
    name: 'awaits a read, then a promise nothing settles',
    code: 'export async function f(ctx) { await ctx.store.get(NS, "k"); await new Promise(() => {}) }',
    module: true,
    read: true,
    expect: 'NEVER_SETTLED',
  },
  {
    name: 'writes a 10 MB value',
    code: "ctx.store.put(NS, 'k', 'x'.repeat(10e6))",
    expect: 'USER_ERROR',
    limits: { fuel: 300, timeoutMs: NEVER_MS },
  },
  {
    name: 'writes too many keys',
    code: "for (let i = 0; ; i++) ctx.store.put(NS, 'k' + i, i)",
    expect: 'USER_ERROR',
  },
  {
    name: 'writes a big value in a loop it cannot afford, swallowing every error',
    code: "const v = 'x'.repeat(1 << 19); for (;;) { try { ctx.store.put(NS, 'k', v) } catch {} }",
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'writes a value whose toJSON never returns',
    code: "ctx.store.put(NS, 'k', { toJSON() { for (;;) {} } })",
    expect: 'FUEL_EXHAUSTED',
  },
  {
    name: 'writes a value nested deeper than a value may be',
    code: "let v = 1; for (let i = 0; i < 300; i++) v = [v]; ctx.store.put(NS, 'k', v)",
    expect: 'USER_ERROR',
  },
  {
    name: 'enqueues too many jobs',
    code: `for (;;) ctx.enqueue(NS, 'again', [])`,
    expect: 'USER_ERROR',
  },
  {
    name: 'calls ctx.store with bad types',
    code: 'ctx.store.put({}, [], Symbol())',
    expect: 'USER_ERROR',
  },
  {
    name: 'calls ctx.store methods detached from ctx',
    code: 'export async function f(ctx) { const { get, put } = ctx.store; put(NS, "w", 1); return [await get(NS, "k"), await get(NS, "w")] }',
    module: true,
    read: true,
    expect: { ok: [1, 1] },
  },
  {
    name: 'replaces Promise, JSON, Map and String methods before reading',
    code: `export async function f(ctx) {
      globalThis.Promise = function () { throw new Error('fake') }
      JSON.parse = () => 'pwned'
      JSON.stringify = () => '"pwned"'
      Map.prototype.get = () => undefined
      Map.prototype.set = () => {}
      String.prototype.slice = () => 'v"pwned"'
      Number = () => 0
      Reflect.apply = () => 'pwned'
      ctx.store.put(NS, 'w', { a: [1] })
      return [await ctx.store.get(NS, 'kk'), await ctx.store.get(NS, 'w'), await ctx.store.get(NS, 'kkk')]
    }`,
    module: true,
    read: true,
    expect: { ok: [2, { a: [1] }, 3] },
  },
  {
    name: 'replaces Promise.prototype.then before awaiting reads',
    code: `export async function f(ctx) {
      Promise.prototype.then = function () { return 'hijacked' }
      return (await ctx.store.get(NS, 'k')) + (await ctx.store.get(NS, 'kk'))
    }`,
    module: true,
    read: true,
    expect: { ok: 3 },
  },
  {
    name: 'reaches for the host functions',
    code: 'return [typeof __covenantHost, typeof globalThis.api, Object.keys(ctx.store).sort(), Object.isFrozen(ctx.store)]',
    expect: { ok: ['undefined', 'undefined', ['delete', 'get', 'put'], true] },
  },
]

const run = (c: Case) =>
  sandbox.run({
    code: `const NS = '${NS}';\n${c.module === true ? c.code : `export function f(ctx) { ${c.code} }`}`,
    exportName: 'f',
    args: [],
    seed: 'hostile',
    now: 0,
    limits: c.limits ?? { fuel: 300, timeoutMs: NEVER_MS },
    read: c.read === true ? reader : undefined,
  })

describe('hostile code', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const result = await run(c)
      if (typeof c.expect === 'string') {
        assert.equal(result.ok, false, JSON.stringify(result).slice(0, 300))
        if (!result.ok) assert.equal(result.error.code, c.expect, result.error.message)
      } else {
        assert.deepEqual(result.ok ? { ok: result.value } : result, c.expect)
      }
      const benign = await sandbox.run({
        code: 'export function ok(n) { return n + 1 }',
        exportName: 'ok',
        args: [41],
        seed: 'benign',
        now: 0,
        limits: { timeoutMs: NEVER_MS },
      })
      assert.deepEqual(benign, { ok: true, value: 42, fuel: 0, logs: [] })
    })
  }

  it('leaves the pool whole after all of them: every worker back, none busy, nothing queued', () => {
    const { workers, busy, queued } = sandbox.stats()
    assert.deepEqual({ workers, busy, queued }, { workers: 2, busy: 0, queued: 0 })
  })
})
