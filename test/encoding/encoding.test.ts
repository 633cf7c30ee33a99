/** The encodings every part shares: JSON values, hex, base64, the JSON form of signed values, sha-256. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  bytesFieldsFromJSON,
  bytesFieldsToJSON,
  fromBase64,
  isJsonValue,
  MAX_JSON_DEPTH,
  sha256,
  toBase64,
  toHex,
} from '../../src/encoding/index.ts'
import { sha256 as browserSha256 } from '../../src/encoding/sha256.browser.ts'

const SIG = Uint8Array.from({ length: 64 }, (_, i) => i)
const SIG_TEXT = toBase64(SIG)

function nested(depth: number): unknown {
  let v: unknown = 1
  for (let i = 0; i < depth; i++) v = [v]
  return v
}

describe('isJsonValue', () => {
  it('accepts plain JSON values, however mixed', () => {
    for (const v of [null, true, 0, -1.5, '', 'x', [], {}, { a: [1, { b: null }] }, Object.create(null)])
      assert.equal(isJsonValue(v), true, JSON.stringify(v))
    assert.equal(isJsonValue(nested(MAX_JSON_DEPTH - 1)), true)
  })

  it('refuses what JSON cannot carry, and nesting deep enough to blow a stack, without blowing its own', () => {
    const refused: unknown[] = [
      undefined,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      () => 1,
      Symbol('s'),
      10n,
      new Date(0),
      new Map(),
      new Uint8Array(2),
      Array(3), // holes
      { a: undefined },
      { a: [Number.NaN] },
      nested(MAX_JSON_DEPTH + 1),
      nested(1_000_000),
    ]
    for (const v of refused) assert.equal(isJsonValue(v), false)
  })
})

describe('hex and base64', () => {
  it('encodes bytes, and refuses base64 that is not', () => {
    assert.equal(toHex(new Uint8Array([0, 1, 171, 255])), '0001abff')
    assert.equal(toHex(new Uint8Array()), '')
    assert.deepEqual(fromBase64(toBase64(SIG)), SIG)
    assert.equal(toBase64(new Uint8Array([1, 2])), 'AQI=')
    for (const bad of ['!!', 'A', 'AQI=x', ' AQI=']) assert.equal(fromBase64(bad), undefined, bad)
  })
})

describe('JSON forms of signed values', () => {
  const certificate = {
    id: 'bafy',
    request: { fn: 'f', args: [{ signature: SIG_TEXT }, 'AQI='], signature: SIG },
    receipts: [
      { executor: 'a', signature: SIG },
      { executor: 'b', signature: SIG },
    ],
  }
  const paths = ['request.signature', 'receipts[].signature']

  it('turns every byte field into base64, at any depth, and back at the paths named', () => {
    const json = JSON.parse(JSON.stringify(bytesFieldsToJSON(certificate)))
    assert.equal(json.request.signature, SIG_TEXT)
    assert.equal(json.receipts[1].signature, SIG_TEXT)
    assert.deepEqual(bytesFieldsFromJSON(json, paths), certificate)
  })

  it('reads bytes only at the paths named: a base64 string elsewhere (say in arguments) stays a string', () => {
    const json = bytesFieldsToJSON(certificate)
    const back = bytesFieldsFromJSON(json, paths) as typeof certificate
    assert.deepEqual(back.request.args, [{ signature: SIG_TEXT }, 'AQI='])
    assert.equal(typeof back.id, 'string')
    // not even a field of the same name at another depth
    assert.deepEqual(bytesFieldsFromJSON({ a: { signature: SIG_TEXT } }, ['signature']), {
      a: { signature: SIG_TEXT },
    })
  })

  it('leaves what is not there, not an object or not base64 for the schema to refuse, and never throws', () => {
    const odd: unknown[] = [
      null,
      undefined,
      42,
      'text',
      [],
      [SIG_TEXT],
      {},
      { request: null },
      { request: 'x', receipts: 'y' },
      { receipts: [null, 7, 'z', { signature: 5 }] },
      { request: { signature: '!!not base64' } },
      { request: { signature: 'A'.repeat(10_000) } },
    ]
    for (const value of odd) assert.deepEqual(bytesFieldsFromJSON(value, paths), value)
  })

  it('never changes its input, and copies nothing onto a prototype', () => {
    const json = JSON.parse(`{"__proto__": {"polluted": 1}, "signature": "${SIG_TEXT}"}`)
    const before = JSON.stringify(json)
    const out = bytesFieldsFromJSON(json, ['signature', '__proto__.polluted']) as Record<string, unknown>
    assert.equal(JSON.stringify(json), before)
    assert.deepEqual(out.signature, SIG)
    assert.equal(Object.getPrototypeOf(out), Object.prototype)
    assert.equal(({} as { polluted?: unknown }).polluted, undefined)
  })

  it('leaves values that are not plain data as they are', () => {
    const date = new Date(0)
    assert.equal(bytesFieldsToJSON(date), date)
    assert.deepEqual(bytesFieldsToJSON({ n: 1, s: 'x', b: null, list: [new Uint8Array([1])] }), {
      n: 1,
      s: 'x',
      b: null,
      list: ['AQ=='],
    })
  })
})

describe('sha256', () => {
  const utf8 = new TextEncoder()

  it('gives the standard digests, in Node and in a browser bundle alike', () => {
    const vectors: Array<[string, string]> = [
      ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
      ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    ]
    for (const [text, digest] of vectors) {
      assert.equal(toHex(sha256(utf8.encode(text))), digest)
      assert.equal(toHex(browserSha256(utf8.encode(text))), digest)
    }
  })

  it('agrees with the browser one at every size a call hashes, on views into larger buffers too', () => {
    const big = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 251)
    for (const size of [1, 55, 56, 64, 300, 1725, 2048, 65_537]) {
      const view = big.subarray(3, 3 + size)
      assert.deepEqual(sha256(view), browserSha256(view), `${size} bytes`)
    }
  })

  it('answers a plain Uint8Array of its own: changing it changes no later digest', () => {
    const bytes = utf8.encode('abc')
    const first = sha256(bytes)
    assert.equal(Object.getPrototypeOf(first), Uint8Array.prototype)
    assert.equal(first.byteLength, 32)
    assert.equal(first.buffer.byteLength, 32, 'not a view into a shared pool')
    first.fill(0)
    assert.equal(toHex(sha256(bytes)), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })
})
