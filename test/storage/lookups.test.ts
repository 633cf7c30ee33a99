/**
 * A storm of fetches for unknown CIDs against a real in-process node whose only storing peer holds
 * every block request until the test lets it answer: the node runs at most `maxLookups` network
 * lookups at once, queues `maxQueuedLookups` more, refuses the rest at once with PEER_BUSY,
 * remembers what it found missing, and keeps serving what it holds meanwhile. Nothing here depends
 * on a clock: the holding peer answers only when released.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import { cidForBytes } from '../../src/content/index.ts'
import { DEFAULT_COVENANT, signCovenant } from '../../src/covenant/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { createNet, type Net } from '../../src/net/index.ts'
import { createPeerTable, type PeerTable } from '../../src/peers/index.ts'
import { BLOCK_PROTOCOL, blockRequestSchema } from '../../src/storage/index.ts'
import { Lookups } from '../../src/storage/lookups.ts'
import { connectTo, waitFor } from '../fixtures/network.ts'
import { type StorageMember, storageMember } from '../fixtures/storage-members.ts'

const MAX_LOOKUPS = 4
const QUEUED = 8
const STORM = 40

describe('lookup bounds', () => {
  const code = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (err: unknown) => CovenantError.from(err).code,
    )

  it('shares one lookup per key, queues within the bound, refuses beyond it, and frees the slot for the next', async () => {
    const lookups = new Lookups({ max: 1, queue: 1, missMs: 1000 })
    const gate = Promise.withResolvers<void>()
    let runs = 0
    const work = async () => {
      runs++
      await gate.promise
      return runs
    }
    const never = new AbortController().signal
    const first = lookups.run('a', never, work)
    const joined = lookups.run('a', never, work)
    const queued = lookups.run('b', never, work)
    assert.equal(await code(lookups.run('c', never, work)), 'PEER_BUSY')
    assert.deepEqual([lookups.active, lookups.queued], [1, 1])
    gate.resolve()
    assert.equal(await first, 1)
    assert.equal(await joined, 1)
    assert.equal(await queued, 2)
    assert.deepEqual([lookups.active, lookups.queued], [0, 0])
  })

  it('gives up a wait for a turn when the caller’s deadline passes, and keeps the queue right', async () => {
    const lookups = new Lookups({ max: 1, queue: 2, missMs: 1000 })
    const gate = Promise.withResolvers<void>()
    const running = lookups.run('a', new AbortController().signal, () => gate.promise)
    const impatient = new AbortController()
    const waiting = lookups.run('b', impatient.signal, async () => 'b')
    impatient.abort()
    assert.equal(await code(waiting), 'PEER_TIMEOUT')
    assert.equal(lookups.queued, 0)
    gate.resolve()
    await running
    assert.equal(await lookups.run('c', new AbortController().signal, async () => 'c'), 'c')
  })

  it('remembers a miss for missMs, and forgets it when told the block is here', () => {
    let now = 0
    const lookups = new Lookups({ max: 1, queue: 0, missMs: 100, now: () => now })
    lookups.noteMiss('x')
    assert.equal(lookups.missed('x'), true)
    now = 100
    assert.equal(lookups.missed('x'), false)
    lookups.noteMiss('y')
    lookups.forget('y')
    assert.equal(lookups.missed('y'), false)
  })
})

describe('a storm of fetches for unknown CIDs', { timeout: 120_000 }, () => {
  let node: StorageMember
  let holder: Net
  let holderTable: PeerTable
  const release = Promise.withResolvers<void>()
  let gets = 0
  let inFlight = 0
  let mostInFlight = 0

  before(async () => {
    node = await storageMember({
      storage: {
        maxLookups: MAX_LOOKUPS,
        maxQueuedLookups: QUEUED,
        lookupTimeoutMs: 600_000,
        missCacheMs: 600_000,
      },
    })
    // A storing peer, live in the node's table, that holds every `get` until released.
    const key = await generateKey()
    holder = createNet({ privateKey: key })
    await holder.start()
    await holder.handle(BLOCK_PROTOCOL, {
      schema: blockRequestSchema,
      maxConcurrent: 1000,
      maxPerPeer: 1000,
      runTimeoutMs: 600_000,
      handler: async (msg) => {
        if (msg.type === 'has') return { has: msg.cids.map(() => false) }
        if (msg.type !== 'get') throw new CovenantError('COVENANT_REFUSED', 'not storing today')
        gets++
        mostInFlight = Math.max(mostInFlight, ++inFlight)
        try {
          await release.promise
        } finally {
          inFlight--
        }
        throw new CovenantError('BLOCK_NOT_FOUND', 'not held here')
      },
    })
    const covenant = signCovenant(key, DEFAULT_COVENANT, 1)
    holderTable = createPeerTable(
      { net: holder, covenant: () => covenant, logger: pino({ level: 'silent' }) },
      { heartbeatMs: 600_000, helloTimeoutMs: 60_000 },
    )
    await holderTable.start()
    await connectTo(holder, node.net.multiaddrs()[0])
    await waitFor('the node to see the holder alive', async () =>
      (await holderTable.hello(node.id)) && node.table.get(holder.peerId)?.alive ? true : undefined,
    )
  })
  after(async () => {
    release.resolve()
    await holderTable?.stop()
    await holder?.stop()
    await node?.stop()
  })

  it('runs a bounded number of lookups, refuses the rest at once, keeps serving, and remembers the misses', async () => {
    const held = crypto.getRandomValues(new Uint8Array(512))
    node.store.put(cidForBytes(held), held)
    const unknown = Array.from({ length: STORM }, (_, i) =>
      cidForBytes(new TextEncoder().encode(`unknown ${i}`)),
    )
    const outcomes = unknown.map((cid) =>
      node.storage.get(cid).then(
        () => 'found',
        (err: unknown) => CovenantError.from(err).code,
      ),
    )
    // the first MAX_LOOKUPS ask the holder, QUEUED wait their turn, and the rest are refused now
    const busy = await Promise.all(outcomes.slice(MAX_LOOKUPS + QUEUED))
    assert.deepEqual(busy, Array(STORM - MAX_LOOKUPS - QUEUED).fill('PEER_BUSY'))
    await waitFor('the admitted lookups to reach the holder', async () =>
      inFlight === MAX_LOOKUPS ? true : undefined,
    )
    // today's main asked the holder for all 40 at once, one after another per CID, for seconds each

    // meanwhile the node serves what it holds, locally and to peers
    assert.equal((await node.storage.get(cidForBytes(held))).source, 'local')
    const served = (await holder.request(node.id, BLOCK_PROTOCOL, {
      type: 'get',
      cid: cidForBytes(held).toString(),
    })) as { bytes: Uint8Array }
    assert.deepEqual(new Uint8Array(served.bytes), held)

    release.resolve()
    const admitted = await Promise.all(outcomes.slice(0, MAX_LOOKUPS + QUEUED))
    assert.deepEqual(admitted, Array(MAX_LOOKUPS + QUEUED).fill('BLOCK_NOT_FOUND'))
    assert.equal(mostInFlight, MAX_LOOKUPS)
    assert.equal(gets, MAX_LOOKUPS + QUEUED)

    // the same CIDs again: answered from memory, nothing sent
    const again = await Promise.all(
      unknown.slice(0, MAX_LOOKUPS + QUEUED).map((cid) =>
        node.storage.get(cid).then(
          () => 'found',
          (err: unknown) => CovenantError.from(err).code,
        ),
      ),
    )
    assert.deepEqual(again, Array(MAX_LOOKUPS + QUEUED).fill('BLOCK_NOT_FOUND'))
    assert.equal(gets, MAX_LOOKUPS + QUEUED)
  })
})
