import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import {
  DEFAULT_INVOCATION_WINDOW_MS,
  delegateWrite,
  invokeWrite,
  keyDid,
  MAX_INVOCATION_SKEW_MS,
  namespaceDid,
  verifyWriteInvocation,
  type WriteGrant,
} from '../../src/caps/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { craft, tamper, testFunction, testNamespace } from './craft.ts'

const NOW = 1_800_000_000_000
const ns = testNamespace('site')
const effects = testFunction('the writes and reads')
const otherEffects = testFunction('other writes')

describe('write invocations', () => {
  let owner: PrivateKey
  let editor: PrivateKey
  let grant: WriteGrant

  before(async () => {
    ;[owner, editor] = await Promise.all([generateKey(), generateKey()])
    grant = await delegateWrite({
      issuer: owner,
      audience: keyId(editor),
      namespace: ns,
      expiresAt: NOW + 86_400_000,
    })
  })

  it('signs the writes, a nonce and a time window, and links the grants relied on', async () => {
    const inv = await invokeWrite({ issuer: editor, namespace: ns, effects, grants: [grant], now: NOW })
    const v = verifyWriteInvocation(inv.bytes, { namespace: ns, now: NOW })
    assert.equal(v.cid, inv.cid)
    assert.equal(v.writer, keyId(editor))
    assert.equal(v.effects, effects)
    assert.deepEqual(v.proofs, [grant.cid])
    assert.equal(v.notBefore, NOW)
    assert.equal(v.expiresAt, NOW + DEFAULT_INVOCATION_WINDOW_MS)
    assert.ok(v.nonce.length >= 8)
    // two invocations of the same write differ by their nonce
    const again = await invokeWrite({ issuer: editor, namespace: ns, effects, grants: [grant], now: NOW })
    assert.notEqual(again.cid, inv.cid)
  })

  it('refuses an invocation outside its window, or with a window too wide (INVOCATION_OUTSIDE_WINDOW)', async () => {
    const inv = await invokeWrite({ issuer: owner, namespace: ns, effects, now: NOW, windowMs: 60_000 })
    const at = (now: number) => errorCode(() => verifyWriteInvocation(inv.bytes, { namespace: ns, now }))
    assert.equal(at(NOW + 59_999), undefined)
    assert.equal(at(NOW + 60_000), 'INVOCATION_OUTSIDE_WINDOW')
    assert.equal(at(NOW - MAX_INVOCATION_SKEW_MS), undefined)
    assert.equal(at(NOW - MAX_INVOCATION_SKEW_MS - 1000), 'INVOCATION_OUTSIDE_WINDOW')
    const wide = await craft({
      signer: owner,
      audience: namespaceDid(ns),
      namespace: ns,
      nb: { effects },
      nbf: NOW / 1000,
      exp: NOW / 1000 + 3600,
      nonce: 'a-long-nonce',
    })
    assert.equal(
      errorCode(() => verifyWriteInvocation(wide.bytes, { namespace: ns, now: NOW })),
      'INVOCATION_OUTSIDE_WINDOW',
    )
    await assert.rejects(invokeWrite({ issuer: owner, namespace: ns, effects, windowMs: 3_600_000 }), {
      code: 'INVALID_INPUT',
    })
  })

  it('refuses an invocation for another namespace, or tampered with, or without nonce or window', async () => {
    const inv = await invokeWrite({ issuer: owner, namespace: ns, effects, now: NOW })
    const check = (bytes: unknown, namespace = ns) =>
      errorCode(() => verifyWriteInvocation(bytes, { namespace, now: NOW }))
    assert.equal(check(inv.bytes, testNamespace('elsewhere')), 'GRANT_WRONG_AUDIENCE')
    const otherWrites = tamper(inv.bytes, (t) => {
      ;(t.att as Array<{ nb: { effects: string } }>)[0].nb.effects = otherEffects
    })
    assert.equal(check(otherWrites), 'GRANT_FORGED')
    const base = {
      signer: owner,
      audience: namespaceDid(ns),
      namespace: ns,
      nb: { effects },
      nbf: NOW / 1000,
      exp: NOW / 1000 + 60,
    }
    assert.equal(check((await craft(base)).bytes), 'GRANT_MALFORMED', 'no nonce')
    assert.equal(check((await craft({ ...base, nonce: 'short' })).bytes), 'GRANT_MALFORMED', 'short nonce')
    assert.equal(
      check((await craft({ ...base, nonce: 'long-enough', nbf: undefined })).bytes),
      'GRANT_MALFORMED',
    )
    assert.equal(
      check((await craft({ ...base, nonce: 'long-enough', nb: { effects: 'x' } })).bytes),
      'GRANT_MALFORMED',
    )
    assert.equal(
      check((await craft({ ...base, nonce: 'long-enough', audience: keyDid(keyId(owner)) })).bytes),
      'GRANT_WRONG_AUDIENCE',
    )
    for (const garbage of [undefined, 'x', new Uint8Array(0), new Uint8Array([0xa0])]) {
      const code = check(garbage)
      assert.equal(code, 'GRANT_MALFORMED', String(garbage))
    }
  })
})
