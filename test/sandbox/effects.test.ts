/**
 * The rules ctx.store and ctx.enqueue apply (src/sandbox/effects.ts) are the datastore's and the
 * codec's own: a namespace id is what caps calls a canonical CID, a key what the datastore's
 * KeySchema accepts, a value's size what @ipld/dag-cbor encodes it in, and the limits are the
 * datastore's per commit. Checked against those parts on tables and on generated inputs.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { isCanonicalCid } from '../../src/caps/index.ts'
import { cidForBytes, ExportNameSchema } from '../../src/content/index.ts'
import { KeySchema, MAX_READS, MAX_VALUE_BYTES, MAX_WRITES } from '../../src/datastore/index.ts'
import { isJsonValue, type JsonValue, MAX_JSON_DEPTH } from '../../src/encoding/index.ts'
import { MAX_REPLICAS } from '../../src/exec/index.ts'
import {
  dagCborSize,
  EFFECT_LIMITS,
  EffectJobSchema,
  isCidText,
  keyProblem,
  SandboxEffectsSchema,
} from '../../src/sandbox/index.ts'

/** A small deterministic generator (mulberry32), so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const CHARS = [
  'a',
  'Z',
  '0',
  ' ',
  '"',
  '\\',
  '\n',
  '\u0000',
  '\u007f',
  'é',
  '€',
  '😀',
  '\ud800',
  '\udc00',
  '\u2028',
]

function randomString(r: () => number, max: number): string {
  let s = ''
  const n = Math.floor(r() * max)
  for (let i = 0; i < n; i++) s += CHARS[Math.floor(r() * CHARS.length)]
  return s
}

const NUMBERS = [
  0,
  -0,
  1,
  -1,
  23,
  24,
  -24,
  -25,
  255,
  256,
  -256,
  -257,
  65535,
  65536,
  -65536,
  -65537,
  2 ** 32 - 1,
  2 ** 32,
  -(2 ** 32),
  -(2 ** 32) - 1,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  2 ** 53,
  1e21,
  0.5,
  -1.5,
  1e-300,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
]

function randomValue(r: () => number, depth: number): JsonValue {
  const k = r()
  if (depth > 3 || k < 0.45) {
    const s = r()
    if (s < 0.15) return null
    if (s < 0.25) return r() < 0.5
    if (s < 0.55) return NUMBERS[Math.floor(r() * NUMBERS.length)]
    if (s < 0.65) return Math.floor((r() - 0.5) * 2 ** Math.floor(r() * 60))
    return randomString(r, 40)
  }
  if (k < 0.7) return Array.from({ length: Math.floor(r() * 8) }, () => randomValue(r, depth + 1))
  const o: Record<string, JsonValue> = {}
  for (let i = Math.floor(r() * 8); i > 0; i--) o[randomString(r, 12)] = randomValue(r, depth + 1)
  return o
}

function nested(depth: number): JsonValue {
  let v: JsonValue = 1
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v }
  return v
}

describe('the rules of ctx.store and ctx.enqueue', () => {
  it('has the datastore’s limits per commit', () => {
    assert.equal(EFFECT_LIMITS.reads, MAX_READS)
    assert.equal(EFFECT_LIMITS.writes, MAX_WRITES)
    assert.equal(EFFECT_LIMITS.valueBytes, MAX_VALUE_BYTES)
    assert.ok(EFFECT_LIMITS.writeBytes <= MAX_VALUE_BYTES * MAX_WRITES)
    assert.equal(EFFECT_LIMITS.jsonDepth, MAX_JSON_DEPTH)
    assert.equal(EFFECT_LIMITS.jobReplicas, MAX_REPLICAS)
  })

  it('takes as a job’s export exactly the names a manifest may list', () => {
    const fn = cidForBytes(new Uint8Array([1]), 'dag-cbor').toString()
    for (const name of [
      'main',
      'default',
      '_x',
      '$',
      'a1',
      '1a',
      'a-b',
      '',
      'é',
      'x'.repeat(128),
      'x'.repeat(129),
    ]) {
      const job = { fn, export: name, args: [], options: {} }
      assert.equal(EffectJobSchema.safeParse(job).success, ExportNameSchema.safeParse(name).success, name)
    }
  })

  it('takes as a namespace id exactly the canonical dag-cbor CIDs caps takes', () => {
    const r = rng(1)
    const texts: string[] = []
    for (let i = 0; i < 300; i++) {
      const bytes = Uint8Array.from({ length: 8 }, () => Math.floor(r() * 256))
      const cbor = cidForBytes(bytes, 'dag-cbor').toString()
      texts.push(
        cbor,
        cidForBytes(bytes, 'raw').toString(),
        cbor.toUpperCase(),
        cbor.slice(0, -1),
        `${cbor}a`,
      )
      // every other character in every position: other digests, and spellings with padding bits set
      const at = Math.floor(r() * cbor.length)
      const c = 'abcdefghijklmnopqrstuvwxyz234567'[Math.floor(r() * 32)]
      texts.push(cbor.slice(0, at) + c + cbor.slice(at + 1))
      texts.push(cbor.slice(0, -1) + 'abcdefghijklmnopqrstuvwxyz234567'[i % 32])
    }
    texts.push('', 'bafyrei', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', 'x'.repeat(59))
    let accepted = 0
    for (const t of texts) {
      assert.equal(isCidText(t), isCanonicalCid(t), t)
      if (isCidText(t)) accepted++
    }
    assert.ok(accepted > 600, `the table holds many valid ids (${accepted})`)
    assert.equal(isCidText(42), false)
  })

  it('takes as a key exactly what the datastore’s KeySchema takes', () => {
    const keys = [
      '',
      'a',
      'entries/0',
      'x'.repeat(512),
      'x'.repeat(513),
      'é'.repeat(256),
      'é'.repeat(257),
      '😀'.repeat(128),
      `${'😀'.repeat(127)}ab`,
      `${'😀'.repeat(127)}abcde`,
      '€'.repeat(170),
      '€'.repeat(171),
      'a\u0000b',
      'tab\there',
      'line\n',
      '\u001f',
      '\u007f',
      '\u0080',
      '\u2028',
      '\ud800',
      'a\udc00',
      '\ud83d\ude00',
      ' ',
      '../..',
    ]
    const r = rng(2)
    for (let i = 0; i < 500; i++) keys.push(randomString(r, 600))
    for (const key of keys) {
      assert.equal(keyProblem(key) === undefined, KeySchema.safeParse(key).success, JSON.stringify(key))
    }
  })

  it('measures a value as @ipld/dag-cbor encodes it', () => {
    const values: JsonValue[] = [
      ...NUMBERS,
      '',
      'x'.repeat(23),
      'x'.repeat(24),
      'x'.repeat(255),
      'x'.repeat(256),
      'x'.repeat(65536),
      '\ud800',
      'a\udc00b',
      '😀',
      [],
      {},
      { '': null },
      Array.from({ length: 24 }, () => 0),
      Array.from({ length: 70000 }, () => true),
      nested(MAX_JSON_DEPTH),
    ]
    for (let seed = 0; seed < 400; seed++) values.push(randomValue(rng(seed), 0))
    for (const v of values)
      assert.equal(dagCborSize(v), dagCbor.encode(v).length, JSON.stringify(v).slice(0, 200))
  })

  it('refuses as too deep exactly what isJsonValue refuses', () => {
    for (const depth of [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 100_000]) {
      const v = nested(depth)
      assert.equal(dagCborSize(v) !== undefined, isJsonValue(v), `depth ${depth}`)
    }
  })

  it('describes effects with a schema that refuses what no call can record', () => {
    const ns = cidForBytes(new Uint8Array([1]), 'dag-cbor').toString()
    const ok = {
      reads: [{ ns, key: 'a', version: 3 }],
      writes: [{ ns, key: 'b', value: { x: [1] } }],
      jobs: [{ fn: ns, export: 'later', args: [1], options: { replicas: 3, quorum: 2 } }],
    }
    assert.ok(SandboxEffectsSchema.safeParse(ok).success)
    const bad = [
      { ...ok, reads: [{ ns: 'bafk', key: 'a', version: 3 }] },
      { ...ok, reads: [{ ns, key: '', version: 3 }] },
      { ...ok, reads: [{ ns, key: 'a', version: -1 }] },
      { ...ok, writes: [{ ns, key: 'a\n', value: 1 }] },
      { ...ok, writes: [{ ns, key: 'a', value: Number.NaN }] },
      { ...ok, jobs: [{ ...ok.jobs[0], export: 'not-an-identifier' }] },
      { ...ok, jobs: [{ ...ok.jobs[0], options: { replicas: 2, quorum: 3 } }] },
      { ...ok, jobs: [{ ...ok.jobs[0], options: { retries: 1.5 } }] },
      { ...ok, jobs: [{ ...ok.jobs[0], options: { priority: 1 } }] },
      { ...ok, extra: 1 },
      { ...ok, jobs: Array.from({ length: EFFECT_LIMITS.jobs + 1 }, () => ok.jobs[0]) },
    ]
    for (const b of bad) assert.equal(SandboxEffectsSchema.safeParse(b).success, false, JSON.stringify(b))
  })
})
