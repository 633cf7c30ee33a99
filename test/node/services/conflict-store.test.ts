/**
 * The conflict store: verified on the way in against the node's view, idempotent per (request,
 * executor), bounded in rows and bytes, durable.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Manifest } from '../../../src/content/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import { type Conflict, createRequest, rankExecutors, signReceipt } from '../../../src/exec/index.ts'
import { generateKey, type PrivateKey } from '../../../src/keys/index.ts'
import { openConflictStore } from '../../../src/node/index.ts'
import { BlockMap, makeNodes, type TestNode, viewOf } from '../../fixtures/exec-cluster.ts'

const AGREED = 'a'.repeat(64)
const OTHER = 'b'.repeat(64)

describe('conflict store', () => {
  let dir: string
  let nodes: TestNode[]
  let fn: string
  let manifest: Manifest
  let caller: PrivateKey
  const init = () => ({
    view: () => viewOf(nodes),
    manifest: async (cid: string) => {
      if (cid !== fn) throw new Error(`no function ${cid}`)
      return manifest
    },
  })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-conflicts-'))
    nodes = await makeNodes(4)
    ;({ fn, manifest } = new BlockMap().publish(await generateKey(), 'export const f = () => 1', ['f']))
    caller = await generateKey()
  })
  after(() => rm(dir, { recursive: true, force: true }))

  /** Evidence that `accused` signed OTHER where the two best-ranked others signed AGREED. */
  function conflict(accused: TestNode = nodes[2]): Conflict {
    const { request, id } = createRequest(caller, { fn, export: 'f' })
    const sign = (n: TestNode, outputHash: string) =>
      signReceipt(n.key, { request: id, outputHash, fuel: 1, covenantVersion: 1, build: 'bd'.repeat(32) })
    const order = rankExecutors(viewOf(nodes), request, manifest).ordered
    const signers = order.filter((p) => p !== accused.peer).slice(0, 2)
    const receipt = sign(accused, OTHER)
    const ahead = order.indexOf(accused.peer) < order.indexOf(signers[1])
    return {
      receipt,
      certificate: {
        request,
        id,
        outputHash: AGREED,
        receipts: signers.map((p) => sign(nodes.find((n) => n.peer === p)!, AGREED)),
        skipped: ahead ? [{ peer: accused.peer, receipt }] : [],
      },
    }
  }

  it('stores verified evidence once, lists it newest first and counts it per executor', async () => {
    const store = openConflictStore({ path: join(dir, 'a', 'conflicts.db'), ...init() })
    const idOf = (c: Conflict) => c.certificate.id
    try {
      const c1 = conflict(nodes[2])
      const c2 = conflict(nodes[3])
      const c3 = conflict(nodes[2])
      assert.equal(await store.add(c1), true)
      assert.equal(await store.add(c1), false)
      assert.equal(await store.add(c2), true)
      assert.equal(await store.add(c3), true)
      assert.equal(store.size(), 3)
      assert.deepEqual(
        store.list().map((s) => idOf(s.conflict)),
        [idOf(c3), idOf(c2), idOf(c1)],
      )
      assert.deepEqual(
        store.list({ executor: nodes[2].peer }).map((s) => idOf(s.conflict)),
        [idOf(c3), idOf(c1)],
      )
      assert.deepEqual(store.list({ limit: 1 }).length, 1)
      assert.deepEqual(
        store.counts(),
        new Map([
          [nodes[2].peer, 2],
          [nodes[3].peer, 1],
        ]),
      )
    } finally {
      store.close()
    }
  })

  it('refuses evidence that does not verify against its view, and stores nothing for it', async () => {
    const store = openConflictStore({ path: ':memory:', ...init() })
    const invalid = (e: CovenantError) => e.code === 'INVALID_CONFLICT'
    try {
      const forged = conflict()
      const signature = new Uint8Array(forged.receipt.signature)
      signature[3] ^= 1
      await assert.rejects(store.add({ ...forged, receipt: { ...forged.receipt, signature } }), invalid)
      await assert.rejects(store.add({ ...forged, receipt: forged.certificate.receipts[0] }), invalid)
      // a flood of evidence from keys the node does not know: neither accused nor certifiers count
      const strangers = await makeNodes(3)
      await assert.rejects(store.add(conflict(strangers[0])), invalid)
      const { certificate } = forged
      const outsiders = {
        ...forged,
        certificate: {
          ...certificate,
          receipts: strangers.slice(1).map((n) =>
            signReceipt(n.key, {
              request: certificate.id,
              outputHash: AGREED,
              fuel: 1,
              covenantVersion: 1,
              build: 'bd'.repeat(32),
            }),
          ),
        },
      }
      await assert.rejects(store.add(outsiders), invalid)
      // evidence about a function the node cannot have
      const unknownFn = { ...init(), manifest: async () => Promise.reject(new Error('gone')) }
      const blind = openConflictStore({ path: ':memory:', ...unknownFn })
      await assert.rejects(blind.add(forged), invalid)
      blind.close()
      await assert.rejects(store.add({ receipt: forged.receipt }), invalid)
      assert.equal(store.size(), 0)
    } finally {
      store.close()
    }
  })

  it('keeps only the newest maxEntries, and keeps them across a reopen', async () => {
    const path = join(dir, 'b', 'conflicts.db')
    const all: Conflict[] = []
    const store = openConflictStore({ path, maxEntries: 3, ...init() })
    for (let i = 0; i < 5; i++) {
      all.push(conflict())
      await store.add(all[i])
    }
    assert.equal(store.size(), 3)
    store.close()
    const reopened = openConflictStore({ path, maxEntries: 3, ...init() })
    try {
      assert.deepEqual(
        reopened.list().map((s) => s.conflict.certificate.id),
        [all[4], all[3], all[2]].map((c) => c.certificate.id),
      )
      assert.equal(await reopened.add(all[4]), false)
    } finally {
      reopened.close()
    }
    // bounded in bytes too: two rows do not fit in the room of one and a half
    const size = dagCbor.encode(all[0]).length
    const small = openConflictStore({ path: ':memory:', maxBytes: Math.floor(1.5 * size), ...init() })
    await small.add(all[0])
    await small.add(all[1])
    assert.deepEqual(
      small.list().map((s) => s.conflict.certificate.id),
      [all[1].certificate.id],
    )
    small.close()
  })

  it('drops evidence of the format before certificates when it opens an old file', async () => {
    const path = join(dir, 'old', 'conflicts.db')
    await mkdir(join(dir, 'old'), { recursive: true })
    const old = new DatabaseSync(path)
    old.exec(`CREATE TABLE conflicts (seq INTEGER PRIMARY KEY AUTOINCREMENT, request TEXT NOT NULL,
      executor TEXT NOT NULL, received_at INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (request, executor)) STRICT;
      INSERT INTO conflicts (request, executor, received_at, body) VALUES ('r', 'e', 1, x'a0');`)
    old.close()
    const store = openConflictStore({ path, ...init() })
    try {
      assert.equal(store.size(), 0)
      assert.equal(await store.add(conflict()), true)
      assert.equal(store.list().length, 1)
    } finally {
      store.close()
    }
  })
})
