/** One error class: the code table, the wire form both ways, and what a careless or hostile peer sends. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { z } from 'zod'
import {
  CovenantError,
  ERROR_CODES,
  type ErrorCode,
  ErrorJSONSchema,
  isErrorCode,
  parseOrThrow,
} from '../../src/errors/index.ts'

const CODES = Object.keys(ERROR_CODES) as ErrorCode[]

describe('CovenantError', () => {
  it('gives every code an HTTP error status, a default message and a hint saying what to do', () => {
    assert.ok(CODES.length > 30)
    for (const code of CODES) {
      const e = new CovenantError(code)
      assert.ok(Number.isInteger(e.status) && e.status >= 400 && e.status <= 599, code)
      assert.equal(e.message, ERROR_CODES[code].message)
      assert.ok(e.message.length > 0, code)
      assert.ok(e.hint !== undefined && e.hint.length > 10, `${code} has a hint`)
      assert.equal(e.name, 'CovenantError')
      assert.ok(e instanceof Error)
      assert.equal(isErrorCode(code), true)
    }
  })

  it('survives its wire form for every code, with and without details', () => {
    for (const code of CODES) {
      const plain = new CovenantError(code, `about ${code}`)
      assert.deepEqual(plain.toJSON(), { code, message: `about ${code}` })
      const back = CovenantError.fromJSON(JSON.parse(JSON.stringify(plain)))
      assert.equal(back.code, code)
      assert.equal(back.message, `about ${code}`)
      assert.equal(back.details, undefined)
      const detailed = new CovenantError(code, 'x', { details: { tried: [{ peer: 'p' }] } })
      const again = CovenantError.fromJSON(JSON.parse(JSON.stringify(detailed.toJSON())))
      assert.deepEqual(again.details, { tried: [{ peer: 'p' }] })
      assert.equal(ErrorJSONSchema.safeParse(detailed.toJSON()).success, true)
    }
  })

  it('reads anything a peer sends as an error without throwing: unknown codes are PROTOCOL_ERROR', () => {
    const hostile: unknown[] = [
      null,
      undefined,
      'NOT_FOUND',
      42,
      true,
      [],
      ['NOT_FOUND', 'msg'],
      {},
      { code: 'NO_SUCH_CODE', message: 'hi' },
      { code: 5, message: 'hi' },
      { code: 'toString' },
      { code: '__proto__', message: 'x' },
      JSON.parse('{"__proto__": {"code": "NOT_FOUND"}}'),
      { code: 'x'.repeat(100_000) },
      { message: 'no code' },
    ]
    for (const value of hostile) {
      const e = CovenantError.fromJSON(value)
      assert.ok(e instanceof CovenantError)
      assert.equal(e.code, 'PROTOCOL_ERROR', JSON.stringify(value)?.slice(0, 80))
      assert.ok(e.message.length < 200)
    }
    assert.match(
      CovenantError.fromJSON({ code: 'NO_SUCH_CODE', message: 'hi' }).message,
      /"NO_SUCH_CODE": hi/,
    )
    // a message can be long, never huge; a known code keeps whatever message it has, or its default
    assert.equal(CovenantError.fromJSON({ code: 'NOT_FOUND', message: 'm'.repeat(1e6) }).message.length, 4096)
    assert.equal(
      CovenantError.fromJSON({ code: 'NOT_FOUND', message: 7 }).message,
      ERROR_CODES.NOT_FOUND.message,
    )
    assert.equal(({} as { code?: unknown }).code, undefined, 'no prototype was polluted')
  })

  it('wraps whatever is thrown, keeping CovenantErrors as they are', () => {
    const ours = new CovenantError('PEER_BUSY')
    assert.equal(CovenantError.from(ours), ours)
    const cause = new RangeError('boom')
    const wrapped = CovenantError.from(cause)
    assert.equal(wrapped.code, 'INTERNAL')
    assert.equal(wrapped.message, 'boom')
    assert.equal(wrapped.cause, cause)
    assert.equal(CovenantError.from('a string', 'PEER_UNREACHABLE').code, 'PEER_UNREACHABLE')
    assert.equal(CovenantError.from({ weird: true }).message, '[object Object]')
    assert.equal(CovenantError.from(undefined).code, 'INTERNAL')
  })

  it('bounds the wire form it accepts', () => {
    assert.equal(ErrorJSONSchema.safeParse({ code: 'x'.repeat(65), message: '' }).success, false)
    assert.equal(ErrorJSONSchema.safeParse({ code: 'A', message: 'm'.repeat(4097) }).success, false)
    assert.equal(ErrorJSONSchema.safeParse({ code: 'A' }).success, false)
    assert.equal(ErrorJSONSchema.safeParse('A').success, false)
  })
})

describe('parseOrThrow', () => {
  const schema = z.strictObject({
    name: z.string().max(3),
    nested: z.object({ n: z.number().default(7) }).default({ n: 7 }),
  })

  it('returns the parsed value, defaults filled in', () => {
    assert.deepEqual(parseOrThrow(schema, { name: 'ab' }, 'INVALID_INPUT', 'body'), {
      name: 'ab',
      nested: { n: 7 },
    })
  })

  it('throws the given code naming the first wrong field, or (root)', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ name: 'abcd' }, /^body: name: /],
      [{ name: 'a', nested: { n: 'x' } }, /^body: nested\.n: /],
      [{ name: 'a', extra: 1 }, /^body: \(root\): /],
      ['text', /^body: \(root\): /],
      [null, /^body: \(root\): /],
    ]
    for (const [value, message] of cases) {
      assert.throws(
        () => parseOrThrow(schema, value, 'PROTOCOL_ERROR', 'body'),
        (e: CovenantError) =>
          e instanceof CovenantError && e.code === 'PROTOCOL_ERROR' && message.test(e.message),
        String(message),
      )
    }
  })
})
