/**
 * ctx.store and ctx.enqueue as a function uses them, through the pool: reads answered by the
 * caller's reader at fixed versions, read-your-writes, the effects a successful call carries, the
 * errors and limits a function meets (catchable where the function may handle them), a host's
 * errors and failures, and the wall clock over a host that never answers.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import {
  createSandbox,
  EFFECT_LIMITS,
  localReader,
  type SandboxCall,
  SandboxEffectsSchema,
  type StoreReadAnswer,
  type StoreReader,
} from '../../src/sandbox/index.ts'

const sandbox = createSandbox({ workers: 2 })
after(() => sandbox.stop())

const NEVER_MS = 120_000
const NS = cidForBytes(new Uint8Array([1]), 'dag-cbor').toString()
const NS2 = cidForBytes(new Uint8Array([2]), 'dag-cbor').toString()
const FN = cidForBytes(new Uint8Array([3]), 'dag-cbor').toString()
/** the module every case runs: NS and FN as constants, then the case's exports */
const mod = (body: string) => `const NS = '${NS}', NS2 = '${NS2}', FN = '${FN}'\n${body}`

const run = (code: string, extra: Partial<SandboxCall> = {}, exportName = 'f') =>
  sandbox.run({
    code: mod(code),
    exportName,
    args: [],
    seed: 'seed',
    now: 0,
    ...extra,
    limits: { timeoutMs: NEVER_MS, ...extra.limits },
  })

/** A reader over `values` that counts what it is asked. */
function counting(values: Record<string, Record<string, unknown>>) {
  const asked: string[] = []
  const inner = localReader(values as never)
  const read: StoreReader = (ns, key, options) => {
    asked.push(`${ns === NS ? 'NS' : ns === NS2 ? 'NS2' : ns}:${key}`)
    return inner(ns, key, options)
  }
  return { read, asked }
}

describe('ctx.store and ctx.enqueue', () => {
  it('reads at the host’s versions, writes, deletes and enqueues; the result carries the effects in order', async () => {
    const { read, asked } = counting({ [NS]: { count: 2, title: 'Guests' }, [NS2]: {} })
    const r = await run(
      `export async function f(ctx) {
        const count = (await ctx.store.get(NS, 'count')) ?? 0
        const [title, missing, again] = await Promise.all([
          ctx.store.get(NS, 'title'), ctx.store.get(NS2, 'nothing'), ctx.store.get(NS, 'count'),
        ])
        ctx.store.put(NS, 'entries/' + count, { name: 'Ada', at: new Date(0) })
        ctx.store.put(NS, 'count', count + 1)
        ctx.store.delete(NS, 'title')
        ctx.store.put(NS, 'count', count + 2)
        ctx.store.put(NS2, 'gone', null)
        ctx.enqueue(FN, 'notify', [count, 'Ada'], { runAfterMs: 1000, quorum: 2, replicas: 3 })
        ctx.enqueue(FN, 'default', [])
        return { count, title, missing, again, after: await ctx.store.get(NS, 'count') }
      }`,
      { read },
    )
    assert.deepEqual(r, {
      ok: true,
      value: { count: 2, title: 'Guests', missing: null, again: 2, after: 4 },
      fuel: 0,
      logs: [],
      effects: {
        reads: [
          { ns: NS, key: 'count', version: 1 },
          { ns: NS, key: 'title', version: 1 },
          { ns: NS2, key: 'nothing', version: 0 },
        ],
        writes: [
          { ns: NS, key: 'entries/2', value: { name: 'Ada', at: '1970-01-01T00:00:00.000Z' } },
          { ns: NS, key: 'count', value: 4 },
          { ns: NS, key: 'title', value: null },
          { ns: NS2, key: 'gone', value: null },
        ],
        jobs: [
          {
            fn: FN,
            export: 'notify',
            args: [2, 'Ada'],
            options: { runAfterMs: 1000, quorum: 2, replicas: 3 },
          },
          { fn: FN, export: 'default', args: [], options: {} },
        ],
      },
    })
    // each key once; the written key read back without asking
    assert.deepEqual(asked, ['NS:count', 'NS:title', 'NS2:nothing'])
    assert.ok(r.ok && SandboxEffectsSchema.safeParse(r.effects).success)
  })

  it('leaves the result of a call that uses none of it exactly as it was: no effects field', async () => {
    const r = await run('export function f(ctx) { ctx.log("hi"); return [1] }', { read: counting({}).read })
    assert.deepEqual(r, { ok: true, value: [1], fuel: 0, logs: ['hi'] })
    assert.equal(Object.hasOwn(r, 'effects'), false)
  })

  it('drops everything a failed call recorded', async () => {
    const r = await run(
      `export async function f(ctx) {
        await ctx.store.get(NS, 'count'); ctx.store.put(NS, 'a', 1); ctx.enqueue(FN, 'x', [])
        throw new Error('changed my mind')
      }`,
      { read: counting({ [NS]: {} }).read },
    )
    assert.deepEqual(r, {
      ok: false,
      error: { code: 'USER_ERROR', message: 'the function threw an error: changed my mind' },
      fuel: 0,
      logs: [],
    })
  })

  it('gives each get its own copy, and records a put’s value as it was at the put', async () => {
    const r = await run(
      `export async function f(ctx) {
        const [a, b] = await Promise.all([ctx.store.get(NS, 'o'), ctx.store.get(NS, 'o')])
        a.list.push('mutated')
        const c = await ctx.store.get(NS, 'o')
        const v = { n: 1, toJSON() { return { n: this.n, via: 'toJSON' } } }
        ctx.store.put(NS, 'w', v)
        v.n = 2
        const w = await ctx.store.get(NS, 'w')
        w.n = 3
        return [a.list.length, b.list.length, c.list.length, await ctx.store.get(NS, 'w')]
      }`,
      { read: counting({ [NS]: { o: { list: [1] } } }).read },
    )
    assert.ok(r.ok, JSON.stringify(r))
    assert.deepEqual(r.value, [2, 1, 1, { n: 1, via: 'toJSON' }])
    assert.deepEqual(r.effects?.writes, [{ ns: NS, key: 'w', value: { n: 1, via: 'toJSON' } }])
  })

  it('keeps a value exactly, lone surrogates and unicode included, through a put and a get', async () => {
    const odd = 'a\ud800b\udc00😀\u2028\u0000"\\'
    const r = await run(
      `export async function f(ctx) {
        ctx.store.put(NS, 'odd', { s: ${JSON.stringify(odd)}, n: [-0, 1e21, 0.1] })
        const back = await ctx.store.get(NS, 'odd')
        return [back.s === ${JSON.stringify(odd)}, back.n]
      }`,
    )
    assert.ok(r.ok, JSON.stringify(r))
    assert.deepEqual(r.value, [true, [0, 1e21, 0.1]])
    assert.deepEqual(r.effects?.writes, [{ ns: NS, key: 'odd', value: { s: odd, n: [0, 1e21, 0.1] } }])
  })

  it('asks the host for every read made before the function waits, as one batch', async () => {
    // answers nothing until all three reads are asked: one read at a time would never finish
    let release: () => void = () => {}
    const all = new Promise<void>((resolve) => {
      release = resolve
    })
    let asked = 0
    const read: StoreReader = async (_ns, key) => {
      if (++asked === 3) release()
      await all
      return { value: key, version: 7 }
    }
    const r = await run(
      `export async function f(ctx) {
        return Promise.all(['a', 'b', 'c'].map((k) => ctx.store.get(NS, k)))
      }`,
      { read },
    )
    assert.ok(r.ok, JSON.stringify(r))
    assert.deepEqual(r.value, ['a', 'b', 'c'])
  })

  it('reads and writes locally without a reader, and says why a read of an unwritten key fails', async () => {
    const r = await run(
      `export async function f(ctx) {
        ctx.store.put(NS, 'k', 'mine')
        const mine = await ctx.store.get(NS, 'k')
        try { await ctx.store.get(NS, 'other') } catch (e) { return [mine, e.name, e.message] }
      }`,
    )
    assert.ok(r.ok, JSON.stringify(r))
    const [mine, name, message] = r.value as string[]
    assert.deepEqual([mine, name], ['mine', 'Error'])
    assert.match(message, /no datastore to read from.*--store/)
    assert.deepEqual(r.effects, { reads: [], writes: [{ ns: NS, key: 'k', value: 'mine' }], jobs: [] })
  })

  it('refuses bad arguments with a TypeError or RangeError the function can catch', async () => {
    const r = await run(
      `export async function f(ctx) {
        const out = []
        const tryIt = async (label, fn) => {
          try { await fn(); out.push([label, 'ok']) } catch (e) { out.push([label, e.name, e.message]) }
        }
        const long = 'k'.repeat(513)
        await tryIt('get ns number', () => ctx.store.get(42, 'k'))
        await tryIt('get ns other cid', () => ctx.store.get('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', 'k'))
        await tryIt('get ns upper', () => ctx.store.get(NS.toUpperCase(), 'k'))
        await tryIt('get key object', () => ctx.store.get(NS, {}))
        await tryIt('get key empty', () => ctx.store.get(NS, ''))
        await tryIt('get key long', () => ctx.store.get(NS, long))
        await tryIt('get key control', () => ctx.store.get(NS, 'a\\nb'))
        await tryIt('get key surrogate', () => ctx.store.get(NS, '\\ud800'))
        await tryIt('put undefined', () => ctx.store.put(NS, 'k', undefined))
        await tryIt('put function', () => ctx.store.put(NS, 'k', () => 1))
        await tryIt('put bigint', () => ctx.store.put(NS, 'k', 1n))
        await tryIt('put cycle', () => { const o = {}; o.o = o; ctx.store.put(NS, 'k', o) })
        await tryIt('put getter throws', () => ctx.store.put(NS, 'k', { get x() { throw new URIError('mine') } }))
        await tryIt('delete symbol key', () => ctx.store.delete(NS, Symbol('k')))
        await tryIt('enqueue fn', () => ctx.enqueue('nope', 'x', []))
        await tryIt('enqueue export', () => ctx.enqueue(FN, 'not-a-name', []))
        await tryIt('enqueue args', () => ctx.enqueue(FN, 'x', 'one'))
        await tryIt('enqueue args missing', () => ctx.enqueue(FN, 'x'))
        await tryIt('enqueue options type', () => ctx.enqueue(FN, 'x', [], 5))
        await tryIt('enqueue options function', () => ctx.enqueue(FN, 'x', [], () => 1))
        await tryIt('enqueue options field', () => ctx.enqueue(FN, 'x', [], { priority: 1 }))
        await tryIt('enqueue options range', () => ctx.enqueue(FN, 'x', [], { replicas: 0 }))
        await tryIt('enqueue options quorum', () => ctx.enqueue(FN, 'x', [], { replicas: 2, quorum: 3 }))
        await tryIt('enqueue options fraction', () => ctx.enqueue(FN, 'x', [], { retries: 0.5 }))
        await tryIt('fine after all that', () => ctx.store.put(NS, 'k', 1))
        return out
      }`,
    )
    assert.ok(r.ok, JSON.stringify(r))
    const seen = Object.fromEntries(
      (r.value as string[][]).map(([label, name, message]) => [label, [name, message]]),
    )
    const expect: Record<string, [string, RegExp]> = {
      'get ns number': ['TypeError', /ns is a namespace id .* not a number/],
      'get ns other cid': ['TypeError', /ns is a namespace id/],
      'get ns upper': ['TypeError', /ns is a namespace id/],
      'get key object': ['TypeError', /the key is a string, not an object/],
      'get key empty': ['TypeError', /a key is not empty/],
      'get key long': ['RangeError', /at most 512 UTF-8 bytes/],
      'get key control': ['TypeError', /no control characters/],
      'get key surrogate': ['TypeError', /well-formed/],
      'put undefined': ['TypeError', /not a JSON value.*ctx\.store\.delete/],
      'put function': ['TypeError', /not a JSON value/],
      'put bigint': ['TypeError', /BigInt/i],
      'put cycle': ['TypeError', /circular/i],
      'put getter throws': ['URIError', /mine/],
      'delete symbol key': ['TypeError', /ctx\.store\.delete: the key is a string, not a symbol/],
      'enqueue fn': ['TypeError', /manifest CID/],
      'enqueue export': ['TypeError', /JavaScript identifier/],
      'enqueue args': ['TypeError', /args is an array/],
      'enqueue args missing': ['TypeError', /args is an array/],
      'enqueue options type': ['TypeError', /options are an object/],
      'enqueue options function': ['TypeError', /options are an object/],
      'enqueue options field': ['TypeError', /no field "priority"/],
      'enqueue options range': ['TypeError', /replicas is a whole number from 1 to 16/],
      'enqueue options quorum': ['TypeError', /quorum is at most options\.replicas/],
      'enqueue options fraction': ['TypeError', /retries is a whole number/],
    }
    for (const [label, [name, message]] of Object.entries(expect)) {
      assert.equal(seen[label]?.[0], name, `${label}: ${JSON.stringify(seen[label])}`)
      assert.match(seen[label][1], message, label)
    }
    assert.deepEqual(seen['fine after all that'], ['ok', undefined])
    assert.deepEqual(r.effects, { reads: [], writes: [{ ns: NS, key: 'k', value: 1 }], jobs: [] })
  })

  it('bounds keys written, bytes written, jobs and their arguments, with RangeErrors', async () => {
    const { writes, writeBytes, jobs, jobArgsBytes, valueBytes } = EFFECT_LIMITS
    const r = await run(
      `export function f(ctx) {
        const out = {}
        const count = (label, fn) => { let n = 0; try { for (;;) { fn(n); n++ } } catch (e) { out[label] = [n, e.name, e.message] } }
        count('keys', (n) => ctx.store.put(NS, 'k' + n, n))
        // rewriting a key already written needs no new room
        ctx.store.put(NS, 'k0', 'again')
        ctx.store.delete(NS, 'k1')
        count('jobs', (n) => ctx.enqueue(FN, 'job', [n]))
        try { ctx.store.put(NS2, 'big', 'x'.repeat(${valueBytes})) } catch (e) { out.big = [e.name, e.message] }
        try { ctx.store.put(NS2, 'huge', 'x'.repeat(${7 * valueBytes})) } catch (e) { out.huge = [e.name, e.message] }
        try { ctx.enqueue(FN, 'x', ['x'.repeat(${jobArgsBytes})]) } catch (e) { out.args = [e.name, e.message] }
        try { ctx.enqueue(FN, 'x', ['é'.repeat(${jobArgsBytes / 2})]) } catch (e) { out.utf8Args = [e.name, e.message] }
        return out
      }`,
      { limits: { fuel: 1_000_000 } },
    )
    assert.ok(r.ok, JSON.stringify(r))
    const out = r.value as Record<string, [number | string, string, string]>
    assert.deepEqual(out.keys.slice(0, 2), [writes, 'RangeError'])
    assert.match(out.keys[2], /a call writes at most 256 keys/)
    assert.deepEqual(out.jobs.slice(0, 2), [jobs, 'RangeError'])
    assert.equal(out.big[0], 'RangeError')
    assert.match(out.big[1], /a value is at most 1048576 bytes \(DAG-CBOR\); this one is 1048581/)
    assert.match(out.huge[1], /its JSON has 7340034 characters/)
    assert.match(out.args[1], /at most 16384 bytes of JSON/)
    assert.match(out.utf8Args[1], /at most 16384 bytes of JSON/)
    assert.equal(r.effects?.writes.length, writes)
    assert.deepEqual(r.effects?.writes.slice(0, 3), [
      { ns: NS, key: 'k0', value: 'again' },
      { ns: NS, key: 'k1', value: null },
      { ns: NS, key: 'k2', value: 2 },
    ])
    assert.equal(r.effects?.jobs.length, jobs)

    // the total of the values written, last write of each key
    const third = Math.floor(writeBytes / 3)
    const total = await run(
      `export function f(ctx) {
        const v = 'y'.repeat(${third})
        ctx.store.put(NS, 'a', v); ctx.store.put(NS, 'b', v); ctx.store.put(NS, 'b', 'small'); ctx.store.put(NS, 'c', v)
        try { ctx.store.put(NS, 'd', v) } catch (e) { return [e.name, e.message] }
      }`,
      { limits: { fuel: 1_000_000 } },
    )
    assert.ok(total.ok, JSON.stringify(total))
    const [name, message] = total.value as string[]
    assert.equal(name, 'RangeError')
    assert.match(message, /a call writes at most 1048576 bytes of values/)
    assert.deepEqual(
      total.effects?.writes.map((w) => w.key),
      ['a', 'b', 'c'],
    )
  })

  it('bounds the distinct keys read and the bytes read; re-reading a key is free', async () => {
    const { reads, readBytes, valueBytes } = EFFECT_LIMITS
    const { read, asked } = counting({ [NS]: {} })
    const r = await run(
      `export async function f(ctx) {
        let n = 0
        try { for (;;) { await ctx.store.get(NS, 'k' + n); n++ } } catch (e) {
          for (let i = 0; i < 3000; i++) await ctx.store.get(NS, 'k0')
          return [n, e.name, e.message]
        }
      }`,
      { read, limits: { fuel: 1_000_000 } },
    )
    assert.ok(r.ok, JSON.stringify(r))
    assert.deepEqual(r.value, [reads, 'RangeError', `ctx.store.get: a call reads at most ${reads} keys`])
    assert.equal(asked.length, reads)
    assert.equal(r.effects?.reads.length, reads)

    // values just under the largest a value may be: the budget takes eight of them, not nine
    const size = valueBytes - 16
    const big: StoreReader = (_ns, key) =>
      key === 'huge' ? { value: 'z'.repeat(valueBytes), version: 9 } : { value: 'z'.repeat(size), version: 2 }
    const budget = await run(
      `export async function f(ctx) {
        const out = []
        try { await ctx.store.get(NS, 'huge') } catch (e) { out.push([e.name, e.message]) }
        for (let i = 0; i < 9; i++) {
          try { out.push((await ctx.store.get(NS, 'v' + i)).length) } catch (e) { out.push([e.name, e.message]) }
        }
        return out
      }`,
      { read: big, limits: { fuel: 1_000_000 } },
    )
    assert.ok(budget.ok, JSON.stringify(budget).slice(0, 500))
    const out = budget.value as unknown[]
    assert.deepEqual(out[0], [
      'RangeError',
      `ctx.store.get: the value of "huge" of ${NS} is ${valueBytes + 5} bytes (DAG-CBOR), more than the ${valueBytes} a value may be`,
    ])
    const lengths = out.slice(1, 9)
    assert.deepEqual(
      lengths,
      Array.from({ length: 8 }, () => size),
    )
    assert.equal((out[9] as string[])[0], 'RangeError')
    assert.match((out[9] as string[])[1], new RegExp(`a call reads at most ${readBytes} bytes of values`))
    // every read counts, at its version, even one the function could not have
    assert.equal(budget.effects?.reads.length, 10)
    assert.deepEqual(budget.effects?.reads[0], { ns: NS, key: 'huge', version: 9 })
  })

  it('charges the JSON moved through the store as fuel, one tick per 16 KiB', async () => {
    const tick = 16 * 1024
    // a string of 10 ticks' JSON, quotes included: the function itself does too little to tick
    const r = await run(`export function f(ctx) { ctx.store.put(NS, 'a', 'x'.repeat(${10 * tick - 2})) }`)
    assert.deepEqual([r.ok, r.fuel], [true, 10])
    // read back twice: each copy handed to the function is charged too
    const back = await run(
      `export async function f(ctx) {
        ctx.store.put(NS, 'a', 'x'.repeat(${10 * tick - 2})); await ctx.store.get(NS, 'a'); await ctx.store.get(NS, 'a')
      }`,
    )
    assert.deepEqual([back.ok, back.fuel], [true, 30])
    // moving bytes in a loop runs out of fuel, as the same work in JavaScript would
    const spin = await run(
      `export function f(ctx) { const v = 'x'.repeat(${32 * tick}); for (;;) { try { ctx.store.put(NS, 'a', v) } catch {} } }`,
      { limits: { fuel: 100 } },
    )
    assert.deepEqual([spin.ok, !spin.ok && spin.error.code, spin.fuel], [false, 'FUEL_EXHAUSTED', 100])
  })

  it('counts no fuel while waiting on the host, and resumes the same way whenever the answers come', async () => {
    const code = `export async function f(ctx) {
      let acc = 0
      for (let i = 0; i < 20; i++) {
        for (let j = 0; j < 20000; j++) acc = (acc + j * 7) % 1000003
        acc += await ctx.store.get(NS, 'k' + (i % 7))
      }
      return acc
    }`
    const answer = (key: string): StoreReadAnswer => ({ value: key.length, version: 1 })
    const now = await run(code, { read: (_ns, key) => answer(key) })
    const slow = await run(code, {
      read: (_ns, key) => new Promise((resolve) => setTimeout(() => resolve(answer(key)), 15)),
    })
    assert.ok(now.ok && now.fuel > 0, JSON.stringify(now))
    assert.deepEqual(slow, now)
  })

  it('ends the call with the error a host answers, the first in the order the reads were asked', async () => {
    const refused = await run('export async function f(ctx) { return ctx.store.get(NS, "k") }', {
      read: () => ({ error: { code: 'NAMESPACE_NOT_FOUND', message: 'no holder holds it' } }),
    })
    assert.deepEqual(refused, {
      ok: false,
      error: { code: 'NAMESPACE_NOT_FOUND', message: `reading "k" of ${NS}: no holder holds it` },
      fuel: 0,
      logs: [],
    })
    // "b" fails at once, "a" later: "a" was asked first, so its error is the call's
    const ordered = await run(
      `export async function f(ctx) {
        try { await Promise.all([ctx.store.get(NS, 'a'), ctx.store.get(NS, 'b')]) } catch { return 'caught' }
      }`,
      {
        read: (_ns, key) =>
          key === 'a'
            ? new Promise((resolve) =>
                setTimeout(() => resolve({ error: { code: 'COVENANT_REFUSED', message: '' } }), 30),
              )
            : { error: { code: 'NAMESPACE_NOT_FOUND', message: 'b' } },
      },
    )
    assert.deepEqual(!ordered.ok && ordered.error, {
      code: 'COVENANT_REFUSED',
      message: `reading "a" of ${NS}: the node's covenant refuses this`,
    })
  })

  it('ends the call with INTERNAL when the host fails a read, and keeps serving', async () => {
    const get =
      'export async function f(ctx) { try { return await ctx.store.get(NS, "k") } catch { return "caught" } }'
    const bad: Array<[string, StoreReader, RegExp]> = [
      [
        'throws',
        () => {
          throw new Error('disk on fire')
        },
        /Error: disk on fire/,
      ],
      ['rejects', () => Promise.reject(new Error('gone')), /Error: gone/],
      ['answers nothing', () => undefined as never, /no answer/],
      ['answers no version', () => ({ value: 1 }) as never, /version/],
      ['answers a bad version', () => ({ value: 1, version: 1.5 }), /version/],
      ['answers no value', () => ({ version: 1 }) as never, /not a JSON value/],
      ['answers NaN', () => ({ value: Number.NaN, version: 1 }), /not a JSON value/],
      ['answers a Map', () => ({ value: new Map() as never, version: 1 }), /not a JSON value/],
      [
        'uses an outcome code',
        () => ({ error: { code: 'USER_ERROR', message: 'x' } }),
        /"USER_ERROR" is not one/,
      ],
      ['uses TIMEOUT', () => ({ error: { code: 'TIMEOUT', message: 'x' } }), /"TIMEOUT" is not one/],
      [
        'uses an unknown code',
        () => ({ error: { code: 'NOPE' as never, message: 'x' } }),
        /"NOPE" is not one/,
      ],
    ]
    const restarts = sandbox.stats().restarts
    for (const [what, read, message] of bad) {
      const r = await run(get, { read })
      assert.equal(!r.ok && r.error.code, 'INTERNAL', `${what}: ${JSON.stringify(r)}`)
      assert.match(!r.ok ? r.error.message : '', message, what)
    }
    const fine = await run(get, { read: () => ({ value: 'fine', version: 1 }) })
    assert.deepEqual(fine.ok && fine.value, 'fine')
    assert.equal(sandbox.stats().restarts, restarts, 'a failed read costs the instance, not the worker')
  })

  it('ends the call with TIMEOUT when the host never answers, aborts the read, and keeps serving', async () => {
    const signals: AbortSignal[] = []
    const restarts = sandbox.stats().restarts
    let lateAnswer: (a: StoreReadAnswer) => void = () => {}
    const hung = await run('export async function f(ctx) { return ctx.store.get(NS, "k") }', {
      read: (_ns, _key, { signal }) => {
        signals.push(signal)
        return new Promise((resolve) => {
          lateAnswer = resolve
        })
      },
      limits: { timeoutMs: 300 },
    })
    assert.deepEqual(!hung.ok && hung.error.code, 'TIMEOUT')
    // the worker, and the instance that waited in it, is gone: nothing is reused mid-call
    assert.equal(sandbox.stats().restarts, restarts + 1)
    assert.equal(signals.length, 1)
    assert.equal(signals[0].aborted, true)
    // an answer after the end is ignored
    lateAnswer({ value: 'late', version: 1 })
    const next = await run('export async function f(ctx) { return ctx.store.get(NS, "k") }', {
      read: () => ({ value: 'next', version: 1 }),
    })
    assert.deepEqual(next.ok && next.value, 'next')
    const stats = sandbox.stats()
    assert.deepEqual([stats.busy, stats.queued], [0, 0])
  })

  it('aborts the read of a call still waiting when the pool stops', async () => {
    const pool = createSandbox({ workers: 1 })
    let signal: AbortSignal | undefined
    let asked: () => void = () => {}
    const reading = new Promise<void>((resolve) => {
      asked = resolve
    })
    const pending = pool.run({
      code: mod('export async function f(ctx) { return ctx.store.get(NS, "k") }'),
      exportName: 'f',
      args: [],
      seed: 's',
      now: 0,
      read: (_ns, _key, options) => {
        signal = options.signal
        asked()
        return new Promise(() => {})
      },
      limits: { timeoutMs: NEVER_MS },
    })
    await reading
    await pool.stop()
    const r = await pending
    assert.deepEqual(!r.ok && r.error.code, 'NOT_STARTED')
    assert.equal(signal?.aborted, true)
  })
})
