/**
 * Holders of one namespace comparing heads and catching up: entries built by another holder are
 * checked again from scratch, must extend the local head, and nothing a sender does (garbage,
 * truncation, reordering, forks, replays, tampering) corrupts the receiver.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { delegateWrite, revoke, type WriteGrant } from '../../src/caps/index.ts'
import type { Manifest } from '../../src/content/index.ts'
import {
  createFunctionCommit,
  createKeyCommit,
  createNamespace,
  createPolicyCommit,
  type Datastore,
  type DatastoreInit,
  decodeEntry,
  descriptorCid,
  type Entry,
  encodeEntry,
  MAX_ENTRY_SKEW_MS,
  openDatastore,
  type SignedDescriptor,
  type StoredEntry,
  updateNamespace,
} from '../../src/datastore/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { type Cluster, certifiedRun, fullView, makeCluster, publish } from './certified-run.ts'

const T0 = 1_800_000_000_000

describe('replicated histories', () => {
  let dir: string
  let cluster: Cluster
  let owner: PrivateKey
  let editor: PrivateKey
  let guestbook: { fn: string; manifest: Manifest }
  let ns: string
  let genesis: SignedDescriptor
  let editorGrant: WriteGrant
  let fnGrant: WriteGrant
  const clock = { t: T0 }
  const open: Datastore[] = []
  let source: Datastore
  let entries: StoredEntry[]

  const holder = (path = ':memory:', init: Partial<DatastoreInit> = {}): Datastore => {
    const store = openDatastore({
      path,
      verifyRun: fullView(cluster, guestbook),
      now: () => clock.t,
      ...init,
    })
    open.push(store)
    store.create(genesis)
    return store
  }
  /** An entry changed by `edit` and encoded again: well-formed, but not what was applied. */
  const edited = (bytes: Uint8Array, edit: (e: Entry) => Entry) => encodeEntry(edit(decodeEntry(bytes)))
  const catchUp = (from: Datastore, to: Datastore) => {
    for (const e of from.entriesSince(ns, to.head(ns).seq, 1000)) to.appendReplicated(e.bytes)
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-replication-'))
    cluster = await makeCluster(5)
    ;[owner, editor] = await Promise.all([generateKey(), generateKey()])
    guestbook = publish(cluster, 'export function main() {}')
    ;({ id: ns, descriptor: genesis } = createNamespace(owner, { name: 'site', public: true, issuedAt: T0 }))
    editorGrant = await delegateWrite({
      issuer: owner,
      audience: keyId(editor),
      namespace: ns,
      prefix: 'pages/',
      expiresAt: T0 + 86_400_000,
    })
    fnGrant = await delegateWrite({
      issuer: owner,
      audience: { fn: guestbook.fn },
      namespace: ns,
      prefix: 'entries/',
      expiresAt: T0 + 86_400_000,
    })
    // one holder applies a history of every kind of entry
    source = holder(join(dir, 'source.db'))
    const write = (
      issuer: PrivateKey,
      writes: Array<{ key: string; value: unknown }>,
      grants: WriteGrant[] = [],
    ) => createKeyCommit({ issuer, ns, writes: writes as never, grants, now: clock.t })
    source.commit(await write(owner, [{ key: 'title', value: 'Site' }]))
    clock.t += 1000
    source.commit(await write(editor, [{ key: 'pages/home', value: '<h1>' }], [editorGrant]))
    clock.t += 1000
    const run = certifiedRun(cluster, {
      ...guestbook,
      effects: [{ ns, writes: [{ key: 'entries/1', value: 'hi' }], reads: [] }],
    })
    source.commit(createFunctionCommit({ ...run, effects: run.output.store[0], grants: [fnGrant] }))
    clock.t += 1000
    source.commit(
      createPolicyCommit(
        updateNamespace(owner, genesis, { policy: { minReplicas: 3, minQuorum: 3 }, issuedAt: clock.t }),
      ),
    )
    clock.t += 1000
    source.commit(await write(owner, [{ key: 'title', value: null }]))
    entries = source.entriesSince(ns, 0)
    assert.equal(entries.length, 5)
  })
  after(async () => {
    for (const store of open) store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('catches up by seq and ends with the same head and the same state', () => {
    const replica = holder()
    assert.deepEqual(
      replica.head(ns),
      { seq: 0, cid: descriptorCid(genesis), at: 0 },
      'the history starts at the genesis',
    )
    catchUp(source, replica)
    assert.deepEqual(replica.head(ns), source.head(ns))
    for (const key of ['title', 'pages/home', 'entries/1'])
      for (const at of [0, 1, 2, 3, 4, 5])
        assert.deepEqual(replica.get(ns, key, { at }), source.get(ns, key, { at }), `${key}@${at}`)
    assert.equal(replica.namespace(ns)?.policy.minQuorum, 3)
    assert.deepEqual(replica.history(ns), source.history(ns))
    // the same entry again is a no-op
    assert.equal(replica.appendReplicated(entries[2].bytes).duplicate, true)
    assert.deepEqual(
      replica.entriesSince(ns, 0).map((e) => e.cid),
      entries.map((e) => e.cid),
    )
  })

  it('refuses entries out of order, and picks up once the gap is filled', () => {
    const replica = holder()
    assert.equal(
      errorCode(() => replica.appendReplicated(entries[2].bytes)),
      'ENTRY_GAP',
    )
    replica.appendReplicated(entries[0].bytes)
    replica.appendReplicated(entries[1].bytes)
    assert.equal(replica.appendReplicated(entries[2].bytes).seq, 3)
  })

  it('refuses a forked or mis-chained entry, and keeps its own history', async () => {
    const replica = holder()
    replica.appendReplicated(entries[0].bytes)
    // another holder applied a different first write: its history forks from this one
    const other = holder()
    other.commit(
      await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'title', value: 'Other' }], now: clock.t }),
    )
    other.commit(await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'x', value: 1 }], now: clock.t }))
    const [fork1, fork2] = other.entriesSince(ns, 0)
    assert.equal(
      errorCode(() => replica.appendReplicated(fork1.bytes)),
      'ENTRY_FORK',
    )
    assert.equal(
      errorCode(() => replica.appendReplicated(fork2.bytes)),
      'ENTRY_FORK',
    )
    const misChained = edited(entries[1].bytes, (e) => ({ ...e, prev: fork1.cid }))
    assert.equal(
      errorCode(() => replica.appendReplicated(misChained)),
      'ENTRY_FORK',
    )
    assert.deepEqual(replica.head(ns).cid, entries[0].cid)
    assert.deepEqual(replica.get(ns, 'title'), { value: 'Site', version: 1 })
  })

  it('refuses garbage, truncated and non-canonical bytes with ENTRY_INVALID', () => {
    const replica = holder()
    const first = entries[0].bytes
    const bad: Array<[string, unknown]> = [
      ['not bytes', 'entry'],
      ['empty', new Uint8Array(0)],
      ['noise', new Uint8Array([0xa1, 0x61, 0x76, 0x02])],
      ['truncated', first.subarray(0, first.length - 1)],
      ['cut in half', first.subarray(0, first.length >> 1)],
      ['trailing byte', new Uint8Array([...first, 0])],
      ['another shape', dagCbor.encode({ ...decodeEntry(first), extra: true })],
      [
        'no proof',
        dagCbor.encode(Object.fromEntries(Object.entries(decodeEntry(first)).filter(([k]) => k !== 'proof'))),
      ],
      ['another kind', dagCbor.encode({ ...decodeEntry(first), kind: 'admin' })],
    ]
    for (const [what, bytes] of bad)
      assert.equal(
        errorCode(() => replica.appendReplicated(bytes as Uint8Array)),
        'ENTRY_INVALID',
        what,
      )
    assert.equal(replica.head(ns).seq, 0)
    // every single-byte change of a real entry is refused with a typed code, except in `at`: the
    // time the first holder claims is checked only for order and against the grants' validity
    const original = decodeEntry(first)
    const codes = new Set<string | undefined>()
    let target = holder()
    for (let i = 0; i < first.length; i += 3) {
      const changed = new Uint8Array(first)
      changed[i] ^= 0x04
      const code = errorCode(() => target.appendReplicated(changed))
      codes.add(code)
      if (code !== undefined) continue
      assert.deepEqual(
        { ...decodeEntry(changed), at: original.at },
        original,
        `byte ${i} changed more than the time`,
      )
      target = holder()
    }
    assert.ok(codes.has('ENTRY_INVALID'), [...codes].join())
  })

  it('checks every entry again: tampered writes, another time, a replayed id or a future time are refused', () => {
    const replica = holder()
    replica.appendReplicated(entries[0].bytes)
    const otherWrites = edited(entries[1].bytes, (e) => ({
      ...e,
      writes: [{ key: 'pages/home', value: 'defaced' }],
    }))
    assert.equal(
      errorCode(() => replica.appendReplicated(otherWrites)),
      'GRANT_FORGED',
    )
    const before = edited(entries[1].bytes, (e) => ({ ...e, at: T0 - 1 }))
    assert.equal(
      errorCode(() => replica.appendReplicated(before)),
      'ENTRY_INVALID',
    )
    replica.appendReplicated(entries[1].bytes)
    const forgedRun = edited(entries[2].bytes, (e) => ({
      ...e,
      writes: [{ key: 'entries/1', value: 'spam' }],
    }))
    assert.equal(
      errorCode(() => replica.appendReplicated(forgedRun)),
      'INVALID_CERTIFICATE',
    )
    // the first entry's write again, as the next entry
    const replayed = edited(entries[0].bytes, (e) => ({ ...e, seq: 3, prev: entries[1].cid }))
    assert.equal(
      errorCode(() => replica.appendReplicated(replayed)),
      'ENTRY_INVALID',
    )
    const future = edited(entries[2].bytes, (e) => ({ ...e, at: clock.t + MAX_ENTRY_SKEW_MS + 1 }))
    assert.equal(
      errorCode(() => replica.appendReplicated(future)),
      'ENTRY_INVALID',
    )
    assert.equal(replica.head(ns).seq, 2)
    catchUp(source, replica)
    assert.deepEqual(replica.head(ns), source.head(ns))
  })

  it('judges grants against the revocations before an entry in the history, the same on every holder', async () => {
    const primary = holder()
    catchUp(source, primary)
    // the editor's write at T0 + 1000 comes before the revocation in the history: it stands,
    // though the revocation states an earlier time
    const revocation = await revoke({
      issuer: owner,
      namespace: ns,
      grant: editorGrant,
      effectiveAt: T0 + 500,
    })
    assert.equal(primary.addRevocation(ns, revocation).seq, entries.length + 1)
    assert.deepEqual(primary.get(ns, 'pages/home'), { value: '<h1>', version: 2 })
    const after = await createKeyCommit({
      issuer: editor,
      ns,
      writes: [{ key: 'pages/new', value: 1 }],
      grants: [editorGrant],
      now: clock.t,
    })
    assert.equal(
      errorCode(() => primary.commit(after)),
      'GRANT_REVOKED',
    )
    // a replica replays the revocation where it stands
    const replica = holder()
    catchUp(primary, replica)
    assert.deepEqual(replica.head(ns), primary.head(ns))
    assert.deepEqual(
      replica.revocations(ns).map((r) => r.seq),
      [entries.length + 1],
    )
    // a holder that never got the revocation applied the editor's write; chained after the
    // revocation, that entry is refused by every holder that has it
    const unaware = holder()
    catchUp(source, unaware)
    unaware.commit(after)
    const [late] = unaware.entriesSince(ns, entries.length)
    assert.equal(
      errorCode(() => replica.appendReplicated(late.bytes)),
      'ENTRY_FORK',
    )
    const head = replica.head(ns)
    const chained = edited(late.bytes, (e) => ({ ...e, seq: head.seq + 1, prev: head.cid, at: head.at }))
    assert.equal(
      errorCode(() => replica.appendReplicated(chained)),
      'GRANT_REVOKED',
    )
    // a revocation that states a later time holds from then on only
    const later = await revoke({
      issuer: owner,
      namespace: ns,
      grant: fnGrant,
      effectiveAt: clock.t + 60_000,
    })
    replica.addRevocation(ns, later)
    const run = certifiedRun(cluster, {
      ...guestbook,
      q: 3,
      effects: [{ ns, writes: [{ key: 'entries/2', value: 'still' }], reads: [] }],
    })
    replica.commit(createFunctionCommit({ ...run, effects: run.output.store[0], grants: [fnGrant] }))
    assert.equal(replica.get(ns, 'entries/2').value, 'still')
    // truncating below a revocation forgets it
    replica.truncate(ns, entries.length)
    assert.equal(replica.revocations(ns).length, 0)
    assert.equal(replica.commit(after).seq, entries.length + 1)
  })

  it('survives a restart: the reopened file holds the same history and checks what it is sent', () => {
    const path = join(dir, 'restart.db')
    const first = holder(path)
    first.appendReplicated(entries[0].bytes)
    first.appendReplicated(entries[1].bytes)
    first.close()
    const again = holder(path)
    assert.equal(again.head(ns).seq, 2)
    assert.equal(
      errorCode(() => again.appendReplicated(entries[3].bytes)),
      'ENTRY_GAP',
    )
    catchUp(source, again)
    assert.deepEqual(again.head(ns), source.head(ns))
    assert.deepEqual(again.get(ns, 'pages/home'), { value: '<h1>', version: 2 })
  })

  it('keeps the other holders its node counted across a restart, for held namespaces only, and forgets them with the namespace', () => {
    const path = join(dir, 'holders.db')
    const first = holder(path)
    assert.deepEqual(first.holders(ns), [], 'none kept yet')
    first.keepHolders(ns, ['peer-a', 'peer-b'])
    first.keepHolders('not-held', ['peer-c'])
    first.close()
    const again = holder(path)
    assert.deepEqual(again.holders(ns), ['peer-a', 'peer-b'])
    assert.deepEqual(again.holders('not-held'), [], 'nothing is kept for a namespace not held')
    assert.equal(
      errorCode(() => again.keepHolders(ns, [''])),
      'INVALID_INPUT',
    )
    assert.deepEqual(again.holders(ns), ['peer-a', 'peer-b'], 'a refused list changes nothing')
    assert.equal(again.drop(ns), true)
    again.create(genesis)
    assert.deepEqual(again.holders(ns), [], 'dropped, the namespace forgot them')
  })

  it('starts a namespace only from its owner’s genesis, once', () => {
    const store = openDatastore({
      path: ':memory:',
      verifyRun: fullView(cluster, guestbook),
      now: () => clock.t,
    })
    open.push(store)
    assert.equal(
      errorCode(() => store.appendReplicated(entries[0].bytes)),
      'NAMESPACE_NOT_FOUND',
    )
    assert.equal(
      errorCode(() => store.create({ ...genesis, public: false })),
      'NAMESPACE_INVALID',
    )
    const v2 = updateNamespace(owner, genesis, { issuedAt: T0 })
    assert.equal(
      errorCode(() => store.create(v2)),
      'NAMESPACE_INVALID',
    )
    assert.equal(store.create(genesis).head.seq, 0)
    assert.equal(store.create(genesis).id, ns, 'idempotent')
    const other = createNamespace(owner, { name: 'site', public: false, issuedAt: T0 + 1 })
    assert.equal(other.id, ns, 'the id is the owner and the name')
    assert.equal(
      errorCode(() => store.create(other.descriptor)),
      'NAMESPACE_INVALID',
    )
  })

  /** Two holders up to date with `source`, a commit of `n` and one that read `n` at version 0. */
  const primaryAndFollower = async () => {
    const primary = holder()
    const follower = holder()
    catchUp(source, primary)
    catchUp(source, follower)
    const write = (value: number, reads?: Array<{ key: string; version: number }>) =>
      createKeyCommit({ issuer: owner, ns, writes: [{ key: 'n', value }], reads, now: clock.t })
    return {
      primary,
      follower,
      before: primary.head(ns),
      commit: await write(1),
      stale: await write(2, [{ key: 'n', version: 0 }]),
    }
  }

  it('prepares the next entry without applying it; the entry applies on every holder, the primary last', async () => {
    const { primary, follower, before, commit, stale } = await primaryAndFollower()
    const prepared = primary.prepare(commit)
    assert.equal(prepared.duplicate, false)
    assert.ok(!prepared.duplicate)
    assert.equal(prepared.seq, before.seq + 1)
    assert.deepEqual(primary.head(ns), before, 'preparing applies nothing')
    assert.deepEqual(primary.get(ns, 'n'), { value: null, version: 0 })
    assert.equal(primary.prepare(commit).cid, prepared.cid, 'the same state prepares the same entry')
    assert.equal(follower.appendReplicated(prepared.bytes).cid, prepared.cid)
    assert.equal(primary.appendReplicated(prepared.bytes).cid, prepared.cid)
    assert.deepEqual(primary.head(ns), follower.head(ns))
    // once applied, the same commit prepares to the earlier result
    const again = primary.prepare(commit)
    assert.deepEqual(again, { ns, seq: prepared.seq, cid: prepared.cid, id: commit.id, duplicate: true })
    // every check runs: a stale read, a forged invocation
    assert.equal(
      errorCode(() => primary.prepare(stale)),
      'WRITE_CONFLICT',
    )
    assert.equal(
      errorCode(() => primary.prepare({ ...stale, writes: [{ key: 'n', value: 3 }] })),
      'GRANT_FORGED',
    )
    assert.deepEqual(primary.head(ns), follower.head(ns))
  })

  it('drafts the entry a prepare would make without checking its proof; checked as a holder checks it, it is refused or applied alike', async () => {
    const { primary, follower, before, commit, stale } = await primaryAndFollower()
    const drafted = primary.draft(commit)
    assert.ok(!drafted.duplicate)
    assert.equal(drafted.stale, false)
    const prepared = primary.prepare(commit)
    assert.ok(!prepared.duplicate)
    assert.equal(drafted.cid, prepared.cid, 'the same entry a prepare makes')
    assert.deepEqual(primary.head(ns), before, 'drafting applies nothing')
    // a forged commit drafts (nothing of its proof is checked), and its own holder's check refuses it
    const forged = primary.draft({ ...commit, writes: [{ key: 'n', value: 666 }] })
    assert.ok(!forged.duplicate)
    assert.equal(
      errorCode(() => primary.checkReplicated(forged.bytes)),
      'GRANT_FORGED',
    )
    assert.equal(
      errorCode(() => primary.appendReplicated(forged.bytes)),
      'GRANT_FORGED',
    )
    // the genuine draft: checked, applied on the follower, then on the primary
    assert.equal(primary.checkReplicated(drafted.bytes).duplicate, false)
    assert.equal(follower.appendReplicated(drafted.bytes).cid, drafted.cid)
    assert.equal(primary.appendReplicated(drafted.bytes).cid, drafted.cid)
    assert.deepEqual(primary.head(ns), follower.head(ns))
    // the same commit again drafts to the earlier result; a read no longer current is flagged
    assert.deepEqual(primary.draft(commit), {
      ns,
      seq: drafted.seq,
      cid: drafted.cid,
      id: commit.id,
      duplicate: true,
    })
    const staleDraft = primary.draft(stale)
    assert.ok(!staleDraft.duplicate)
    assert.equal(staleDraft.stale, true)
    assert.equal(
      errorCode(() => primary.checkReplicated(staleDraft.bytes)),
      'WRITE_CONFLICT',
    )
    assert.deepEqual(primary.head(ns), follower.head(ns))
  })

  it('checks an entry without applying it, and refuses there what it would refuse to apply', () => {
    const replica = holder()
    replica.appendReplicated(entries[0].bytes)
    const head = replica.head(ns)
    assert.equal(replica.checkReplicated(entries[1].bytes).duplicate, false)
    assert.deepEqual(replica.head(ns), head, 'nothing applied')
    assert.equal(replica.checkReplicated(entries[0].bytes).duplicate, true)
    const defaced = edited(entries[1].bytes, (e) => ({
      ...e,
      writes: [{ key: 'pages/home', value: 'defaced' }],
    }))
    assert.equal(
      errorCode(() => replica.checkReplicated(defaced)),
      'GRANT_FORGED',
    )
    assert.equal(
      errorCode(() => replica.checkReplicated(entries[2].bytes)),
      'ENTRY_GAP',
    )
    // checked, then applied: the same entry, the same result
    assert.equal(replica.appendReplicated(entries[1].bytes).seq, 2)
    // a forged entry is refused on apply even right after a genuine one passed its check
    replica.checkReplicated(entries[2].bytes)
    const forged = edited(entries[2].bytes, (e) => ({ ...e, writes: [{ key: 'entries/1', value: 'spam' }] }))
    assert.equal(
      errorCode(() => replica.appendReplicated(forged)),
      'INVALID_CERTIFICATE',
    )
  })

  it('reads an entry ahead once; what it kept never lets other bytes pass, even the same buffer changed', () => {
    const replica = holder()
    replica.appendReplicated(entries[0].bytes)
    replica.appendReplicated(entries[1].bytes)
    // read ahead as a holder does to find the function, it is the entry decodeEntry reads
    const run = entries[2].bytes
    assert.deepEqual(replica.readEntry(run), decodeEntry(run))
    // a forged entry read ahead is still checked in full, and refused
    const forged = edited(run, (e) => ({ ...e, writes: [{ key: 'entries/1', value: 'spam' }] }))
    replica.readEntry(forged)
    assert.equal(
      errorCode(() => replica.checkReplicated(forged)),
      'INVALID_CERTIFICATE',
    )
    // the genuine bytes read ahead, then changed in place (the same buffer): the change is what is
    // judged, not the entry read before it
    const sameLength = edited(run, (e) => ({ ...e, writes: [{ key: 'entries/1', value: 'ho' }] }))
    assert.equal(sameLength.length, run.length)
    const buffer = run.slice()
    replica.readEntry(buffer)
    buffer.set(sameLength)
    assert.equal(
      errorCode(() => replica.appendReplicated(buffer)),
      'INVALID_CERTIFICATE',
    )
    assert.equal(replica.head(ns).seq, 2)
    // garbage is refused as decodeEntry refuses it, and keeps nothing
    assert.equal(
      errorCode(() => replica.readEntry(new Uint8Array([0xff, 0x00]))),
      'ENTRY_INVALID',
    )
    // the genuine entry read ahead applies, once
    replica.readEntry(run)
    assert.equal(replica.appendReplicated(run).seq, 3)
    assert.equal(replica.appendReplicated(run).duplicate, true)
  })

  it('leaves its history for another only if it takes the other’s entries: all in one transaction', async () => {
    const replica = holder()
    catchUp(source, replica)
    const before = replica.head(ns)
    const other = holder()
    catchUp(source, other)
    other.truncate(ns, 1)
    other.commit(await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'x', value: 1 }], now: clock.t }))
    const [theirs] = other.entriesSince(ns, 1)
    const broken = edited(theirs.bytes, (e) => ({ ...e, writes: [{ key: 'x', value: 2 }] }))
    assert.equal(
      errorCode(() => replica.truncate(ns, 1, [broken])),
      'GRANT_FORGED',
    )
    assert.deepEqual(replica.head(ns), before, 'nothing changed')
    assert.deepEqual(replica.get(ns, 'pages/home'), { value: '<h1>', version: 2 })
    assert.deepEqual(replica.truncate(ns, 1, [theirs.bytes]), other.head(ns))
    assert.deepEqual(replica.get(ns, 'x'), { value: 1, version: 2 })
  })

  it('truncates to a version: entries, key versions, nonces and a newer descriptor go, the rest stays', async () => {
    const replica = holder()
    catchUp(source, replica)
    assert.equal(replica.namespace(ns)?.descriptor.version, 2)
    // back to before the policy entry (seq 4): the genesis is in force again
    const head = replica.truncate(ns, 3)
    assert.deepEqual(head, { seq: 3, cid: entries[2].cid, at: decodeEntry(entries[2].bytes).at })
    assert.deepEqual(replica.head(ns), head)
    assert.equal(replica.namespace(ns)?.descriptor.version, 1)
    assert.deepEqual(replica.get(ns, 'title'), { value: 'Site', version: 1 })
    assert.deepEqual(
      replica.history(ns).map((h) => h.seq),
      [1, 2, 3],
    )
    assert.deepEqual(replica.truncate(ns, 7), head, 'beyond the head, nothing changes')
    // the same history applies again on top, nonces included
    catchUp(source, replica)
    assert.deepEqual(replica.head(ns), source.head(ns))
    assert.equal(replica.namespace(ns)?.descriptor.version, 2)
    // a forked history replaces the removed one
    replica.truncate(ns, 1)
    const fork = await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'f', value: 1 }], now: clock.t })
    replica.commit(fork)
    assert.deepEqual(replica.get(ns, 'pages/home'), { value: null, version: 0 })
    assert.deepEqual(replica.get(ns, 'f'), { value: 1, version: 2 })
    assert.equal(
      errorCode(() => replica.appendReplicated(entries[1].bytes)),
      'ENTRY_FORK',
    )
    assert.deepEqual(replica.cidsSince(ns, 0), [
      { seq: 1, cid: entries[0].cid },
      { seq: 2, cid: replica.head(ns).cid },
    ])
    // down to the genesis
    assert.deepEqual(replica.truncate(ns, 0), { seq: 0, cid: descriptorCid(genesis), at: 0 })
    assert.deepEqual(replica.list(ns), [])
    assert.equal(
      errorCode(() => replica.truncate(ns, -1)),
      'INVALID_INPUT',
    )
    assert.equal(
      errorCode(() => replica.truncate('not a namespace', 0)),
      'NAMESPACE_NOT_FOUND',
    )
  })

  it('drops a namespace, and pages through the namespaces held', async () => {
    const store = holder()
    catchUp(source, store)
    const others = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => {
        const made = createNamespace(owner, { name, issuedAt: T0 })
        store.create(made.descriptor)
        return made.id
      }),
    )
    const all = [ns, ...others].sort()
    assert.deepEqual(store.namespaces(), all)
    assert.deepEqual(store.namespaces({ limit: 2 }), all.slice(0, 2))
    assert.deepEqual(store.namespaces({ after: all[1], limit: 2 }), all.slice(2, 4))
    store.addRevocation(ns, await revoke({ issuer: owner, namespace: ns, grant: editorGrant }))
    assert.equal(store.drop(ns), true)
    assert.equal(store.drop(ns), false)
    assert.equal(store.namespace(ns), undefined)
    assert.deepEqual(store.namespaces(), others.sort())
    // held again from scratch: nothing of the old copy is left
    store.create(genesis)
    assert.equal(store.head(ns).seq, 0)
    assert.equal(store.revocations(ns).length, 0)
    catchUp(source, store)
    assert.deepEqual(store.head(ns), source.head(ns))
  })

  it('pages through the revocations of a history by CID', async () => {
    const a = holder()
    const revocations = await Promise.all(
      [1, 2, 3].map((i) => revoke({ issuer: owner, namespace: ns, grant: editorGrant, effectiveAt: T0 + i })),
    )
    for (const r of revocations) a.addRevocation(ns, r)
    const firstPage = a.revocations(ns, { limit: 2 })
    const rest = a.revocations(ns, { after: firstPage[1].cid })
    assert.equal(rest.length, 1)
    assert.deepEqual([...firstPage, ...rest].map((r) => r.seq).sort(), [1, 2, 3])
    // one that is not for this namespace's chain is refused, and changes nothing
    const other = createNamespace(editor, { name: 'other', issuedAt: T0 })
    const foreign = await revoke({
      issuer: editor,
      namespace: other.id,
      grant: await delegateWrite({
        issuer: editor,
        audience: keyId(owner),
        namespace: other.id,
        expiresAt: T0 + 1000,
      }),
    })
    assert.notEqual(
      errorCode(() => a.addRevocation(ns, foreign)),
      undefined,
    )
    assert.equal(a.head(ns).seq, 3)
  })
})
