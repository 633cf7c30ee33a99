import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import {
  authorizeWrite,
  delegateWrite,
  functionDid,
  keyDid,
  MAX_CHAIN_LENGTH,
  namespaceResource,
  verifyGrant,
  type WriteGrant,
} from '../../src/caps/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { craft, tamper, testFunction, testNamespace } from './craft.ts'

const NOW = 1_800_000_000_000
const DAY = 86_400_000
const ns = testNamespace('site')
const otherNs = testNamespace('other site')
const fn = testFunction('guestbook v1')
const modifiedFn = testFunction('guestbook v1, one line changed')

describe('write grants', () => {
  let owner: PrivateKey
  let editor: PrivateKey
  let stranger: PrivateKey
  let ownerId: string
  let toFn: WriteGrant
  let toEditor: WriteGrant
  let editorToFn: WriteGrant

  const check = (chain: unknown, writer: { key: string } | { fn: string }, now = NOW) =>
    verifyGrant(chain, { namespace: ns, owner: ownerId, writer, now })

  before(async () => {
    ;[owner, editor, stranger] = await Promise.all([generateKey(), generateKey(), generateKey()])
    ownerId = keyId(owner)
    toFn = await delegateWrite({
      issuer: owner,
      audience: { fn },
      namespace: ns,
      prefix: 'posts/',
      expiresAt: NOW + DAY,
    })
    toEditor = await delegateWrite({
      issuer: owner,
      audience: keyId(editor),
      namespace: ns,
      prefix: 'blog/',
      expiresAt: NOW + 7 * DAY,
    })
    editorToFn = await delegateWrite({
      issuer: editor,
      audience: { fn },
      namespace: ns,
      prefix: 'blog/comments/',
      expiresAt: NOW + DAY,
      proof: toEditor,
    })
  })

  it('lets the owner delegate to a function, and the function write under the prefix', () => {
    const g = check(toFn.chain, { fn })
    assert.equal(g.cid, toFn.cid)
    assert.equal(g.prefix, 'posts/')
    assert.deepEqual(g.writer, { fn })
    assert.deepEqual(g.issuers, [ownerId])
    assert.equal(g.expiresAt, NOW + DAY)
    const ok = authorizeWrite({
      grants: [toFn.chain],
      namespace: ns,
      owner: ownerId,
      writer: { fn },
      keys: ['posts/1', 'posts/2'],
      now: NOW,
    })
    assert.equal(ok.grants.length, 1)
  })

  it('lets a delegate re-delegate a narrower right, down a chain the holder checks link by link', () => {
    assert.equal(editorToFn.chain.length, 2)
    const g = check(editorToFn.chain, { fn })
    assert.deepEqual(g.issuers, [keyId(editor), ownerId])
    assert.deepEqual(g.delegations, [editorToFn.cid, toEditor.cid])
    assert.equal(g.prefix, 'blog/comments/')
    // the editor writes with its own grant too
    assert.equal(check(toEditor.chain, { key: keyId(editor) }).prefix, 'blog/')
  })

  it('needs no grant for the owner, and refuses anyone else without one (GRANT_MISSING)', () => {
    const base = { namespace: ns, owner: ownerId, keys: ['anything'], now: NOW }
    assert.deepEqual(authorizeWrite({ ...base, writer: { key: ownerId }, grants: [] }).grants, [])
    assert.equal(
      errorCode(() => authorizeWrite({ ...base, writer: { key: keyId(stranger) }, grants: [] })),
      'GRANT_MISSING',
    )
    assert.equal(
      errorCode(() => authorizeWrite({ ...base, writer: { fn }, grants: [] })),
      'GRANT_MISSING',
    )
  })

  it('refuses a key outside the granted prefix (GRANT_WIDENED)', () => {
    const base = { grants: [toFn.chain], namespace: ns, owner: ownerId, writer: { fn }, now: NOW }
    assert.equal(
      errorCode(() => authorizeWrite({ ...base, keys: ['posts/1', 'admin'] })),
      'GRANT_WIDENED',
    )
    assert.equal(
      errorCode(() => authorizeWrite({ ...base, keys: ['posts'] })),
      'GRANT_WIDENED',
    )
  })

  it('gives a modified function (another CID) no right (GRANT_WRONG_AUDIENCE)', () => {
    assert.equal(
      errorCode(() => check(toFn.chain, { fn: modifiedFn })),
      'GRANT_WRONG_AUDIENCE',
    )
    assert.equal(
      errorCode(() => check(toEditor.chain, { key: keyId(stranger) })),
      'GRANT_WRONG_AUDIENCE',
    )
    // the function's grant does not make its publisher, or anyone, a writer
    assert.equal(
      errorCode(() => check(toFn.chain, { key: keyId(stranger) })),
      'GRANT_WRONG_AUDIENCE',
    )
  })

  it('refuses a grant for another namespace of the same owner (GRANT_WRONG_AUDIENCE)', async () => {
    const elsewhere = await delegateWrite({
      issuer: owner,
      audience: { fn },
      namespace: otherNs,
      expiresAt: NOW + DAY,
    })
    assert.equal(
      errorCode(() => check(elsewhere.chain, { fn })),
      'GRANT_WRONG_AUDIENCE',
    )
  })

  it('refuses expired and not-yet-valid grants, at the time it is told', async () => {
    assert.equal(
      errorCode(() => check(toFn.chain, { fn }, NOW + DAY)),
      'GRANT_EXPIRED',
    )
    assert.equal(check(toFn.chain, { fn }, NOW + DAY - 1).cid, toFn.cid)
    // the chain's root expires before the leaf is asked about: the whole chain is dead
    assert.equal(
      errorCode(() => check(editorToFn.chain, { fn }, NOW + 7 * DAY)),
      'GRANT_EXPIRED',
    )
    const later = await delegateWrite({
      issuer: owner,
      audience: { fn },
      namespace: ns,
      expiresAt: NOW + 2 * DAY,
      notBefore: NOW + DAY,
    })
    assert.equal(
      errorCode(() => check(later.chain, { fn })),
      'GRANT_NOT_YET_VALID',
    )
    assert.equal(check(later.chain, { fn }, NOW + DAY).cid, later.cid)
  })

  it('refuses a revoked delegation anywhere in the chain (GRANT_REVOKED)', () => {
    const revoked = new Set([toEditor.cid])
    const ctx = { namespace: ns, owner: ownerId, now: NOW, isRevoked: (cid: string) => revoked.has(cid) }
    assert.equal(
      errorCode(() => verifyGrant(editorToFn.chain, { ...ctx, writer: { fn } })),
      'GRANT_REVOKED',
    )
    assert.equal(verifyGrant(toFn.chain, { ...ctx, writer: { fn } }).cid, toFn.cid)
  })

  it('remembers a chain it checked by its bytes, namespace and owner; time, revocation and audience are checked at every use', () => {
    assert.equal(check(toFn.chain, { fn }).cid, toFn.cid)
    // the same bytes, copied, are the same chain
    assert.equal(
      check(
        toFn.chain.map((b) => b.slice()),
        { fn },
      ).cid,
      toFn.cid,
    )
    const at = (over: Partial<Parameters<typeof verifyGrant>[1]>) => () =>
      verifyGrant(toFn.chain, { namespace: ns, owner: ownerId, writer: { fn }, now: NOW, ...over })
    assert.equal(errorCode(at({ namespace: otherNs })), 'GRANT_WRONG_AUDIENCE')
    assert.equal(errorCode(at({ owner: keyId(stranger) })), 'GRANT_BROKEN_CHAIN')
    assert.equal(errorCode(at({ now: NOW + DAY })), 'GRANT_EXPIRED')
    assert.equal(errorCode(at({ isRevoked: (cid) => cid === toFn.cid })), 'GRANT_REVOKED')
    assert.equal(errorCode(at({ writer: { fn: modifiedFn } })), 'GRANT_WRONG_AUDIENCE')
    // the same token with its prefix edited (the signature kept) is another chain, checked in full
    const widened = tamper(toFn.chain[0], (t) => {
      ;(t.att as Array<{ nb: { prefix: string } }>)[0].nb.prefix = ''
    })
    assert.equal(
      errorCode(() => check([widened], { fn })),
      'GRANT_FORGED',
    )
    assert.equal(errorCode(at({})), undefined)
  })

  it('refuses to re-delegate more than is held, or what is not one’s own, already when issuing', async () => {
    const redelegate = (init: Partial<Parameters<typeof delegateWrite>[0]>) =>
      delegateWrite({
        issuer: editor,
        audience: { fn },
        namespace: ns,
        prefix: 'blog/x/',
        expiresAt: NOW + DAY,
        proof: toEditor,
        ...init,
      }).then(
        () => 'issued',
        (err: CovenantError) => err.code,
      )
    assert.equal(await redelegate({}), 'issued')
    assert.equal(await redelegate({ prefix: '' }), 'GRANT_WIDENED')
    assert.equal(await redelegate({ prefix: 'posts/' }), 'GRANT_WIDENED')
    assert.equal(await redelegate({ expiresAt: NOW + 8 * DAY }), 'GRANT_WIDENED')
    assert.equal(await redelegate({ issuer: stranger }), 'GRANT_WRONG_AUDIENCE')
    assert.equal(await redelegate({ namespace: otherNs }), 'GRANT_WRONG_AUDIENCE')
    assert.equal(await redelegate({ audience: 'not a key' }), 'INVALID_INPUT')
  })

  describe('an attacker’s tokens', () => {
    const editorDid = () => keyDid(keyId(editor))

    it('forged: a token claiming the owner as issuer but signed by another key (GRANT_FORGED)', async () => {
      const t = await craft({
        signer: stranger,
        issuer: keyDid(ownerId),
        audience: functionDid(fn),
        namespace: ns,
      })
      assert.equal(
        errorCode(() => check([t.bytes], { fn })),
        'GRANT_FORGED',
      )
    })

    it('forged: the owner’s token with its prefix or audience edited (GRANT_FORGED)', () => {
      const widened = tamper(toFn.chain[0], (t) => {
        ;(t.att as Array<{ nb: { prefix: string } }>)[0].nb.prefix = ''
      })
      assert.equal(
        errorCode(() => check([widened], { fn })),
        'GRANT_FORGED',
      )
      const flipped = new Uint8Array(toFn.chain[0])
      flipped[20] ^= 1 // inside the signature: `s` sorts first in DAG-CBOR
      assert.equal(
        errorCode(() => check([flipped], { fn })),
        'GRANT_FORGED',
      )
    })

    it('widened: a re-delegation wider than its proof, in prefix, expiry or start (GRANT_WIDENED)', async () => {
      const cases: Array<[string, Parameters<typeof craft>[0]]> = [
        ['prefix', { signer: editor, audience: functionDid(fn), namespace: ns, nb: { prefix: 'b' } }],
        [
          'expiry',
          {
            signer: editor,
            audience: functionDid(fn),
            namespace: ns,
            nb: { prefix: 'blog/' },
            exp: (NOW + 30 * DAY) / 1000,
          },
        ],
        [
          'another namespace',
          {
            signer: editor,
            audience: functionDid(fn),
            with: namespaceResource(otherNs),
            nb: { prefix: 'blog/' },
            exp: (NOW + DAY) / 1000,
          },
        ],
      ]
      for (const [what, init] of cases) {
        const t = await craft({ ...init, proofs: [toEditor.cid] })
        assert.equal(
          errorCode(() => check([t.bytes, ...toEditor.chain], { fn })),
          'GRANT_WIDENED',
          what,
        )
      }
      const early = await delegateWrite({
        issuer: owner,
        audience: keyId(editor),
        namespace: ns,
        expiresAt: NOW + DAY,
        notBefore: NOW - DAY,
      })
      const before = await craft({
        signer: editor,
        audience: functionDid(fn),
        namespace: ns,
        exp: (NOW + DAY) / 1000,
        nbf: (NOW - 2 * DAY) / 1000,
        proofs: [early.cid],
      })
      assert.equal(
        errorCode(() => check([before.bytes, ...early.chain], { fn })),
        'GRANT_WIDENED',
      )
    })

    it('broken chain: self-issued, not rooted at the owner, missing or reordered links (GRANT_BROKEN_CHAIN)', async () => {
      const selfIssued = await delegateWrite({
        issuer: stranger,
        audience: { fn },
        namespace: ns,
        expiresAt: NOW + DAY,
      })
      assert.equal(
        errorCode(() => check(selfIssued.chain, { fn })),
        'GRANT_BROKEN_CHAIN',
      )
      assert.equal(
        errorCode(() => check([editorToFn.chain[0]], { fn })),
        'GRANT_BROKEN_CHAIN',
      )
      assert.equal(
        errorCode(() => check([...editorToFn.chain].reverse(), { fn })),
        'GRANT_BROKEN_CHAIN',
      )
      assert.equal(
        errorCode(() => check([editorToFn.chain[0], toFn.chain[0]], { fn })),
        'GRANT_BROKEN_CHAIN',
      )
      // the stranger re-delegates the editor's grant, which is not addressed to it
      const stolen = await craft({
        signer: stranger,
        audience: functionDid(fn),
        namespace: ns,
        nb: { prefix: 'blog/' },
        exp: (NOW + DAY) / 1000,
        proofs: [toEditor.cid],
      })
      assert.equal(
        errorCode(() => check([stolen.bytes, ...toEditor.chain], { fn })),
        'GRANT_BROKEN_CHAIN',
      )
      // a function cannot sign, so nothing issued "by" it verifies
      const byFn = await craft({
        signer: stranger,
        issuer: functionDid(fn),
        audience: editorDid(),
        namespace: ns,
      })
      assert.equal(
        errorCode(() => check([byFn.bytes], { key: keyId(editor) })),
        'GRANT_MALFORMED',
      )
    })

    it('malformed: garbage, wrong shapes, other abilities, no expiry, JWT form (GRANT_MALFORMED)', async () => {
      const sign = (init: Partial<Parameters<typeof craft>[0]>) =>
        craft({ signer: owner, audience: functionDid(fn), namespace: ns, ...init }).then((t) => [t.bytes])
      const cases: Array<[string, unknown]> = [
        ['not an array', toFn.chain[0]],
        ['empty chain', []],
        ['too long', Array.from({ length: MAX_CHAIN_LENGTH + 1 }, () => toFn.chain[0])],
        ['garbage bytes', [new Uint8Array([1, 2, 3])]],
        ['a string', ['bafy']],
        ['truncated', [toFn.chain[0].subarray(0, toFn.chain[0].length - 10)]],
        ['trailing byte', [new Uint8Array([...toFn.chain[0], 0])]],
        ['huge', [new Uint8Array(100_000)]],
        ['another ability', await sign({ can: 'store/read' })],
        ['extra caveat', await sign({ nb: { prefix: '', admin: true } })],
        ['no prefix', await sign({ nb: {} })],
        ['prefix with a control character', await sign({ nb: { prefix: 'a\u0000' } })],
        ['never expires', await sign({ exp: null })],
        ['addressed to a URL', await sign({ audience: 'did:web:example.com' })],
        ['JWT form', [new TextEncoder().encode('eyJhbGciOiJFZERTQSJ9.e30.AA')]],
      ]
      for (const [what, chain] of cases)
        assert.equal(
          errorCode(() => check(chain, { fn })),
          'GRANT_MALFORMED',
          what,
        )
    })

    it('never crashes: every single-byte change of a valid chain is refused with a GRANT_ code', () => {
      const [leaf, root] = editorToFn.chain
      const seen = new Set<string>()
      for (let i = 0; i < leaf.length; i++) {
        for (const chain of [
          [Object.assign(new Uint8Array(leaf), { [i]: leaf[i] ^ 0x01 }), root],
          [leaf, Object.assign(new Uint8Array(root), { [i % root.length]: root[i % root.length] ^ 0x80 })],
        ]) {
          try {
            check(chain, { fn })
            assert.fail(`a changed byte at ${i} was accepted`)
          } catch (err) {
            assert.ok(err instanceof CovenantError, `byte ${i}: ${err}`)
            assert.match(err.code, /^GRANT_/, `byte ${i}: ${err.code}`)
            seen.add(err.code)
          }
        }
      }
      assert.ok(seen.has('GRANT_FORGED') && seen.has('GRANT_MALFORMED'), [...seen].join())
    })
  })
})
