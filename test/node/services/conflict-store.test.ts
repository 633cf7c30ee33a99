/** The conflict store: verified on the way in, idempotent per (request, executor), bounded, durable. */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { CovenantError } from '../../../src/errors/index.ts'
import { type Conflict, createRequest, signReceipt } from '../../../src/exec/index.ts'
import { generateKey } from '../../../src/keys/index.ts'
import { openConflictStore } from '../../../src/node/index.ts'
import { BlockMap, makeNodes, type TestNode } from '../../fixtures/exec-cluster.ts'

const AGREED = 'a'.repeat(64)
const OTHER = 'b'.repeat(64)

describe('conflict store', () => {
  let dir: string
  let nodes: TestNode[]
  let fn: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-conflicts-'))
    nodes = await makeNodes(4)
    fn = new BlockMap().publish(await generateKey(), 'export const f = () => 1', ['f']).fn
  })
  after(() => rm(dir, { recursive: true, force: true }))

  /** Evidence that nodes[accused] signed OTHER where nodes[0] and nodes[1] signed AGREED. */
  async function conflict(accused = 2): Promise<Conflict> {
    const { id } = createRequest(await generateKey(), { fn, export: 'f' })
    const sign = (n: TestNode, outputHash: string) =>
      signReceipt(n.key, { request: id, outputHash, fuel: 1, covenantVersion: 1, build: 'bd'.repeat(32) })
    return {
      request: id,
      executor: nodes[accused].peer,
      receipt: sign(nodes[accused], OTHER),
      agreedOutputHash: AGREED,
      agreed: [sign(nodes[0], AGREED), sign(nodes[1], AGREED)],
    }
  }

  it('stores verified evidence once, lists it newest first and counts it per executor', async () => {
    const store = openConflictStore({ path: join(dir, 'a', 'conflicts.db') })
    try {
      const c1 = await conflict(2)
      const c2 = await conflict(3)
      const c3 = await conflict(2)
      assert.equal(store.add(c1), true)
      assert.equal(store.add(c1), false)
      assert.equal(store.add(c2), true)
      assert.equal(store.add(c3), true)
      assert.equal(store.size(), 3)
      assert.deepEqual(
        store.list().map((s) => s.conflict.request),
        [c3.request, c2.request, c1.request],
      )
      assert.deepEqual(
        store.list({ executor: nodes[2].peer }).map((s) => s.conflict.request),
        [c3.request, c1.request],
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

  it('refuses evidence that does not verify, and stores nothing for it', async () => {
    const store = openConflictStore({ path: ':memory:' })
    try {
      const forged = await conflict()
      const signature = new Uint8Array(forged.receipt.signature)
      signature[3] ^= 1
      assert.throws(
        () => store.add({ ...forged, receipt: { ...forged.receipt, signature } }),
        (e: CovenantError) => e.code === 'INVALID_CONFLICT',
      )
      const agreeing = await conflict()
      assert.throws(
        () => store.add({ ...agreeing, agreedOutputHash: OTHER }),
        (e: CovenantError) => e.code === 'INVALID_CONFLICT',
      )
      assert.equal(store.size(), 0)
    } finally {
      store.close()
    }
  })

  it('keeps only the newest maxEntries, and keeps them across a reopen', async () => {
    const path = join(dir, 'b', 'conflicts.db')
    const all: Conflict[] = []
    const store = openConflictStore({ path, maxEntries: 3 })
    for (let i = 0; i < 5; i++) {
      all.push(await conflict())
      store.add(all[i])
    }
    assert.equal(store.size(), 3)
    store.close()
    const reopened = openConflictStore({ path, maxEntries: 3 })
    try {
      assert.deepEqual(
        reopened.list().map((s) => s.conflict.request),
        [all[4].request, all[3].request, all[2].request],
      )
      assert.equal(reopened.add(all[4]), false)
    } finally {
      reopened.close()
    }
  })
})
