/**
 * Where blocks may go, over real in-process libp2p nodes: a node takes a remote put only of a
 * block it should hold in its own view (or within the sender's small quota), a full node is not
 * re-sent the same blocks every round, and a repair round reaches every block, page after page.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import { closestPeers } from '../../src/covenant/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { createNet, type Net } from '../../src/net/index.ts'
import { BLOCK_PROTOCOL } from '../../src/storage/index.ts'
import { Positions, PutQuota, Refusals } from '../../src/storage/placement.ts'
import { connectTo } from '../fixtures/network.ts'
import { allAlive, counted, type StorageMember, storageMember } from '../fixtures/storage-members.ts'

function random(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n))
}

/**
 * Random blocks for which `keep(cid)` says yes, as many as asked. `keep` must hold for a fair share
 * of the key space (a node among the few closest, say), or this gives up rather than spin.
 */
function blocksWhere(count: number, keep: (cid: ReturnType<typeof cidForBytes>) => boolean): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let tries = 0; out.length < count; tries++) {
    if (tries > 100 * count) throw new Error('too few random blocks fit; the predicate is too narrow')
    const bytes = random(1024)
    if (keep(cidForBytes(bytes))) out.push(bytes)
  }
  return out
}

describe('placement memory', () => {
  it('ranks peers exactly as closestPeers does, with positions computed once', async () => {
    const ids = await Promise.all(
      Array.from({ length: 12 }, async () => createNet({ privateKey: await generateKey() }).peerId),
    )
    const positions = new Positions()
    for (let i = 0; i < 50; i++) {
      const key = random(36)
      assert.deepEqual(positions.rank(key, ids), closestPeers(key, ids, ids.length))
    }
  })

  it('leaves a full peer out for every block and a refusing peer for that block, doubling each time', () => {
    let now = 0
    const refusals = new Refusals({ baseMs: 100, maxMs: 250, maxEntries: 2, now: () => now })
    refusals.note('full', 'a', new CovenantError('STORAGE_FULL'))
    refusals.note('picky', 'a', new CovenantError('NOT_A_HOLDER'))
    // a peer that is down is the peer table's business, not a refusal
    refusals.note('down', 'a', new CovenantError('PEER_UNREACHABLE'))
    assert.equal(refusals.blocked('full', 'b'), true)
    assert.equal(refusals.blocked('picky', 'a'), true)
    assert.equal(refusals.blocked('picky', 'b'), false)
    assert.equal(refusals.blocked('down', 'a'), false)
    now = 100
    assert.equal(refusals.blocked('full', 'b'), false)
    refusals.note('full', 'b', new CovenantError('STORAGE_FULL'))
    now = 299
    assert.equal(refusals.blocked('full', 'b'), true, 'the second wait is twice the first')
    // at most maxEntries remembered, the oldest forgotten first
    refusals.note('third', 'c', new CovenantError('COVENANT_REFUSED'))
    assert.equal(refusals.size, 2)
    assert.equal(refusals.blocked('picky', 'a'), false)
  })

  it('counts each peer’s off-placement puts per window, by blocks and by bytes', () => {
    let now = 0
    const quota = new PutQuota({ blocks: 2, bytes: 1000, windowMs: 1000, now: () => now })
    assert.equal(quota.take('a', 400), true)
    assert.equal(quota.take('a', 700), false, 'over the bytes')
    assert.equal(quota.take('a', 500), true)
    assert.equal(quota.take('a', 1), false, 'over the blocks')
    assert.equal(quota.take('b', 1), true, 'another peer has its own')
    now = 1000
    assert.equal(quota.take('a', 1), true, 'a new window')
  })
})

describe('a storage flood from one peer', { timeout: 120_000 }, () => {
  const members: StorageMember[] = []
  let attacker: Net
  const QUOTA = 4

  before(async () => {
    // k = 1 and a slack of 1: a node takes a remote put when it is one of the 2 closest of 6
    const options = { replicas: 1, holderSlack: 1, putQuotaBlocks: QUOTA }
    members.push(await storageMember({ storage: options }))
    const first = members[0].net.multiaddrs()[0]
    for (let i = 0; i < 5; i++) members.push(await storageMember({ bootstrap: [first], storage: options }))
    await allAlive(members)
    attacker = createNet({ privateKey: await generateKey() })
    await attacker.start()
    await connectTo(attacker, members[0].net.multiaddrs()[0])
  })
  after(async () => {
    await attacker?.stop()
    for (const m of members) await m.stop()
  })

  it('takes only blocks the node should hold, and a few more on quota; refuses the rest with NOT_A_HOLDER', async () => {
    const target = members[0]
    const ids = members.map((m) => m.id)
    const rank = (cid: ReturnType<typeof cidForBytes>) =>
      closestPeers(cid.bytes, ids, ids.length).indexOf(target.id)
    const far = blocksWhere(20, (cid) => rank(cid) >= 2)
    const near = blocksWhere(3, (cid) => rank(cid) < 2)
    const put = (bytes: Uint8Array) =>
      attacker.request(target.id, BLOCK_PROTOCOL, { type: 'put', cid: cidForBytes(bytes).toString(), bytes })
    const refusals: string[] = []
    for (const bytes of far) {
      try {
        await put(bytes)
      } catch (err) {
        refusals.push(CovenantError.from(err).code)
      }
    }
    // today's main stored all 20, and would have gone on to its whole store.maxBytes
    assert.deepEqual(refusals, Array(far.length - QUOTA).fill('NOT_A_HOLDER'))
    assert.equal(target.store.stats().blocks, QUOTA)
    assert.equal(
      await counted(target, 'covenant_block_puts_total', { result: 'NOT_A_HOLDER' }),
      far.length - QUOTA,
    )
    // blocks this node is a holder of are taken whatever the quota says
    for (const bytes of near) assert.deepEqual(await put(bytes), { stored: true })
    assert.equal(target.store.stats().blocks, QUOTA + near.length)
  })
})

describe('a full node and repair', { timeout: 120_000 }, () => {
  const members: StorageMember[] = []
  let source: StorageMember
  let full: StorageMember

  before(async () => {
    // k = 2 over four nodes; one of them has room for four 1 KiB blocks only
    const storage = { replicas: 2, refusalBackoffMs: 3_600_000, repairPageSize: 16 }
    source = await storageMember({ storage })
    const first = source.net.multiaddrs()[0]
    full = await storageMember({
      bootstrap: [first],
      storage,
      covenant: { store: { maxBytes: 4 * 1024 + 512 } },
    })
    members.push(source, full)
    for (let i = 0; i < 2; i++) members.push(await storageMember({ bootstrap: [first], storage }))
    await allAlive(members)
  })
  after(async () => {
    for (const m of members) await m.stop()
  })

  it('pages through every block, and sends a full node nothing more once it said it is full', async () => {
    const ids = members.map((m) => m.id)
    // 100 blocks on one node, every one of which the full node is a desired holder of (one of the 2
    // closest of 4); the node holding them pushes them there, whether it is the other holder or not
    const blocks = blocksWhere(100, (cid) => closestPeers(cid.bytes, ids, 2).includes(full.id))
    for (const bytes of blocks) source.store.put(cidForBytes(bytes), bytes)

    const first = await source.storage.repair()
    assert.equal(first.checked, blocks.length)
    assert.equal(await counted(full, 'covenant_block_puts_total', { result: 'stored' }), 4)
    // Rounds on every node (their own, set off by peer changes, run too), three times over: each
    // node that sends the full node a block hears STORAGE_FULL once, then leaves it out and places
    // the block on the next closest node. Today's main re-sent every refused block every round.
    for (let round = 0; round < 3; round++) for (const m of members) await m.storage.repair()
    const senders = members.filter((m) => m !== full).length
    assert.ok((await counted(full, 'covenant_block_puts_total', { result: 'STORAGE_FULL' })) <= senders)
    assert.equal(await counted(full, 'covenant_block_puts_total', { result: 'stored' }), 4)
    // every block, from the first page to the last, has its k = 2 holders
    const others = members.filter((m) => m !== source)
    for (const bytes of blocks) {
      const cid = cidForBytes(bytes)
      const holders = [source, ...others].filter((m) => m.store.has(cid))
      assert.ok(holders.length >= 2, `${cid} has ${holders.length} holders`)
    }
  })
})

describe('a block several nodes store at once (unlessHeld)', { timeout: 120_000 }, () => {
  const members: StorageMember[] = []

  before(async () => {
    const storage = { replicas: 2 }
    const first = await storageMember({ storage })
    members.push(first)
    for (let i = 0; i < 3; i++)
      members.push(await storageMember({ bootstrap: [first.net.multiaddrs()[0]], storage }))
    await allAlive(members)
  })
  after(async () => {
    for (const m of members) await m.stop()
  })

  const stored = async () => {
    let n = 0
    for (const m of members) n += await counted(m, 'covenant_block_puts_total', { result: 'stored' })
    return n
  }

  it('is sent to each holder once: a later put asks `has` and sends nothing to a holder that has it', async () => {
    const bytes = random(4096)
    const [a, b, c] = members
    const put = await a.storage.put(bytes, { unlessHeld: true })
    assert.equal(put.holders.length, 2)
    assert.equal(put.sent, 2)
    const remote = await stored()
    // another node storing the same block: every holder has it, so no bytes move
    const again = await b.storage.put(bytes, { unlessHeld: true })
    assert.deepEqual([again.holders, again.sent], [put.holders, 0])
    assert.equal(await stored(), remote)
    // A holder that lost it is sent it again, and only it.
    const lost = members.find((m) => m.id === put.holders[0])!
    lost.store.delete(cidForBytes(bytes))
    const third = await c.storage.put(bytes, { unlessHeld: true })
    assert.deepEqual([third.holders, third.sent], [put.holders, 1])
    assert.ok(lost.store.has(cidForBytes(bytes)))
    // without the option every holder is sent the bytes, as before
    assert.equal((await c.storage.put(bytes)).sent, 2)
  })
})
