import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, it, type TestContext } from 'node:test'
import {
  BLOCK_STORE_SCHEMA_VERSION,
  type CID,
  cidForBytes,
  createManifest,
  MAX_BLOCK_BYTES,
  MAX_BLOCK_LABELS,
  manifestLabel,
  openBlockStore,
} from '../../src/content/index.ts'
import { generateKey, type PrivateKey } from '../../src/keys/index.ts'
import { errorCode as code } from '../fixtures/errors.ts'

const enc = new TextEncoder()

/** A signed manifest naming `block` with `tags`, as bytes, its CID and its label. */
function manifestFor(key: PrivateKey, block: CID, tags: string[], name = 'f') {
  const m = createManifest(key, { code: block, size: 1, exports: ['f'], tags, name })
  const bytes = new Uint8Array(m.bytes)
  return { cid: m.cid, bytes, label: manifestLabel(bytes) }
}

async function tempFile(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'covenant-blocks-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'nested', 'blocks.db')
}

describe('block store', () => {
  it('keeps blocks, their signed tags and pins across a reopen of the same file', async (t) => {
    const path = await tempFile(t)
    const key = await generateKey()
    const a = enc.encode('block a')
    const ca = cidForBytes(a)
    const first = manifestFor(key, ca, ['math'])
    const second = manifestFor(key, ca, ['data', 'math'], 'g')
    let clock = 1000
    const store = openBlockStore({ path, now: () => clock })
    store.put(ca, a, { labels: [first.label] })
    store.put(first.cid, first.bytes, { pinned: true })
    clock = 2000
    // idempotent: adds a signed label's tags, keeps the pin, keeps the first created_at
    store.put(ca, a, { labels: [second.label], pinned: true })
    store.put(first.cid, first.bytes)
    store.close()

    const again = openBlockStore({ path })
    t.after(() => again.close())
    assert.deepEqual(again.get(ca), a)
    assert.deepEqual(again.get(first.cid), first.bytes)
    assert.equal(again.has(ca), true)
    assert.deepEqual(again.info(ca), {
      cid: ca.toString(),
      size: a.length,
      tags: ['data', 'math'],
      pinned: true,
      createdAt: 1000,
    })
    // a manifest's tags are its own
    assert.deepEqual(again.info(first.cid)?.tags, ['math'])
    assert.equal(again.info(first.cid)?.pinned, true)
    assert.deepEqual(again.stats(), { blocks: 2, bytes: a.length + first.bytes.length })
    const sorted = [ca.toString(), first.cid.toString()].sort()
    assert.deepEqual(
      again.list().map((i) => i.cid),
      sorted,
    )
    assert.deepEqual(
      again.list({ after: sorted[0] }).map((i) => i.cid),
      [sorted[1]],
    )
    assert.equal(again.list({ limit: 1 }).length, 1)
    assert.deepEqual(again.labelsOf(ca), [first.bytes, second.bytes])

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
    assert.deepEqual(again.stats(), { blocks: 1, bytes: first.bytes.length })
    // its labels outlive the copy: the block is still known for what it is
    assert.deepEqual(again.tagsOf(ca), ['data', 'math'])
  })

  it('takes tags only from signed manifests, given with the block, before it or after it', async () => {
    const key = await generateKey()
    const store = openBlockStore({ path: ':memory:' })
    try {
      const data = enc.encode('plain data')
      const dataCid = cidForBytes(data)
      store.put(dataCid, data)
      assert.deepEqual(store.info(dataCid)?.tags, [])
      // no free-form tags, not even on a second put
      const untyped = store.put as (cid: CID, bytes: Uint8Array, meta: unknown) => void
      assert.equal(
        code(() => untyped(dataCid, data, { tags: ['nsfw'] })),
        'INVALID_INPUT',
      )
      assert.deepEqual(store.info(dataCid)?.tags, [])
      // a manifest naming another block is not a label of this one
      const other = manifestFor(key, cidForBytes(enc.encode('other')), ['nsfw'])
      assert.equal(
        code(() => store.put(dataCid, data, { labels: [other.label] })),
        'INVALID_INPUT',
      )
      assert.deepEqual(store.info(dataCid)?.tags, [])

      // the manifest first: the code put later, bare, still gets its tags
      const before = enc.encode('export const f = () => 1')
      const beforeCid = cidForBytes(before)
      const mb = manifestFor(key, beforeCid, ['games'])
      store.put(mb.cid, mb.bytes)
      store.put(beforeCid, before)
      assert.deepEqual(store.info(beforeCid)?.tags, ['games'])
      assert.deepEqual(store.labelsOf(beforeCid), [mb.bytes])

      // the code first: the manifest that arrives later tags it, and says so
      const after = enc.encode('export const g = () => 2')
      const afterCid = cidForBytes(after)
      store.put(afterCid, after)
      const ma = manifestFor(key, afterCid, ['nsfw'])
      assert.deepEqual(store.label([ma.label]), [{ cid: afterCid.toString(), tags: ['nsfw'], held: true }])
      assert.deepEqual(store.info(afterCid)?.tags, ['nsfw'])

      // a label for a block not held is remembered for it
      const later = enc.encode('not here yet')
      const laterCid = cidForBytes(later)
      const ml = manifestFor(key, laterCid, ['x'])
      assert.deepEqual(store.label([ml.label]), [{ cid: laterCid.toString(), tags: ['x'], held: false }])
      assert.equal(store.has(laterCid), false)
      assert.deepEqual(store.tagsOf(laterCid), ['x'])
      store.put(laterCid, later)
      assert.deepEqual(store.info(laterCid)?.tags, ['x'])
    } finally {
      store.close()
    }
  })

  it('keeps the first label of a block, which names its publisher, even with no tag', async () => {
    const key = await generateKey()
    const store = openBlockStore({ path: ':memory:' })
    try {
      const code = enc.encode('untagged code')
      const cid = cidForBytes(code)
      const first = manifestFor(key, cid, [])
      // the manifest first, the code after: the code learns who published it, and hands it on
      store.put(first.cid, first.bytes)
      store.put(cid, code)
      assert.deepEqual(store.labelsOf(cid), [first.bytes])
      assert.deepEqual(store.info(cid)?.tags, [])
      // a second untagged manifest teaches nothing more
      assert.deepEqual(store.label([manifestFor(key, cid, [], 'second').label]), [])
      assert.deepEqual(store.labelsOf(cid), [first.bytes])
      const other = enc.encode('other untagged code')
      const otherCid = cidForBytes(other)
      store.put(otherCid, other, { labels: [manifestFor(key, otherCid, []).label] })
      assert.equal(store.labelsOf(otherCid).length, 1, 'given with the block')
    } finally {
      store.close()
    }
  })

  it('keeps, after the first, only labels that add a tag, at most MAX_BLOCK_LABELS per block', async () => {
    const key = await generateKey()
    const store = openBlockStore({ path: ':memory:' })
    try {
      const code = enc.encode('shared code')
      const cid = cidForBytes(code)
      store.put(cid, code, { labels: [manifestFor(key, cid, ['a']).label] })
      // the same tags again teach nothing and are not kept
      assert.deepEqual(store.label([manifestFor(key, cid, ['a'], 'again').label]), [])
      const more = Array.from({ length: MAX_BLOCK_LABELS + 3 }, (_, i) => manifestFor(key, cid, [`t${i}`]))
      store.label(more.map((m) => m.label))
      assert.equal(store.labelsOf(cid).length, MAX_BLOCK_LABELS)
      // a held block still learns every tag, beyond the labels it keeps to hand on
      assert.equal(store.info(cid)?.tags.length, 1 + more.length)
    } finally {
      store.close()
    }
  })

  it('migrates a version 1 file: free-form tags go, a manifest keeps its own and labels its code', async (t) => {
    const path = await tempFile(t)
    const key = await generateKey()
    const codeBytes = enc.encode('export const h = () => 3')
    const codeCid = cidForBytes(codeBytes)
    const m = manifestFor(key, codeCid, ['games'])
    const raw = enc.encode('tagged by an uploader')
    const v1 = openBlockStore({ path })
    v1.close()
    const db = new DatabaseSync(path)
    db.exec('DROP TABLE labels; PRAGMA user_version = 1')
    const insert = db.prepare(
      'INSERT INTO blocks (cid, bytes, size, tags, pinned, created_at, last_access) VALUES (?, ?, ?, ?, 0, 1, 1)',
    )
    insert.run(cidForBytes(raw).toString(), raw, raw.length, '["nsfw"]')
    insert.run(m.cid.toString(), m.bytes, m.bytes.length, '["bogus"]')
    insert.run(codeCid.toString(), codeBytes, codeBytes.length, '["claimed"]')
    db.close()
    const store = openBlockStore({ path })
    t.after(() => store.close())
    assert.deepEqual(store.info(cidForBytes(raw))?.tags, [])
    assert.deepEqual(store.info(m.cid)?.tags, ['games'])
    assert.deepEqual(store.tagsOf(codeCid), ['games'])
    assert.deepEqual(store.stats(), { blocks: 3, bytes: raw.length + m.bytes.length + codeBytes.length })
  })

  it('rejects a block that does not hash to its CID, a too-large block and bad metadata, storing nothing', () => {
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
      const untyped = store.put as (cid: CID, bytes: Uint8Array, meta: unknown) => void
      assert.equal(
        code(() => untyped(cid, good, { pinned: 'yes' })),
        'INVALID_INPUT',
      )
      assert.deepEqual(store.stats(), { blocks: 0, bytes: 0 })
      // a bad put after a good one leaves the good one as it was
      store.put(cid, good)
      assert.equal(
        code(() => store.put(cid, enc.encode('evil'), { pinned: true })),
        'HASH_MISMATCH',
      )
      assert.deepEqual(store.info(cid)?.tags, [])
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
    store.put(cid, bytes, { pinned: true })
    const db2 = new DatabaseSync(path)
    db2.prepare('UPDATE blocks SET bytes = ? WHERE cid = ?').run(enc.encode('garbage!'), cid.toString())
    db2.close()
    store.put(cid, bytes)
    assert.deepEqual(store.get(cid), bytes)
    assert.equal(store.info(cid)?.pinned, true)
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
