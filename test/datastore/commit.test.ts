/**
 * One holder's commits: the owner's and a delegate's direct writes, a function's certified writes,
 * MVCC, idempotency and replays, the write policy, revocation, limits, and atomicity.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, before, beforeEach, describe, it } from 'node:test'
import { delegateWrite, grantToJSON, revoke, type WriteGrant } from '../../src/caps/index.ts'
import type { Manifest } from '../../src/content/index.ts'
import {
  createFunctionCommit,
  createKeyCommit,
  createNamespace,
  createPolicyCommit,
  type Datastore,
  MAX_READS,
  MAX_VALUE_BYTES,
  MAX_WRITES,
  openDatastore,
  type SignedDescriptor,
  type StoreEffects,
  signVouch,
  standingGrantKey,
  updateNamespace,
  vouchKey,
  vouchToJSON,
} from '../../src/datastore/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { type Cluster, certifiedRun, fullView, makeCluster, publish } from './certified-run.ts'

const T0 = 1_800_000_000_000
const YEAR = 365 * 86_400_000

describe('commits to a namespace', () => {
  let dir: string
  let cluster: Cluster
  let owner: PrivateKey
  let editor: PrivateKey
  let stranger: PrivateKey
  let guestbook: { fn: string; manifest: Manifest }
  let tampered: { fn: string; manifest: Manifest }
  let ns: string
  let genesis: SignedDescriptor
  let fnGrant: WriteGrant
  let editorGrant: WriteGrant
  let store: Datastore
  const clock = { t: T0 }

  const write = (
    issuer: PrivateKey,
    writes: StoreEffects['writes'],
    extra: Partial<Parameters<typeof createKeyCommit>[0]> = {},
  ) => createKeyCommit({ issuer, ns, writes, now: clock.t, ...extra })
  const functionCommit = (
    effects: Omit<StoreEffects, 'ns'>,
    init: Partial<Parameters<typeof certifiedRun>[1]> = {},
    grants = [fnGrant],
  ) => {
    const run = certifiedRun(cluster, { ...guestbook, effects: [{ ns, ...effects }], ...init })
    return createFunctionCommit({ ...run, effects: { ns, ...effects }, grants })
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-datastore-'))
    cluster = await makeCluster(5)
    ;[owner, editor, stranger] = await Promise.all([generateKey(), generateKey(), generateKey()])
    guestbook = publish(cluster, 'export function main() {}')
    tampered = publish(cluster, 'export function main() { /* writes anything */ }')
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  beforeEach(async () => {
    clock.t = T0
    ;({ id: ns, descriptor: genesis } = createNamespace(owner, {
      name: 'guestbook',
      public: true,
      issuedAt: T0,
    }))
    fnGrant = await delegateWrite({
      issuer: owner,
      audience: { fn: guestbook.fn },
      namespace: ns,
      prefix: 'entries/',
      expiresAt: T0 + YEAR,
    })
    editorGrant = await delegateWrite({
      issuer: owner,
      audience: keyId(editor),
      namespace: ns,
      prefix: 'pages/',
      expiresAt: T0 + YEAR,
    })
    store?.close()
    store = openDatastore({
      path: join(dir, `${Math.random().toString(36).slice(2)}.db`),
      verifyRun: fullView(cluster, guestbook, tampered),
      now: () => clock.t,
    })
    store.create(genesis)
  })

  it('applies the owner’s own writes, versions every key and keeps every past version readable', async () => {
    const first = store.commit(
      await write(owner, [
        { key: 'title', value: 'Guests' },
        { key: 'open', value: true },
      ]),
    )
    assert.deepEqual([first.seq, first.duplicate], [1, false])
    clock.t += 1000
    const second = store.commit(await write(owner, [{ key: 'title', value: { text: 'Guests', lang: 'en' } }]))
    clock.t += 1000
    const third = store.commit(await write(owner, [{ key: 'open', value: null }]))
    assert.deepEqual(store.get(ns, 'title'), { value: { text: 'Guests', lang: 'en' }, version: 2 })
    assert.deepEqual(
      store.get(ns, 'open'),
      { value: null, version: 3 },
      'deleted, at the version that deleted it',
    )
    assert.deepEqual(store.get(ns, 'never'), { value: null, version: 0 })
    assert.deepEqual(store.get(ns, 'title', { at: 1 }), { value: 'Guests', version: 1 })
    assert.deepEqual(store.get(ns, 'open', { at: 2 }), { value: true, version: 1 })
    assert.deepEqual(store.get(ns, 'title', { at: 0 }), { value: null, version: 0 })
    assert.deepEqual(
      store.list(ns).map((e) => e.key),
      ['title'],
    )
    assert.deepEqual(
      store.list(ns, { at: 1 }).map((e) => [e.key, e.value]),
      [
        ['open', true],
        ['title', 'Guests'],
      ],
    )
    assert.deepEqual(
      store.keyHistory(ns, 'title').map((v) => v.version),
      [2, 1],
    )
    assert.deepEqual(store.keyHistory(ns, 'open'), [
      { value: null, version: 3 },
      { value: true, version: 1 },
    ])
    const history = store.history(ns)
    assert.deepEqual(
      history.map((h) => [h.seq, h.kind, h.keys]),
      [
        [1, 'key', ['title', 'open']],
        [2, 'key', ['title']],
        [3, 'key', ['open']],
      ],
    )
    assert.deepEqual(
      history.map((h) => h.cid),
      [first.cid, second.cid, third.cid],
    )
    assert.deepEqual(store.head(ns), { seq: 3, cid: third.cid, at: T0 + 2000 })
    assert.equal(
      errorCode(() => store.get(ns, 'title', { at: 4 })),
      'INVALID_INPUT',
    )
    assert.equal(
      errorCode(() => store.get(ns, '')),
      'INVALID_INPUT',
    )
    assert.equal(
      errorCode(() => store.get('bafynot', 'title')),
      'NAMESPACE_NOT_FOUND',
    )
  })

  it('lists by prefix in byte order, page by page', async () => {
    const writes = ['a/2', 'a/1', 'b/1', 'a/10', 'a'].map((key, i) => ({ key, value: i }))
    store.commit(await write(owner, writes))
    assert.deepEqual(
      store.list(ns, { prefix: 'a/' }).map((e) => e.key),
      ['a/1', 'a/10', 'a/2'],
    )
    assert.deepEqual(
      store.list(ns, { prefix: 'a/', after: 'a/1', limit: 1 }).map((e) => e.key),
      ['a/10'],
    )
    assert.deepEqual(
      store.list(ns, { limit: 2 }).map((e) => e.key),
      ['a', 'a/1'],
    )
    assert.equal(
      errorCode(() => store.list(ns, { limit: 0 })),
      'INVALID_INPUT',
    )
  })

  it('lists exactly the keys under a prefix, whatever code points end it or follow it', async () => {
    // the listing scans up to the prefix with its last code point raised: keys just past that
    // bound, and prefixes whose last code point cannot be raised, list as a whole scan would
    const keys = [
      'p/',
      'p/a',
      'p/\u{10ffff}',
      'p/\u{10ffff}z',
      'p0',
      'p/é',
      'p\u{10ffff}',
      'p\u{10ffff}x',
      'q',
    ]
    store.commit(
      await write(
        owner,
        keys.map((key, i) => ({ key, value: i })),
      ),
    )
    const listed = (prefix: string) => store.list(ns, { prefix }).map((e) => e.key)
    assert.deepEqual(listed('p/'), ['p/', 'p/a', 'p/é', 'p/\u{10ffff}', 'p/\u{10ffff}z'])
    assert.deepEqual(listed('p/\u{10ffff}'), ['p/\u{10ffff}', 'p/\u{10ffff}z'])
    assert.deepEqual(listed('p\u{10ffff}'), ['p\u{10ffff}', 'p\u{10ffff}x'])
    assert.deepEqual(
      listed('p'),
      keys.filter((k) => k.startsWith('p')).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    )
  })

  it('applies a function’s writes certified by a quorum, under the grant its CID holds', () => {
    const result = store.commit(
      functionCommit({ writes: [{ key: 'entries/1', value: { name: 'Ada', text: 'hello' } }], reads: [] }),
    )
    assert.deepEqual([result.seq, result.duplicate], [1, false])
    assert.deepEqual(store.get(ns, 'entries/1'), { value: { name: 'Ada', text: 'hello' }, version: 1 })
    assert.equal(store.history(ns)[0].kind, 'function')
  })

  it('gives a modified function (another CID) no right to write, even with a valid certificate', () => {
    const run = certifiedRun(cluster, {
      ...tampered,
      effects: [{ ns, writes: [{ key: 'entries/1', value: 'spam' }], reads: [] }],
    })
    const commit = createFunctionCommit({ ...run, effects: run.output.store[0], grants: [fnGrant] })
    assert.equal(
      errorCode(() => store.commit(commit)),
      'GRANT_WRONG_AUDIENCE',
    )
    assert.equal(store.head(ns).seq, 0)
  })

  it('refuses writes the certificate does not certify, and certificates the holder’s view does not back', () => {
    const honest = functionCommit({ writes: [{ key: 'entries/1', value: 'ok' }], reads: [] })
    // the same certificate, with other writes claimed beside it
    assert.equal(
      errorCode(() => store.commit({ ...honest, writes: [{ key: 'entries/1', value: 'forged' }] })),
      'INVALID_CERTIFICATE',
    )
    // the certified output itself edited
    const output = {
      ...(honest.proof.output as object),
      store: [{ ns, writes: [{ key: 'entries/1', value: 'forged' }], reads: [] }],
    }
    assert.equal(
      errorCode(() =>
        store.commit({
          ...honest,
          writes: [{ key: 'entries/1', value: 'forged' }],
          proof: { ...honest.proof, output },
        }),
      ),
      'INVALID_CERTIFICATE',
    )
    // a holder that does not know two of the executors cannot count them
    const narrow = openDatastore({
      path: ':memory:',
      verifyRun: fullView({ ...cluster, nodes: [] }, guestbook),
      now: () => clock.t,
    })
    narrow.create(genesis)
    assert.equal(
      errorCode(() => narrow.commit(honest)),
      'INVALID_CERTIFICATE',
    )
    narrow.close()
    assert.equal(store.commit(honest).seq, 1)
  })

  it('holds a function to the write policy: minimum k and q, and who may certify', async () => {
    const effects = { writes: [{ key: 'entries/1', value: 'x' }], reads: [] }
    assert.equal(
      errorCode(() => store.commit(functionCommit(effects, { k: 2, q: 2 }))),
      'WRITE_POLICY_UNMET',
    )
    assert.equal(
      errorCode(() => store.commit(functionCommit(effects, { k: 3, q: 1 }))),
      'WRITE_POLICY_UNMET',
    )
    // the owner raises q and names who vouches for certifiers; the caller cannot lower it
    const strict = updateNamespace(owner, genesis, {
      policy: { minReplicas: 3, minQuorum: 3, certifiers: { vouchedBy: [keyId(owner)] } },
      issuedAt: T0,
    })
    store.commit(createPolicyCommit(strict))
    assert.equal(store.namespace(ns)?.policy.minQuorum, 3)
    assert.equal(
      errorCode(() => store.commit(functionCommit(effects, { k: 3, q: 2 }))),
      'WRITE_POLICY_UNMET',
    )
    const run = functionCommit(effects, { k: 3, q: 3 })
    assert.equal(
      errorCode(() => store.commit(run)),
      'WRITE_POLICY_UNMET',
      'nobody vouched for them yet',
    )
    const vouch = (by: PrivateKey, executor: string, expiresAt = T0 + YEAR, voucher = by) => ({
      key: vouchKey(executor, keyId(voucher)),
      value: vouchToJSON({ ...signVouch(by, { executor, expiresAt }), voucher: keyId(voucher) }),
    })
    // vouches that do not count: a stranger's signature under the owner's name, an expired one,
    // and a key the policy does not name vouching in its own name
    const [a, b, c] = cluster.nodes.map((n) => n.peer)
    clock.t += 1000
    store.commit(
      await write(owner, [
        vouch(stranger, a, T0 + YEAR, owner),
        vouch(owner, b, T0 + 500),
        {
          key: vouchKey(c, keyId(stranger)),
          value: vouchToJSON(signVouch(stranger, { executor: c, expiresAt: T0 + YEAR })),
        },
      ]),
    )
    assert.equal(
      errorCode(() => store.commit(run)),
      'WRITE_POLICY_UNMET',
    )
    clock.t += 1000
    store.commit(
      await write(
        owner,
        cluster.nodes.map((n) => vouch(owner, n.peer)),
      ),
    )
    assert.equal(store.commit(run).seq, 4)
  })

  it('relies on the standing grants the namespace keeps for the function when a commit offers none', async () => {
    const effects = { writes: [{ key: 'entries/1', value: 'standing' }], reads: [] }
    const bare = functionCommit(effects, {}, [])
    assert.equal(
      errorCode(() => store.commit(bare)),
      'GRANT_MISSING',
    )
    // a grant kept for another function, and an expired one for this one, do not help
    const expired = await delegateWrite({
      issuer: owner,
      audience: { fn: guestbook.fn },
      namespace: ns,
      prefix: 'entries/',
      expiresAt: T0 + 1000,
    })
    const elsewhere = await delegateWrite({
      issuer: owner,
      audience: { fn: tampered.fn },
      namespace: ns,
      prefix: 'entries/',
      expiresAt: T0 + YEAR,
    })
    store.commit(
      await write(owner, [
        { key: standingGrantKey(guestbook.fn, expired.cid), value: grantToJSON(expired) },
        { key: standingGrantKey(tampered.fn, elsewhere.cid), value: grantToJSON(elsewhere) },
      ]),
    )
    clock.t += 2000
    assert.equal(
      errorCode(() => store.commit(bare)),
      'GRANT_EXPIRED',
    )
    // the owner keeps a live grant; the expired one it may clear or leave: it spoils nothing
    store.commit(
      await write(owner, [{ key: standingGrantKey(guestbook.fn, fnGrant.cid), value: grantToJSON(fnGrant) }]),
    )
    const applied = store.commit(bare)
    assert.equal(applied.seq, 3)
    assert.deepEqual(store.get(ns, 'entries/1'), { value: 'standing', version: 3 })
    // the modified function finds the grant kept for it, which does not cover other keys either
    const other = createFunctionCommit({
      ...certifiedRun(cluster, {
        ...tampered,
        effects: [{ ns, writes: [{ key: 'title', value: 'x' }], reads: [] }],
      }),
      effects: { ns, writes: [{ key: 'title', value: 'x' }], reads: [] },
    })
    assert.equal(
      errorCode(() => store.commit(other)),
      'GRANT_WIDENED',
    )
    // revoked, the standing grant holds no more
    clock.t += 1000
    store.addRevocation(ns, await revoke({ issuer: owner, namespace: ns, grant: fnGrant }))
    clock.t += 1000
    const again = functionCommit({ writes: [{ key: 'entries/2', value: 'late' }], reads: [] }, {}, [])
    // none holds: the refusal is the first kept grant's (in key order, the same on every holder)
    assert.ok(['GRANT_EXPIRED', 'GRANT_REVOKED'].includes(errorCode(() => store.commit(again)) ?? ''))
    // the owner may clear a dead grant; the refusal then names the revocation
    store.commit(await write(owner, [{ key: standingGrantKey(guestbook.fn, expired.cid), value: null }]))
    assert.equal(
      errorCode(() => store.commit(again)),
      'GRANT_REVOKED',
    )
  })

  it('forgets the standing grants it listed when the history they were read from is cut or rolled back', async () => {
    const keep = async () =>
      write(owner, [{ key: standingGrantKey(guestbook.fn, fnGrant.cid), value: grantToJSON(fnGrant) }])
    const bare = (key: string) => functionCommit({ writes: [{ key, value: key }], reads: [] }, {}, [])
    // another holder's history: the grant kept (1), a write under it (2)
    const other = openDatastore({
      path: join(dir, `${Math.random().toString(36).slice(2)}.db`),
      verifyRun: fullView(cluster, guestbook, tampered),
      now: () => clock.t,
    })
    try {
      other.create(genesis)
      other.commit(await keep())
      other.commit(bare('entries/theirs'))
      const theirs = other.entriesSince(ns, 0, 10).map((e) => e.bytes)
      // here: the grant kept and used (its listing remembered), then the history cut below it
      store.commit(await keep())
      assert.equal(store.commit(bare('entries/1')).seq, 2)
      store.truncate(ns, 0)
      // versions past the one the grants were listed at, none of them a grant
      store.commit(await write(owner, [{ key: 'title', value: 'a' }]))
      store.commit(await write(owner, [{ key: 'title', value: 'b' }]))
      assert.equal(
        errorCode(() => store.commit(bare('entries/2'))),
        'GRANT_MISSING',
      )
      // a replacement that brings the grant and a write under it, then bytes that are no entry:
      // all of it rolled back, the listing made inside it with it
      assert.equal(
        errorCode(() => store.truncate(ns, 0, [...theirs, new Uint8Array([1, 2, 3])])),
        'ENTRY_INVALID',
      )
      assert.equal(store.head(ns).seq, 2)
      assert.equal(
        errorCode(() => store.commit(bare('entries/3'))),
        'GRANT_MISSING',
      )
      store.truncate(ns, 0, theirs)
      assert.equal(store.commit(bare('entries/4')).seq, 3)
    } finally {
      other.close()
    }
  })

  it('accepts only newer descriptors signed by the owner', () => {
    const v2 = updateNamespace(owner, genesis, { public: false, issuedAt: T0 })
    assert.equal(store.commit(createPolicyCommit(v2)).seq, 1)
    assert.equal(store.namespace(ns)?.public, false)
    assert.equal(store.namespace(ns)?.descriptor.version, 2)
    const alsoV2 = updateNamespace(owner, genesis, { public: true, issuedAt: T0 + 1 })
    assert.equal(
      errorCode(() => store.commit(createPolicyCommit(alsoV2))),
      'NAMESPACE_INVALID',
    )
    const forged = { ...updateNamespace(owner, v2, { issuedAt: T0 }), public: true }
    assert.equal(
      errorCode(() =>
        store.commit({
          ...createPolicyCommit(v2),
          id: createPolicyCommit(forged).id,
          proof: { descriptor: forged },
        }),
      ),
      'NAMESPACE_INVALID',
    )
    const { descriptor: strangers } = createNamespace(stranger, { name: 'guestbook', issuedAt: T0 })
    const hijack = updateNamespace(stranger, strangers, { issuedAt: T0 })
    assert.equal(
      errorCode(() => store.commit({ ...createPolicyCommit(hijack), ns })),
      'NAMESPACE_INVALID',
    )
  })

  it('lets a delegate write under its prefix only, with its grant', async () => {
    assert.equal(
      store.commit(await write(editor, [{ key: 'pages/home', value: '<h1>' }], { grants: [editorGrant] }))
        .seq,
      1,
    )
    const outside = await write(editor, [{ key: 'title', value: 'mine now' }], { grants: [editorGrant] })
    assert.equal(
      errorCode(() => store.commit(outside)),
      'GRANT_WIDENED',
    )
    const noGrant = await write(stranger, [{ key: 'pages/home', value: 'defaced' }])
    assert.equal(
      errorCode(() => store.commit(noGrant)),
      'GRANT_MISSING',
    )
    const borrowed = await write(stranger, [{ key: 'pages/home', value: 'defaced' }], {
      grants: [editorGrant],
    })
    assert.equal(
      errorCode(() => store.commit(borrowed)),
      'GRANT_WRONG_AUDIENCE',
    )
    // the grant offered must be the one the invocation signed
    const signedWithout = await write(editor, [{ key: 'pages/home', value: 'x' }])
    assert.equal(
      errorCode(() =>
        store.commit({ ...signedWithout, proof: { ...signedWithout.proof, grants: [editorGrant.chain] } }),
      ),
      'GRANT_BROKEN_CHAIN',
    )
    assert.deepEqual(store.get(ns, 'pages/home'), { value: '<h1>', version: 1 })
  })

  it('refuses a write whose grant expired or was revoked, from the revocation’s time on', async () => {
    const short = await delegateWrite({
      issuer: owner,
      audience: keyId(editor),
      namespace: ns,
      prefix: 'pages/',
      expiresAt: T0 + 60_000,
    })
    clock.t = T0 + 60_000
    const late = await write(editor, [{ key: 'pages/a', value: 1 }], { grants: [short] })
    assert.equal(
      errorCode(() => store.commit(late)),
      'GRANT_EXPIRED',
    )
    const revocation = await revoke({
      issuer: owner,
      namespace: ns,
      grant: editorGrant,
      effectiveAt: T0 + 120_000,
    })
    // a revocation is an entry of the history, and holds for the entries after it
    const recorded = store.addRevocation(ns, revocation)
    assert.equal(recorded.added, true)
    assert.equal(recorded.seq, 1)
    assert.equal(store.addRevocation(ns, revocation).added, false, 'idempotent')
    assert.deepEqual(
      store.revocations(ns).map((r) => r.seq),
      [1],
    )
    assert.equal(store.history(ns)[0].kind, 'revocation')
    // before the time it states, the revoked grant still holds
    assert.equal(
      store.commit(await write(editor, [{ key: 'pages/a', value: 2 }], { grants: [editorGrant] })).seq,
      2,
    )
    clock.t = T0 + 120_000
    const after = await write(editor, [{ key: 'pages/a', value: 3 }], { grants: [editorGrant] })
    assert.equal(
      errorCode(() => store.commit(after)),
      'GRANT_REVOKED',
    )
    // a revocation by someone without the right is refused, and changes nothing
    const bogus = await revoke({
      issuer: editor,
      namespace: ns,
      grant: await delegateWrite({
        issuer: editor,
        audience: { fn: guestbook.fn },
        namespace: ns,
        prefix: 'pages/x',
        expiresAt: T0 + YEAR,
        proof: editorGrant,
      }),
    })
    assert.equal(
      store.addRevocation(ns, bogus).revoker,
      keyId(editor),
      'the editor may revoke what it issued',
    )
    assert.equal(
      errorCode(() => store.addRevocation(ns, { ...revocation, ucan: bogus.ucan })),
      'REVOCATION_REFUSED',
    )
  })

  it('lets exactly one of two commits racing on one key win; the other gets WRITE_CONFLICT and loses nothing', async () => {
    store.commit(await write(owner, [{ key: 'counter', value: 0 }]))
    const read = store.get(ns, 'counter')
    const a = await write(owner, [{ key: 'counter', value: 1 }], {
      reads: [{ key: 'counter', version: read.version }],
    })
    const b = functionCommit({
      writes: [{ key: 'entries/counter-seen', value: 1 }],
      reads: [{ key: 'counter', version: read.version }],
    })
    assert.equal(store.commit(a).seq, 2)
    let conflict: CovenantError | undefined
    try {
      store.commit(b)
    } catch (err) {
      conflict = err as CovenantError
    }
    assert.equal(conflict?.code, 'WRITE_CONFLICT')
    assert.deepEqual(conflict?.details, { key: 'counter', read: 1, current: 2 })
    assert.deepEqual(store.get(ns, 'counter'), { value: 1, version: 2 })
    assert.deepEqual(store.get(ns, 'entries/counter-seen'), { value: null, version: 0 })
    // the loser reads again and retries: both writes are in the history
    const retry = await write(owner, [{ key: 'counter', value: 2 }], {
      reads: [{ key: 'counter', version: 2 }],
    })
    assert.equal(store.commit(retry).seq, 3)
    assert.deepEqual(
      store.keyHistory(ns, 'counter').map((v) => v.value),
      [2, 1, 0],
    )
    // a read of a key never written is at version 0, and conflicts once it is written
    const blind = await write(owner, [{ key: 'x', value: 1 }], { reads: [{ key: 'fresh', version: 0 }] })
    store.commit(await write(owner, [{ key: 'fresh', value: true }]))
    assert.equal(
      errorCode(() => store.commit(blind)),
      'WRITE_CONFLICT',
    )
  })

  it('makes the same commit twice a no-op, and a replayed invocation change nothing', async () => {
    const run = functionCommit({ writes: [{ key: 'entries/1', value: 'once' }], reads: [] })
    const first = store.commit(run)
    const again = store.commit(run)
    assert.deepEqual(again, { ...first, duplicate: true })
    const set = await write(owner, [{ key: 'mode', value: 'open' }])
    store.commit(set)
    store.commit(await write(owner, [{ key: 'mode', value: 'closed' }]))
    // an attacker replays the captured "open" write: it does not land again
    const replay = store.commit(set)
    assert.equal(replay.duplicate, true)
    assert.equal(replay.seq, 2)
    assert.deepEqual(store.get(ns, 'mode'), { value: 'closed', version: 3 })
    assert.equal(store.head(ns).seq, 3)
  })

  it('refuses a second use of a nonce, a stale invocation, and writes other than the ones signed', async () => {
    store.commit(await write(owner, [{ key: 'a', value: 1 }], { nonce: 'nonce-0001' }))
    const reuse = await write(owner, [{ key: 'a', value: 2 }], { nonce: 'nonce-0001' })
    assert.equal(
      errorCode(() => store.commit(reuse)),
      'INVOCATION_REPLAYED',
    )
    const stale = await write(owner, [{ key: 'a', value: 3 }], { now: T0 - 10 * 60_000, windowMs: 60_000 })
    assert.equal(
      errorCode(() => store.commit(stale)),
      'INVOCATION_OUTSIDE_WINDOW',
    )
    const signed = await write(owner, [{ key: 'a', value: 4 }])
    assert.equal(
      errorCode(() => store.commit({ ...signed, writes: [{ key: 'a', value: 5 }] })),
      'GRANT_FORGED',
    )
    assert.equal(
      errorCode(() => store.commit({ ...signed, id: stale.id })),
      'ENTRY_INVALID',
    )
    assert.deepEqual(store.get(ns, 'a'), { value: 1, version: 1 })
  })

  it('bounds keys, values and commits (STORE_LIMIT), and refuses bad values and shapes', async () => {
    const cases: Array<[string, StoreEffects['writes'], StoreEffects['reads']?]> = [
      ['key too long', [{ key: 'k'.repeat(513), value: 1 }]],
      ['key too long in UTF-8', [{ key: 'é'.repeat(300), value: 1 }]],
      ['value too large', [{ key: 'big', value: 'x'.repeat(MAX_VALUE_BYTES) }]],
      ['too many writes', Array.from({ length: MAX_WRITES + 1 }, (_, i) => ({ key: `k${i}`, value: i }))],
      ['too many reads', [], Array.from({ length: MAX_READS + 1 }, (_, i) => ({ key: `k${i}`, version: 0 }))],
    ]
    for (const [what, writes, reads = []] of cases) {
      const good = await write(owner, [{ key: 'k', value: 1 }])
      assert.equal(
        errorCode(() => store.commit({ ...good, writes, reads })),
        'STORE_LIMIT',
        what,
      )
      await assert.rejects(write(owner, writes, { reads }), { code: 'STORE_LIMIT' }, what)
    }
    const good = await write(owner, [{ key: 'k', value: 1 }])
    const bad: Array<[string, unknown]> = [
      ['NaN', [{ key: 'k', value: Number.NaN }]],
      ['a function', [{ key: 'k', value: () => 1 }]],
      ['bytes', [{ key: 'k', value: new Uint8Array(1) }]],
      ['a date', [{ key: 'k', value: new Date() }]],
      ['an empty key', [{ key: '', value: 1 }]],
      ['a control character', [{ key: 'a\nb', value: 1 }]],
      [
        'a key twice',
        [
          { key: 'k', value: 1 },
          { key: 'k', value: 2 },
        ],
      ],
    ]
    for (const [what, writes] of bad)
      assert.equal(
        errorCode(() => store.commit({ ...good, writes })),
        'ENTRY_INVALID',
        what,
      )
    const almost = 'x'.repeat(MAX_VALUE_BYTES - 10)
    assert.equal(store.commit(await write(owner, [{ key: 'big', value: almost }])).seq, 1)
    assert.equal((store.get(ns, 'big').value as string).length, almost.length)
  })

  it('refuses garbage of every shape with a typed code, and keeps running', () => {
    const garbage: unknown[] = [
      undefined,
      null,
      42,
      'commit',
      [],
      {},
      { v: 1 },
      { v: 1, ns, kind: 'key' },
      { v: 2, ns, kind: 'key', id: ns, writes: [], reads: [], proof: {} },
      { v: 1, ns, kind: 'admin', id: ns, writes: [], reads: [], proof: {} },
    ]
    for (const g of garbage)
      assert.equal(
        errorCode(() => store.commit(g)),
        'ENTRY_INVALID',
        JSON.stringify(g),
      )
    assert.equal(store.head(ns).seq, 0)
  })

  it('leaves nothing half-applied when the store fails in the middle of a commit', async () => {
    const path = join(dir, 'atomic.db')
    const atomic = openDatastore({ path, verifyRun: fullView(cluster, guestbook), now: () => clock.t })
    atomic.create(genesis)
    atomic.commit(await write(owner, [{ key: 'a', value: 0 }], { nonce: 'first-write' }))
    // the disk refuses the second row of the next commit, after its entry and first row were written
    const sabotage = new DatabaseSync(path)
    sabotage.exec(
      `CREATE TRIGGER fail BEFORE INSERT ON kv WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'disk says no'); END`,
    )
    const commit = await write(
      owner,
      [
        { key: 'a', value: 1 },
        { key: 'boom', value: 1 },
      ],
      { nonce: 'second-write' },
    )
    assert.equal(
      errorCode(() => atomic.commit(commit)),
      'INTERNAL',
    )
    assert.equal(atomic.head(ns).seq, 1)
    assert.deepEqual(atomic.get(ns, 'a'), { value: 0, version: 1 })
    assert.equal(atomic.history(ns).length, 1)
    sabotage.exec('DROP TRIGGER fail')
    sabotage.close()
    // its nonce was not recorded either: the very same commit now lands
    assert.equal(atomic.commit(commit).seq, 2)
    assert.deepEqual(atomic.get(ns, 'boom'), { value: 1, version: 2 })
    atomic.close()
    assert.equal(
      errorCode(() => atomic.head(ns)),
      'NOT_STARTED',
    )
  })
})
