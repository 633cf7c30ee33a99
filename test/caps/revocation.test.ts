import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import {
  delegateWrite,
  namespaceDid,
  namespaceResource,
  revoke,
  verifyGrant,
  verifyRevocation,
  type WriteGrant,
} from '../../src/caps/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { craft, tamper, testFunction, testNamespace } from './craft.ts'

const NOW = 1_800_000_000_000
const DAY = 86_400_000
const ns = testNamespace('site')
const fn = testFunction('guestbook')

describe('revocations', () => {
  let owner: PrivateKey
  let editor: PrivateKey
  let stranger: PrivateKey
  let ownerId: string
  let toEditor: WriteGrant
  let editorToFn: WriteGrant
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'done',
      (err: CovenantError) => err.code,
    )

  before(async () => {
    ;[owner, editor, stranger] = await Promise.all([generateKey(), generateKey(), generateKey()])
    ownerId = keyId(owner)
    toEditor = await delegateWrite({
      issuer: owner,
      audience: keyId(editor),
      namespace: ns,
      prefix: 'blog/',
      expiresAt: NOW + DAY,
    })
    editorToFn = await delegateWrite({
      issuer: editor,
      audience: { fn },
      namespace: ns,
      prefix: 'blog/c/',
      expiresAt: NOW + DAY,
      proof: toEditor,
    })
  })

  it('lets the issuer revoke, and any holder check it and honour it from its time on', async () => {
    const revocation = await revoke({ issuer: editor, namespace: ns, grant: editorToFn, effectiveAt: NOW })
    const v = verifyRevocation(revocation, { namespace: ns, owner: ownerId })
    assert.equal(v.revoked, editorToFn.cid)
    assert.equal(v.revoker, keyId(editor))
    assert.equal(v.effectiveAt, NOW)
    const revoked = new Map([[v.revoked, v.effectiveAt]])
    const isRevoked = (cid: string, at: number) => (revoked.get(cid) ?? Number.POSITIVE_INFINITY) <= at
    const check = (now: number) =>
      errorCode(() =>
        verifyGrant(editorToFn.chain, { namespace: ns, owner: ownerId, writer: { fn }, now, isRevoked }),
      )
    assert.equal(check(NOW - 1), undefined, 'a write before the revocation stands')
    assert.equal(check(NOW), 'GRANT_REVOKED')
    // the editor's own grant is untouched
    assert.equal(
      verifyGrant(toEditor.chain, {
        namespace: ns,
        owner: ownerId,
        writer: { key: keyId(editor) },
        now: NOW,
        isRevoked,
      }).cid,
      toEditor.cid,
    )
  })

  it('lets an issuer above revoke a delegation below it, and a revoked link kills the chain', async () => {
    const revocation = await revoke({
      issuer: owner,
      namespace: ns,
      grant: editorToFn,
      delegation: toEditor.cid,
      effectiveAt: NOW,
    })
    const v = verifyRevocation(revocation, { namespace: ns, owner: ownerId })
    assert.equal(v.revoked, toEditor.cid)
    assert.equal(v.revoker, ownerId)
    assert.equal(
      errorCode(() =>
        verifyGrant(editorToFn.chain, {
          namespace: ns,
          owner: ownerId,
          writer: { fn },
          now: NOW,
          isRevoked: (cid) => cid === v.revoked,
        }),
      ),
      'GRANT_REVOKED',
    )
    // an expired delegation may still be revoked
    const old = await delegateWrite({ issuer: owner, audience: { fn }, namespace: ns, expiresAt: NOW - DAY })
    assert.equal(
      verifyRevocation(await revoke({ issuer: owner, namespace: ns, grant: old }), {
        namespace: ns,
        owner: ownerId,
      }).revoked,
      old.cid,
    )
  })

  it('refuses a revocation by the audience, a stranger or an issuer below (REVOCATION_REFUSED)', async () => {
    assert.equal(
      await codeOf(revoke({ issuer: stranger, namespace: ns, grant: editorToFn })),
      'REVOCATION_REFUSED',
    )
    // the editor is the audience of toEditor, not its issuer
    assert.equal(
      await codeOf(revoke({ issuer: editor, namespace: ns, grant: toEditor })),
      'REVOCATION_REFUSED',
    )
    assert.equal(
      await codeOf(revoke({ issuer: owner, namespace: ns, grant: toEditor, delegation: editorToFn.cid })),
      'REVOCATION_REFUSED',
    )
    // crafted by hand, past revoke()'s own checks: the holder refuses it all the same
    const forgedByStranger = await craft({
      signer: stranger,
      audience: namespaceDid(ns),
      with: namespaceResource(ns),
      can: 'ucan/revoke',
      nb: { ucan: editorToFn.cid },
      exp: null,
      nbf: NOW / 1000,
      proofs: [editorToFn.cid],
    })
    const check = (value: unknown) =>
      errorCode(() => verifyRevocation(value, { namespace: ns, owner: ownerId }))
    assert.equal(check({ ucan: forgedByStranger.bytes, chain: editorToFn.chain }), 'REVOCATION_REFUSED')
  })

  it('refuses forged, misaddressed, mismatched and malformed revocations, each with its code', async () => {
    const good = await revoke({ issuer: owner, namespace: ns, grant: toEditor, effectiveAt: NOW })
    const check = (value: unknown, namespace = ns) =>
      errorCode(() => verifyRevocation(value, { namespace, owner: ownerId }))
    assert.equal(check(good), undefined)
    const postponed = tamper(good.ucan, (t) => {
      t.nbf = NOW / 1000 + 3600
    })
    assert.equal(check({ ...good, ucan: postponed }), 'GRANT_FORGED')
    const otherTarget = tamper(good.ucan, (t) => {
      ;(t.att as Array<{ nb: { ucan: string } }>)[0].nb.ucan = editorToFn.cid
    })
    assert.equal(check({ ...good, ucan: otherTarget }), 'GRANT_FORGED')
    // a real revocation of one delegation, sent with the chain of another
    assert.equal(check({ ...good, chain: editorToFn.chain }), 'REVOCATION_REFUSED')
    // the grant's chain and the revocation name this namespace; the holder of another refuses
    assert.equal(check(good, testNamespace('elsewhere')), 'GRANT_WRONG_AUDIENCE')
    for (const bad of [
      undefined,
      {},
      { ucan: good.ucan },
      { ucan: 'x', chain: good.chain },
      { ...good, extra: 1 },
    ])
      assert.equal(check(bad), 'GRANT_MALFORMED', JSON.stringify(bad))
  })

  it('cannot be escaped by re-spelling the revoked delegation: a padded signature is malformed', async () => {
    // Found by the fuzzer (test/fuzz, target "invocation"): dag-ucan reads a signature's stated
    // length and ignores what follows, so the grantee could pad its delegation's signature, get
    // the same signed token under a new CID, and write on with it after the owner revoked the old.
    const revocation = await revoke({ issuer: owner, namespace: ns, grant: toEditor, effectiveAt: NOW })
    const revoked = verifyRevocation(revocation, { namespace: ns, owner: ownerId }).revoked
    const isRevoked = (cid: string) => cid === revoked
    const check = (chain: Uint8Array[]) =>
      errorCode(() =>
        verifyGrant(chain, {
          namespace: ns,
          owner: ownerId,
          writer: { key: keyId(editor) },
          now: NOW,
          isRevoked,
        }),
      )
    assert.equal(check(toEditor.chain), 'GRANT_REVOKED')
    for (const pad of [[0], [1, 2, 3], [...new Uint8Array(64)]]) {
      const padded = tamper(toEditor.chain[0], (t) => {
        t.s = Uint8Array.from([...(t.s as Uint8Array), ...pad])
      })
      assert.equal(check([padded]), 'GRANT_MALFORMED', `padded with ${pad.length} bytes`)
    }
    // and the revocation token itself has one spelling too
    const paddedRevocation = tamper(revocation.ucan, (t) => {
      t.s = Uint8Array.from([...(t.s as Uint8Array), 0])
    })
    assert.equal(
      errorCode(() =>
        verifyRevocation({ ...revocation, ucan: paddedRevocation }, { namespace: ns, owner: ownerId }),
      ),
      'GRANT_MALFORMED',
    )
  })
})
