import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { signCovenant } from '../../src/covenant/index.ts'
import { createExecutor, createRequest, outputHash, verifyReceipt } from '../../src/exec/index.ts'
import { generateKey, type PrivateKey, signValue } from '../../src/keys/index.ts'
import { createSandbox, type Sandbox } from '../../src/sandbox/index.ts'
import { BlockMap, executingCovenant, makeNodes, NEVER_MS, type TestNode } from '../fixtures/exec-cluster.ts'

const CODE = `
export function add(a, b, ctx) {
  ctx.log('adding ' + a + ' and ' + b)
  return { sum: a + b, random: Math.random(), now: Date.now(), id: ctx.request.id }
}
export function spin() { for (;;) {} }
export function bomb() { const a = []; for (let i = 0; ; i++) a.push('x'.repeat(4096) + i) }
export function unlisted() { return 1 }
`

/**
 * Polls `cond` until it holds, for states no event announces. The states awaited here follow from
 * the order of events, not from time; the bound only turns a bug into a failure instead of a hang.
 */
async function until(cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time')
    await new Promise((r) => setImmediate(r))
  }
}

describe('executor', () => {
  let sandbox: Sandbox
  let blocks: BlockMap
  let caller: PrivateKey
  let nodes: TestNode[]
  let fn: string
  let taggedFn: string

  before(async () => {
    sandbox = createSandbox({ workers: 2 })
    blocks = new BlockMap()
    caller = await generateKey()
    nodes = await makeNodes(3)
    const publisher = await generateKey()
    fn = blocks.publish(publisher, CODE, ['add', 'spin', 'bomb']).fn
    taggedFn = blocks.publish(publisher, `${CODE}\n// tagged`, ['add'], ['nsfw']).fn
  })
  after(() => sandbox.stop())

  const executorFor = (node: TestNode, covenant = node.covenant) =>
    createExecutor({ key: node.key, sandbox, getBlock: blocks.get, covenant: () => covenant })

  it('runs the export deterministically and signs a receipt matching its output', async () => {
    const { request, id } = createRequest(caller, { fn, export: 'add', args: [2, 3] })
    const [a, b] = [executorFor(nodes[0]), executorFor(nodes[1])]
    const [ra, rb] = await Promise.all([a.execute(request), b.execute(request)])
    assert.equal(verifyReceipt(ra.receipt).executor, nodes[0].peer)
    assert.equal(ra.receipt.request, id)
    assert.equal(ra.receipt.covenantVersion, 1)
    assert.equal(ra.receipt.outputHash, outputHash(ra.output))
    const value = ra.output.value as { sum: number; random: number; now: number; id: string }
    assert.equal(value.sum, 5)
    assert.equal(value.now, request.timestamp)
    assert.equal(value.id, id)
    assert.deepEqual(ra.output.logs, ['adding 2 and 3'])
    // Seeded by the request id: another executor computes the very same output and fuel.
    assert.equal(rb.receipt.outputHash, ra.receipt.outputHash)
    assert.equal(rb.receipt.fuel, ra.receipt.fuel)
    assert.notEqual(rb.receipt.executor, ra.receipt.executor)
    // Another request (another nonce) seeds another random stream.
    const other = await a.execute(createRequest(caller, { fn, export: 'add', args: [2, 3] }).request)
    assert.notEqual((other.output.value as { random: number }).random, value.random)
  })

  it('fetches the function once and serves it from its cache afterwards', async () => {
    const node = (await makeNodes(1))[0]
    const executor = executorFor(node)
    const before = blocks.fetches
    await executor.execute(createRequest(caller, { fn, export: 'add', args: [1, 1] }).request)
    assert.equal(blocks.fetches - before, 2) // manifest and code
    await executor.execute(createRequest(caller, { fn, export: 'add', args: [1, 2] }).request)
    assert.equal(blocks.fetches - before, 2)
    const stats = executor.stats()
    assert.equal(stats.executed, 2)
    assert.deepEqual(
      { entries: stats.codeCache.entries, hits: stats.codeCache.hits },
      { entries: 1, hits: 1 },
    )
  })

  it('refuses bad requests and what its covenant refuses, with typed errors', async () => {
    const node = nodes[2]
    const executor = executorFor(node)
    const good = createRequest(caller, { fn, export: 'add', args: [1, 2] }).request
    const flipped = new Uint8Array(good.signature)
    flipped[0] ^= 1
    await assert.rejects(executor.execute({ ...good, signature: flipped }), { code: 'INVALID_SIGNATURE' })
    const now = Date.now()
    const { signature: _, ...body } = good
    const expired = { ...body, timestamp: now - 20_000, deadline: now - 10_000 }
    await assert.rejects(executor.execute({ ...expired, signature: signValue(caller, expired) }), {
      code: 'DEADLINE_EXCEEDED',
    })
    await assert.rejects(executor.execute(createRequest(caller, { fn, export: 'unlisted' }).request), {
      code: 'NO_SUCH_EXPORT',
    })
    const strict = signCovenant(node.key, executingCovenant({ maxFuel: 100, refusedTags: ['nsfw'] }), 2)
    const refusing = executorFor(node, strict)
    await assert.rejects(refusing.execute(createRequest(caller, { fn, export: 'add', fuel: 101 }).request), {
      code: 'COVENANT_REFUSED',
      message: /at most 100 fuel/,
    })
    await assert.rejects(
      refusing.execute(createRequest(caller, { fn: taggedFn, export: 'add', fuel: 50 }).request),
      {
        code: 'COVENANT_REFUSED',
        message: /refuses tag "nsfw"/,
      },
    )
    const off = executorFor(node, signCovenant(node.key, { execute: { enabled: false } }, 3))
    await assert.rejects(off.execute(good), { code: 'COVENANT_REFUSED' })
    assert.equal(executor.stats().refused, 3)
  })

  it('checks every fetched block against its CID', async () => {
    const node = (await makeNodes(1))[0]
    const lying = new BlockMap()
    const { fn: lyingFn, manifest } = lying.publish(await generateKey(), CODE, ['add'])
    lying.put(manifest.code.toString(), new TextEncoder().encode('export function add() { return 666 }'))
    const executor = createExecutor({
      key: node.key,
      sandbox,
      getBlock: lying.get,
      covenant: () => node.covenant,
    })
    await assert.rejects(executor.execute(createRequest(caller, { fn: lyingFn, export: 'add' }).request), {
      code: 'HASH_MISMATCH',
    })
    const empty = createExecutor({
      key: node.key,
      sandbox,
      getBlock: new BlockMap().get,
      covenant: () => node.covenant,
    })
    await assert.rejects(empty.execute(createRequest(caller, { fn, export: 'add' }).request), {
      code: 'BLOCK_NOT_FOUND',
    })
  })

  it('signs receipts for an infinite loop and a memory bomb, and keeps serving', async () => {
    const executor = executorFor(nodes[0])
    const spin = await executor.execute(
      createRequest(caller, { fn, export: 'spin', fuel: 20, timeoutMs: NEVER_MS }).request,
    )
    assert.equal(spin.output.error?.code, 'FUEL_EXHAUSTED')
    assert.equal(spin.receipt.outputHash, outputHash(spin.output))
    const bomb = await executor.execute(
      createRequest(caller, { fn, export: 'bomb', memoryMiB: 16, timeoutMs: NEVER_MS }).request,
    )
    assert.equal(bomb.output.error?.code, 'MEMORY_LIMIT')
    const ok = await executor.execute(createRequest(caller, { fn, export: 'add', args: [4, 5] }).request)
    assert.equal((ok.output.value as { sum: number }).sum, 9)
  })

  it("limits concurrency to its covenant's, queueing a bounded number and refusing the rest", async () => {
    const node = (await makeNodes(1, executingCovenant({ concurrency: 1 })))[0]
    const base = { key: node.key, sandbox, getBlock: blocks.get, covenant: () => node.covenant }
    const spinning = () =>
      createRequest(caller, { fn, export: 'spin', fuel: 200, timeoutMs: NEVER_MS }).request
    const noQueue = createExecutor({ ...base, maxQueue: 0 })
    const first = noQueue.execute(spinning())
    await until(() => noQueue.stats().running === 1)
    await assert.rejects(noQueue.execute(spinning()), { code: 'PEER_BUSY' })
    assert.equal((await first).output.error?.code, 'FUEL_EXHAUSTED')

    const queued = createExecutor({ ...base, maxQueue: 1 })
    const calls = [queued.execute(spinning())]
    await until(() => queued.stats().running === 1)
    calls.push(queued.execute(spinning()))
    await until(() => queued.stats().queued === 1)
    await assert.rejects(queued.execute(spinning()), { code: 'PEER_BUSY' })
    const replies = await Promise.all(calls)
    assert.deepEqual(
      replies.map((r) => r.output.error?.code),
      ['FUEL_EXHAUSTED', 'FUEL_EXHAUSTED'],
    )
    assert.deepEqual(
      { running: queued.stats().running, queued: queued.stats().queued },
      { running: 0, queued: 0 },
    )
  })

  it('crashes on purpose only with an onCrash callback, and calls it mid-execution', async () => {
    const node = nodes[1]
    const base = { key: node.key, sandbox, getBlock: blocks.get, covenant: () => node.covenant }
    assert.throws(() => createExecutor({ ...base, fault: 'crash' }), { code: 'INVALID_INPUT' })
    let crashes = 0
    const executor = createExecutor({ ...base, fault: 'crash', onCrash: () => crashes++ })
    const request = createRequest(caller, { fn, export: 'add', args: [1, 2] }).request
    await assert.rejects(executor.execute(request), { code: 'PEER_UNREACHABLE' })
    assert.equal(crashes, 1)
    await assert.rejects(executor.execute(request), { code: 'PEER_UNREACHABLE' })
    assert.equal(crashes, 1)
  })
})
