import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, it, type TestContext } from 'node:test'
import {
  BLOCK_STORE_SCHEMA_VERSION,
  cidForBytes,
  MAX_BLOCK_BYTES,
  openBlockStore,
} from '../../src/content/index.ts'
import { errorCode as code } from '../fixtures/errors.ts'

const enc = new TextEncoder()

async function tempFile(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'covenant-blocks-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'nested', 'blocks.db')
}

describe('block store', () => {
  it('keeps blocks, tags and pins across a reopen of the same file', async (t) => {
    const path = await tempFile(t)
    const a = enc.encode('block a')
    const b = enc.encode('block b, a little longer')
    const ca = cidForBytes(a)
    const cb = cidForBytes(b, 'dag-cbor')
    let clock = 1000
    const store = openBlockStore({ path, now: () => clock })
    store.put(ca, a, { tags: ['math'] })
    store.put(cb, b, { tags: ['zeta', 'alpha'], pinned: true })
    clock = 2000
    // idempotent: merges tags, keeps the pin, keeps the first created_at
    store.put(ca, a, { tags: ['data', 'math'], pinned: true })
    store.put(cb, b)
    store.close()

    const again = openBlockStore({ path })
    t.after(() => again.close())
    assert.deepEqual(again.get(ca), a)
    assert.deepEqual(again.get(cb), b)
    assert.equal(again.has(ca), true)
    assert.deepEqual(again.info(ca), {
      cid: ca.toString(),
      size: a.length,
      tags: ['data', 'math'],
      pinned: true,
      createdAt: 1000,
    })
    assert.deepEqual(again.info(cb)?.tags, ['alpha', 'zeta'])
    assert.equal(again.info(cb)?.pinned, true)
    assert.deepEqual(again.stats(), { blocks: 2, bytes: a.length + b.length })
    const sorted = [ca.toString(), cb.toString()].sort()
    assert.deepEqual(
      again.list().map((i) => i.cid),
      sorted,
    )
    assert.deepEqual(
      again.list({ after: sorted[0] }).map((i) => i.cid),
      [sorted[1]],
    )
    assert.equal(again.list({ limit: 1 }).length, 1)

    const db = new DatabaseSync(path)
    t.after(() => db.close())
    const { user_version } = db.prepare('PRAGMA user_version').get() as { user_version: number }
    assert.equal(user_version, BLOCK_STORE_SCHEMA_VERSION)
    const { journal_mode } = db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }
    assert.equal(journal_mode, 'wal')

    assert.equal(again.delete(ca), true)
    assert.equal(again.delete(ca), false)
    assert.equal(again.get(ca), undefined)
    assert.equal(again.has(ca), false)
    assert.deepEqual(again.stats(), { blocks: 1, bytes: b.length })
  })

  it('rejects a block that does not hash to its CID, a too-large block and bad tags, storing nothing', () => {
    const store = openBlockStore({ path: ':memory:' })
    try {
      const good = enc.encode('good')
      const cid = cidForBytes(good)
      assert.equal(
        code(() => store.put(cid, enc.encode('evil'))),
        'HASH_MISMATCH',
      )
      const big = new Uint8Array(MAX_BLOCK_BYTES + 1)
      assert.equal(
        code(() => store.put(cidForBytes(big), big)),
        'BLOCK_TOO_LARGE',
      )
      assert.equal(
        code(() => store.put(cid, good, { tags: ['NSFW'] })),
        'INVALID_INPUT',
      )
      assert.deepEqual(store.stats(), { blocks: 0, bytes: 0 })
      // a bad put after a good one leaves the good one as it was
      store.put(cid, good, { tags: ['ok'] })
      assert.equal(
        code(() => store.put(cid, enc.encode('evil'), { tags: ['other'], pinned: true })),
        'HASH_MISMATCH',
      )
      assert.deepEqual(store.info(cid)?.tags, ['ok'])
      assert.equal(store.info(cid)?.pinned, false)
      assert.deepEqual(store.get(cid), good)
    } finally {
      store.close()
    }
  })

  it('never serves a row corrupted on disk, reports it, and heals on the next good put', async (t) => {
    const path = await tempFile(t)
    const corrupt: string[] = []
    const store = openBlockStore({ path, onCorrupt: (cid) => corrupt.push(cid) })
    t.after(() => store.close())
    const bytes = enc.encode('precious data')
    const cid = cidForBytes(bytes)
    store.put(cid, bytes)

    const db = new DatabaseSync(path)
    db.prepare('UPDATE blocks SET bytes = ? WHERE cid = ?').run(enc.encode('garbage!'), cid.toString())
    db.close()

    assert.equal(store.get(cid), undefined)
    assert.deepEqual(corrupt, [cid.toString()])
    assert.equal(store.has(cid), false)

    // corrupted again, then a verified put repairs the row in place
    store.put(cid, bytes, { tags: ['keep'] })
    const db2 = new DatabaseSync(path)
    db2.prepare('UPDATE blocks SET bytes = ? WHERE cid = ?').run(enc.encode('garbage!'), cid.toString())
    db2.close()
    store.put(cid, bytes)
    assert.deepEqual(store.get(cid), bytes)
    assert.deepEqual(store.info(cid)?.tags, ['keep'])
  })

  it('refuses to open a store written by a newer schema, and refuses calls after close', async (t) => {
    const path = await tempFile(t)
    openBlockStore({ path }).close()
    const db = new DatabaseSync(path)
    db.exec(`PRAGMA user_version = ${BLOCK_STORE_SCHEMA_VERSION + 1}`)
    db.close()
    assert.throws(() => openBlockStore({ path }), /newer than this code knows/)

    const store = openBlockStore({ path: ':memory:' })
    store.close()
    assert.equal(
      code(() => store.stats()),
      'NOT_STARTED',
    )
  })
})
