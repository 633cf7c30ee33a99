import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import {
  attemptFailed,
  createJob,
  encodeState,
  failJob,
  initialState,
  isEncodingOf,
  JOB_STORE_SCHEMA_VERSION,
  type JobState,
  openJobStore,
  startAttempt,
} from '../../src/jobs/index.ts'
import { canonicalBytes, generateKey, keyId } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'

const FN = 'bafyreibtmy5nghh46uv4kumxy5izkgriwbejlazudn4egt7beazkz4ojpm'
const T = 1_800_000_000_000

describe('a keeper’s job store', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'covenant-jobs-'))
  after(() => rm(dir, { recursive: true, force: true }))
  const key = await generateKey()
  const keeper = keyId(await generateKey())
  const job = (i: number, runAfter = T) => createJob(key, { fn: FN, export: 'f', args: [i], runAfter }, T)
  const running = (s: JobState, now = T) =>
    startAttempt(s, { dispatcher: keeper, request: 'r', now, leaseUntil: now + 60_000 })

  it('holds a job once, and keeps only a state that wins over the one it holds', () => {
    const store = openJobStore({ path: ':memory:' })
    const { record, id } = job(1)
    const s0 = initialState(record)
    assert.deepEqual(store.put(id, { record }, s0), { state: s0, added: true, changed: true })
    assert.deepEqual(store.put(id, { record }, s0), { state: s0, added: false, changed: false })
    const s1 = running(s0)
    assert.deepEqual(store.merge(id, s1), { state: s1, changed: true })
    // an older state, heard late, changes nothing
    assert.deepEqual(store.merge(id, s0), { state: s1, changed: false })
    assert.deepEqual(store.put(id, { record }, s0), { state: s1, added: false, changed: false })
    assert.deepEqual(store.get(id)?.state, s1)
    assert.deepEqual(canonicalBytes(store.get(id)?.record), canonicalBytes(record))
    assert.equal(store.merge(job(2).id, s1), undefined)
    assert.equal(store.has(id), true)
    store.close()
  })

  it('keeps what it holds across a restart', () => {
    const path = join(dir, 'jobs.db')
    const store = openJobStore({ path })
    const { record, id } = job(3)
    store.put(id, { record }, running(initialState(record)))
    store.close()
    const again = openJobStore({ path })
    assert.equal(again.get(id)?.state.status, 'running')
    assert.deepEqual(encodeState(again.get(id)!.state), encodeState(running(initialState(record))))
    again.close()
  })

  it('finds the jobs due, and the ones a peer was running; a look put off waits for its time', () => {
    const store = openJobStore({ path: ':memory:' })
    const early = job(4, T)
    const late = job(5, T + 10_000)
    store.put(early.id, { record: early.record }, initialState(early.record))
    store.put(late.id, { record: late.record }, initialState(late.record))
    assert.deepEqual(store.due(T, 10), [early.id])
    assert.deepEqual(store.due(T + 10_000, 10), [early.id, late.id])
    assert.equal(store.nextLook(), T)
    store.lookAt(early.id, T + 20_000)
    assert.deepEqual(store.due(T + 10_000, 10), [late.id])
    // the view changed: every job is looked at when its state says
    store.lookAgain()
    assert.deepEqual(store.due(T, 10), [early.id])
    store.merge(early.id, running(initialState(early.record)))
    assert.deepEqual(store.dispatchedBy(keeper, 10), [early.id])
    assert.deepEqual(store.dispatchedBy(keyId(key), 10), [])
    // a running attempt is looked at again when its lease ends
    assert.deepEqual(store.due(T + 59_999, 10), [late.id])
    store.close()
  })

  it('lists by status and enqueuer, a page at a time, and counts', async () => {
    const store = openJobStore({ path: ':memory:' })
    const other = await generateKey()
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const { record, id } = job(10 + i)
      store.put(id, { record }, i < 2 ? running(initialState(record)) : initialState(record))
      ids.push(id)
    }
    const theirs = createJob(other, { fn: FN, export: 'f' }, T)
    store.put(theirs.id, { record: theirs.record }, initialState(theirs.record))
    assert.deepEqual(store.counts(), { queued: 4, running: 2, succeeded: 0, failed: 0, cancelled: 0 })
    const mine = store.list({ enqueuer: keyId(key), limit: 3 })
    assert.equal(mine.length, 3)
    const rest = store.list({ enqueuer: keyId(key), after: mine[2].id, limit: 3 })
    assert.deepEqual(
      [...mine, ...rest].map((j) => j.id),
      [...ids].sort(),
    )
    assert.deepEqual(
      store
        .list({ status: 'running', limit: 10 })
        .map((j) => j.id)
        .sort(),
      ids.slice(0, 2).sort(),
    )
    assert.deepEqual(
      store.list({ enqueuer: keyId(other), limit: 10 }).map((j) => j.id),
      [theirs.id],
    )
    const versions = store.versions({ limit: 100 })
    assert.equal(versions.length, 6)
    assert.ok(versions.every((v) => !v.settled && v.version >= 1))
    store.close()
  })

  it('forgets settled jobs once they are old, and only those', () => {
    const store = openJobStore({ path: ':memory:' })
    const a = job(20)
    const b = job(21)
    const failed = failJob(initialState(a.record), { code: 'DEADLINE_EXCEEDED', message: '' }, T + 5)
    store.put(a.id, { record: a.record }, failed)
    store.put(b.id, { record: b.record }, initialState(b.record))
    assert.equal(store.due(T + 10, 10).includes(a.id), false)
    assert.equal(store.prune(T + 5, 100), 0)
    assert.equal(store.prune(T + 6, 100), 1)
    assert.equal(store.has(a.id), false)
    assert.equal(store.has(b.id), true)
    store.drop(b.id)
    assert.equal(store.has(b.id), false)
    store.close()
  })

  it('reads back what it last wrote, and nothing it dropped or pruned, though it keeps the jobs it read decoded', () => {
    const store = openJobStore({ path: ':memory:' })
    const a = job(30)
    const b = job(31)
    const s0 = initialState(a.record)
    store.put(a.id, { record: a.record }, s0)
    store.put(b.id, { record: b.record }, initialState(b.record))
    assert.equal(store.get(a.id)?.state.status, 'queued')
    const s1 = running(s0)
    store.merge(a.id, s1)
    assert.deepEqual(store.get(a.id)?.state, s1)
    const s2 = failJob(s1, { code: 'DEADLINE_EXCEEDED', message: '' }, T + 5)
    store.put(a.id, { record: a.record }, s2)
    assert.equal(store.get(a.id)?.state.status, 'failed')
    assert.deepEqual(
      store.list({ status: 'failed', limit: 10 }).map((j) => j.id),
      [a.id],
    )
    assert.equal(store.get(b.id)?.state.status, 'queued')
    store.drop(b.id)
    assert.equal(store.get(b.id), undefined)
    assert.equal(store.prune(T + 6, 100), 1)
    assert.equal(store.get(a.id), undefined)
    store.close()
  })

  it('commits the states a batch keeps together, and keeps none of them if the batch throws', () => {
    const path = join(dir, 'batch.db')
    const store = openJobStore({ path })
    const a = job(40)
    const b = job(41)
    const c = job(42)
    store.put(a.id, { record: a.record }, initialState(a.record))
    store.put(b.id, { record: b.record }, initialState(b.record))
    // another connection to the file sees only what is committed
    const reader = new DatabaseSync(path, { readOnly: true })
    const statusOn = (id: string) =>
      (reader.prepare('SELECT status FROM jobs WHERE id = ?').get(id) as { status: string }).status
    const kept = store.batch(() => {
      const r = [
        store.merge(a.id, running(initialState(a.record))),
        store.merge(b.id, running(initialState(b.record))),
      ]
      // a put inside a batch is a part of it, not a transaction of its own
      store.put(c.id, { record: c.record }, initialState(c.record))
      assert.deepEqual([statusOn(a.id), statusOn(b.id)], ['queued', 'queued'])
      return r.map((m) => m?.changed)
    })
    assert.deepEqual(kept, [true, true])
    assert.deepEqual([statusOn(a.id), statusOn(b.id)], ['running', 'running'])
    assert.equal(store.has(c.id), true)

    const failed = (s: JobState) => failJob(s, { code: 'DEADLINE_EXCEEDED', message: '' }, T + 5)
    assert.throws(
      () =>
        store.batch(() => {
          store.merge(a.id, failed(store.get(a.id)!.state))
          assert.equal(store.get(a.id)?.state.status, 'failed')
          throw new Error('a bug mid-batch')
        }),
      /a bug mid-batch/,
    )
    // nothing of it stays, on the file or in what the store keeps decoded
    assert.equal(statusOn(a.id), 'running')
    assert.equal(store.get(a.id)?.state.status, 'running')
    // and the store goes on
    assert.equal(store.merge(a.id, failed(store.get(a.id)!.state))?.changed, true)
    assert.equal(statusOn(a.id), 'failed')
    reader.close()
    store.close()
  })

  it('tells the bytes of the state it holds from those of any other', () => {
    const { record } = job(32)
    const s0 = initialState(record)
    const s1 = running(s0)
    assert.equal(isEncodingOf(s1, encodeState(s1)), true)
    assert.equal(isEncodingOf(s1, canonicalBytes({ ...s1 })), true, 'the same state, another object')
    assert.equal(isEncodingOf(s1, encodeState(s0)), false)
    assert.equal(isEncodingOf(s1, canonicalBytes({ ...s1, updatedAt: s1.updatedAt + 1 })), false)
  })

  it('refuses a file written by newer code', () => {
    const path = join(dir, 'newer.db')
    const db = new DatabaseSync(path)
    db.exec(`PRAGMA user_version = ${JOB_STORE_SCHEMA_VERSION + 1}`)
    db.close()
    assert.equal(
      errorCode(() => openJobStore({ path })),
      'INTERNAL',
    )
  })

  it('counts a change to paid alone, which keeps the version, in what sync compares; keeps its own charge note, which only grows', () => {
    const store = openJobStore({ path: ':memory:' })
    const { record, id } = job(40)
    const failed = attemptFailed(running(initialState(record)), record, {
      n: 1,
      now: T,
      error: { code: 'NO_QUORUM', message: 'split' },
      cost: 30,
      random: () => 0,
    })
    store.put(id, { record }, failed)
    const [before] = store.versions({ limit: 10 })
    assert.deepEqual([before.version, before.paid], [failed.version, 30])
    // another keeper's charge, from a branch that lost: same version, more paid
    const other = { keeper: keyId(key), amount: 20 }
    assert.equal(store.merge(id, { ...failed, paid: [...failed.paid, other] })?.changed, true)
    const [after] = store.versions({ limit: 10 })
    assert.deepEqual([after.version, after.paid], [failed.version, 50])
    assert.equal(store.chargedHere(id), 0)
    store.noteCharged(id, 30)
    store.noteCharged(id, 10)
    assert.equal(store.chargedHere(id), 30)
    // a state heard later does not touch the note
    store.merge(id, { ...failed, paid: [{ keeper: other.keeper, amount: 70 }] })
    assert.equal(store.chargedHere(id), 30)
    assert.equal(store.chargedHere('nope'), 0)
    store.close()
  })

  it('keeps a failed attempt’s receipts with its state', () => {
    const store = openJobStore({ path: ':memory:' })
    const { record, id } = job(30)
    store.put(id, { record }, initialState(record))
    const failed = attemptFailed(running(store.get(id)!.state), record, {
      n: 1,
      now: T,
      error: { code: 'NO_QUORUM', message: 'split' },
      random: () => 0,
    })
    store.merge(id, failed)
    assert.deepEqual(store.get(id)?.state.attempts[0].error, { code: 'NO_QUORUM', message: 'split' })
    store.close()
  })
})
