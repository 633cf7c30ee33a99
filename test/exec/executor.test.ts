import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type SignedCovenant, signCovenant } from '../../src/covenant/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  checkRequest,
  createExecutor,
  createRequest,
  type ExecReply,
  type ExecResult,
  outputHash,
  outputValue,
  rankExecutors,
  ticketFor,
  verifyReceipt,
  verifyRefusal,
} from '../../src/exec/index.ts'
import { generateKey, keyId, type PrivateKey, signValue } from '../../src/keys/index.ts'
import { createSandbox, type Sandbox } from '../../src/sandbox/index.ts'
import {
  BlockMap,
  executingCovenant,
  makeNodes,
  NEVER_MS,
  type TestNode,
  viewOf,
} from '../fixtures/exec-cluster.ts'

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

/** The receipt reply, or a failure naming the refusal. */
function receipted(reply: ExecReply): ExecResult {
  assert.ok('receipt' in reply, `refused: ${'refusal' in reply ? reply.refusal.code : ''}`)
  return reply
}

/** The code of a signed refusal, checked to be signed by `peer`. */
function refusalCode(reply: ExecReply, peer: string): string {
  assert.ok('refusal' in reply, 'expected a refusal')
  const refusal = verifyRefusal(reply.refusal)
  assert.equal(refusal.executor, peer)
  return refusal.code
}

describe('executor', () => {
  let sandbox: Sandbox
  let blocks: BlockMap
  let caller: PrivateKey
  let nodes: TestNode[]
  let fn: string
  let taggedFn: string
  let publisher: PrivateKey

  before(async () => {
    sandbox = createSandbox({ workers: 2 })
    blocks = new BlockMap()
    caller = await generateKey()
    nodes = await makeNodes(3)
    publisher = await generateKey()
    fn = blocks.publish(publisher, CODE, ['add', 'spin', 'bomb']).fn
    taggedFn = blocks.publish(publisher, `${CODE}\n// tagged`, ['add'], ['nsfw']).fn
  })
  after(() => sandbox.stop())

  const executorFor = (node: TestNode, covenant: SignedCovenant = node.covenant) =>
    createExecutor({
      key: node.key,
      sandbox,
      getBlock: blocks.get,
      covenant: () => covenant,
      view: () => viewOf(nodes.includes(node) ? nodes : [...nodes, node]),
    })

  it('runs the export deterministically and signs a receipt matching its output', async () => {
    const { request, id } = createRequest(caller, { fn, export: 'add', args: [2, 3] })
    const [a, b] = [executorFor(nodes[0]), executorFor(nodes[1])]
    const [ra, rb] = (await Promise.all([a.execute(request), b.execute(request)])).map(receipted)
    assert.equal(verifyReceipt(ra.receipt).executor, nodes[0].peer)
    assert.equal(ra.receipt.request, id)
    assert.equal(ra.receipt.covenantVersion, 1)
    assert.equal(ra.receipt.outputHash, outputHash(ra.output))
    const value = outputValue(ra.output) as { sum: number; random: number; now: number; id: string }
    assert.equal(value.sum, 5)
    assert.equal(value.now, request.timestamp)
    assert.equal(value.id, id)
    assert.deepEqual(ra.output.logs, ['adding 2 and 3'])
    // Seeded by the request id: another executor computes the very same output and fuel.
    assert.equal(rb.receipt.outputHash, ra.receipt.outputHash)
    assert.equal(rb.receipt.fuel, ra.receipt.fuel)
    assert.notEqual(rb.receipt.executor, ra.receipt.executor)
    // Another request (another nonce) seeds another random stream.
    const other = receipted(
      await a.execute(createRequest(caller, { fn, export: 'add', args: [2, 3] }).request),
    )
    assert.notEqual((outputValue(other.output) as { random: number }).random, value.random)
    // The value is the function's own text, key order included.
    assert.match(ra.output.json ?? '', /^\{"sum":5,"random":[^,]+,"now":\d+,"id":"[a-z0-9]+"\}$/)
  })

  it('fetches the function once and serves it from its cache afterwards', async () => {
    const executor = executorFor(nodes[1])
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

  it('refuses bad requests with typed errors, and signs its refusals of what it will not run', async () => {
    const node = nodes[2]
    const executor = executorFor(node)
    const good = createRequest(caller, { fn, export: 'add', args: [1, 2] }).request
    const flipped = new Uint8Array(good.signature)
    flipped[0] ^= 1
    // a request it cannot check gets no signature of its
    await assert.rejects(executor.execute({ ...good, signature: flipped }), { code: 'INVALID_SIGNATURE' })
    const now = Date.now()
    const { signature: _, ...body } = good
    // its ticket is minted for its own hour: within 20 s after the hour the good request's is not
    const expired = {
      ...body,
      timestamp: now - 20_000,
      deadline: now - 10_000,
      ticket: ticketFor(keyId(caller), now - 20_000),
    }
    const late = await executor.execute({ ...expired, signature: signValue(caller, expired) })
    assert.equal(refusalCode(late, node.peer), 'DEADLINE_EXCEEDED')
    const unlisted = await executor.execute(createRequest(caller, { fn, export: 'unlisted' }).request)
    assert.equal(refusalCode(unlisted, node.peer), 'NO_SUCH_EXPORT')
    const strict = signCovenant(node.key, executingCovenant({ maxFuel: 200, refusedTags: ['nsfw'] }), 2)
    const refusing = executorFor(node, strict)
    const tooMuch = await refusing.execute(createRequest(caller, { fn, export: 'add', fuel: 2000 }).request)
    assert.equal(refusalCode(tooMuch, node.peer), 'COVENANT_REFUSED')
    assert.match('refusal' in tooMuch ? tooMuch.refusal.message : '', /at most 200 fuel/)
    const tagged = await refusing.execute(
      createRequest(caller, { fn: taggedFn, export: 'add', fuel: 200 }).request,
    )
    assert.match('refusal' in tagged ? tagged.refusal.message : '', /refuses tag "nsfw"/)
    const off = executorFor(node, signCovenant(node.key, { execute: { enabled: false } }, 3))
    assert.equal(refusalCode(await off.execute(good), node.peer), 'COVENANT_REFUSED')
    assert.equal(executor.stats().refused, 3)
  })

  it('refuses (NOT_SELECTED) a request its own view does not rank it high enough for', async () => {
    // 12 nodes, k = 1: only the first 2k + 1 = 3 eligible in the executor's view run it.
    const twelve = [...nodes, ...(await makeNodes(9))]
    const view = viewOf(twelve)
    const manifest = { tags: [] as string[], publisher: keyId(publisher) }
    const { request, id } = createRequest(caller, { fn, export: 'add', k: 1, q: 1, args: [1, 1] })
    const order = rankExecutors(view, request, manifest).ordered
    const at = (rank: number) => {
      const node = twelve.find((n) => n.peer === order[rank])!
      return createExecutor({
        key: node.key,
        sandbox,
        getBlock: blocks.get,
        covenant: () => node.covenant,
        view: () => view,
      })
    }
    assert.equal(receipted(await at(2).execute(request)).receipt.request, id)
    const far = at(3)
    const reply = await far.execute(request)
    assert.equal(refusalCode(reply, far.peer), 'NOT_SELECTED')
    // a replay to it (or to any node further down) gets no work done
    assert.equal(refusalCode(await far.execute(request), far.peer), 'NOT_SELECTED')
    assert.equal(far.stats().executed, 0)
  })

  it('answers a request seen again with the reply it gave, without running it twice', async () => {
    const executor = executorFor(nodes[0])
    const { request } = createRequest(caller, { fn, export: 'add', args: [6, 7] })
    // at once (the second shares the run) and later (from the replies kept)
    const [first, concurrent] = await Promise.all([executor.execute(request), executor.execute(request)])
    const again = await executor.execute(request)
    assert.deepEqual(receipted(concurrent), receipted(first))
    assert.deepEqual(receipted(again), receipted(first))
    assert.deepEqual(
      { executed: executor.stats().executed, replayed: executor.stats().replayed },
      { executed: 1, replayed: 2 },
    )
    // a standing refusal is kept too; a busy one is not (the request may still run once)
    const unlisted = createRequest(caller, { fn, export: 'unlisted' }).request
    await executor.execute(unlisted)
    await executor.execute(unlisted)
    assert.equal(executor.stats().replayed, 3)
  })

  it('holds each call against its caller’s credit: a refusal until paid does not stand, and a receipt narrows the hold', async () => {
    const node = nodes[2]
    const events: string[] = []
    let unpaid = true
    const executor = createExecutor({
      key: node.key,
      sandbox,
      getBlock: blocks.get,
      covenant: () => node.covenant,
      view: () => viewOf(nodes),
      admit(request, id) {
        if (unpaid) throw new CovenantError('PAYMENT_REQUIRED', `${request.caller} owes this node`)
        events.push(`admit ${id}`)
        return {
          signed: (receipt) => events.push(`signed ${receipt.request} ${receipt.fuel}`),
          release: () => events.push(`release ${id}`),
        }
      },
    })
    const { request, id } = createRequest(caller, { fn, export: 'add', args: [4, 4] })
    assert.equal(refusalCode(await executor.execute(request), node.peer), 'PAYMENT_REQUIRED')
    assert.equal(events.length, 0, 'nothing ran, nothing held')
    unpaid = false
    const paid = receipted(await executor.execute(request))
    assert.deepEqual(events, [`admit ${id}`, `signed ${id} ${paid.receipt.fuel}`], 'the refusal was not kept')
    const unlisted = createRequest(caller, { fn, export: 'unlisted' })
    await executor.execute(unlisted.request)
    assert.equal(events.length, 2, 'a request refused before it could run holds nothing')
    const crashing = createRequest(caller, { fn, export: 'add', args: [1, 1], timeoutMs: 1000 })
    const broken = createExecutor({
      key: node.key,
      sandbox: { run: () => Promise.reject(new CovenantError('SANDBOX_CRASHED', 'the worker died')) },
      getBlock: blocks.get,
      covenant: () => node.covenant,
      view: () => viewOf(nodes),
      admit: (_request, held) => ({
        signed: () => events.push(`signed ${held}`),
        release: () => events.push(`release ${held}`),
      }),
    })
    assert.equal(refusalCode(await broken.execute(crashing.request), node.peer), 'SANDBOX_CRASHED')
    assert.deepEqual(events.slice(2), [`release ${crashing.id}`], 'released when no receipt came')
  })

  it('runs a dry run for a quote whether or not it is selected, and keeps nothing for replays', async () => {
    const twelve = [...nodes, ...(await makeNodes(9))]
    const view = viewOf(twelve)
    const manifest = { tags: [] as string[], publisher: keyId(publisher) }
    const { request, id } = createRequest(caller, { fn, export: 'add', k: 1, q: 1, args: [1, 2] })
    const order = rankExecutors(view, request, manifest).ordered
    const node = twelve.find((n) => n.peer === order[5])!
    const far = createExecutor({
      key: node.key,
      sandbox,
      getBlock: blocks.get,
      covenant: () => node.covenant,
      view: () => view,
    })
    const dry = await far.dryRun(request)
    assert.equal(verifyReceipt(dry.receipt).request, id)
    assert.equal((outputValue(dry.output) as { sum: number }).sum, 3)
    assert.equal(
      refusalCode(await far.execute(request), far.peer),
      'NOT_SELECTED',
      'nothing kept from the dry run',
    )
    const off = createExecutor({
      key: node.key,
      sandbox,
      getBlock: blocks.get,
      covenant: () => signCovenant(node.key, { execute: { enabled: false } }, 2),
      view: () => view,
    })
    await assert.rejects(off.dryRun(request), { code: 'COVENANT_REFUSED' })
  })

  it('checks every fetched block against its CID', async () => {
    const node = nodes[1]
    const lying = new BlockMap()
    const { fn: lyingFn, manifest } = lying.publish(await generateKey(), CODE, ['add'])
    lying.put(manifest.code.toString(), new TextEncoder().encode('export function add() { return 666 }'))
    const base = { key: node.key, sandbox, covenant: () => node.covenant, view: () => viewOf(nodes) }
    const executor = createExecutor({ ...base, getBlock: lying.get })
    const forged = await executor.execute(createRequest(caller, { fn: lyingFn, export: 'add' }).request)
    assert.equal(refusalCode(forged, node.peer), 'HASH_MISMATCH')
    const empty = createExecutor({ ...base, getBlock: new BlockMap().get })
    const missing = await empty.execute(createRequest(caller, { fn, export: 'add' }).request)
    assert.equal(refusalCode(missing, node.peer), 'BLOCK_NOT_FOUND')
  })

  it('signs receipts for an infinite loop and a memory bomb, and keeps serving', async () => {
    const executor = executorFor(nodes[0])
    const spin = receipted(
      await executor.execute(
        createRequest(caller, { fn, export: 'spin', fuel: 200, timeoutMs: NEVER_MS }).request,
      ),
    )
    assert.equal(spin.output.error?.code, 'FUEL_EXHAUSTED')
    assert.equal(spin.output.json, 'null')
    assert.equal(spin.receipt.outputHash, outputHash(spin.output))
    const bomb = receipted(
      await executor.execute(
        createRequest(caller, { fn, export: 'bomb', memoryMiB: 16, timeoutMs: NEVER_MS }).request,
      ),
    )
    assert.equal(bomb.output.error?.code, 'MEMORY_LIMIT')
    const ok = receipted(
      await executor.execute(createRequest(caller, { fn, export: 'add', args: [4, 5] }).request),
    )
    assert.equal((outputValue(ok.output) as { sum: number }).sum, 9)
  })

  it("limits concurrency to its covenant's, queueing a bounded number and refusing the rest", async () => {
    const node = nodes[0]
    const single = signCovenant(node.key, executingCovenant({ concurrency: 1 }), 1)
    const base = {
      key: node.key,
      sandbox,
      getBlock: blocks.get,
      covenant: () => single,
      view: () => viewOf(nodes),
    }
    const spinning = () =>
      createRequest(caller, { fn, export: 'spin', fuel: 2000, timeoutMs: NEVER_MS }).request
    const noQueue = createExecutor({ ...base, maxQueue: 0 })
    const first = noQueue.execute(spinning())
    await until(() => noQueue.stats().running === 1)
    const busy = spinning()
    assert.equal(refusalCode(await noQueue.execute(busy), node.peer), 'PEER_BUSY')
    assert.equal(receipted(await first).output.error?.code, 'FUEL_EXHAUSTED')
    // busy is no standing refusal: asked again once free, it runs
    assert.equal(receipted(await noQueue.execute(busy)).output.error?.code, 'FUEL_EXHAUSTED')

    const queued = createExecutor({ ...base, maxQueue: 1 })
    const calls = [queued.execute(spinning())]
    await until(() => queued.stats().running === 1)
    calls.push(queued.execute(spinning()))
    await until(() => queued.stats().queued === 1)
    assert.equal(refusalCode(await queued.execute(spinning()), node.peer), 'PEER_BUSY')
    const replies = (await Promise.all(calls)).map(receipted)
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
    const base = {
      key: node.key,
      sandbox,
      getBlock: blocks.get,
      covenant: () => node.covenant,
      view: () => viewOf(nodes),
    }
    assert.throws(() => createExecutor({ ...base, fault: 'crash' }), { code: 'INVALID_INPUT' })
    let crashes = 0
    const executor = createExecutor({ ...base, fault: 'crash', onCrash: () => crashes++ })
    const request = createRequest(caller, { fn, export: 'add', args: [1, 2] }).request
    await assert.rejects(executor.execute(request), { code: 'PEER_UNREACHABLE' })
    assert.equal(crashes, 1)
    await assert.rejects(executor.execute(request), { code: 'PEER_UNREACHABLE' })
    assert.equal(crashes, 1)
  })

  describe('a function that reads and writes a datastore', () => {
    const NS = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    const OTHER = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
    const STORE_CODE = `
export async function bump(ns, ctx) {
  const n = (await ctx.store.get(ns, 'count')) ?? 0
  ctx.store.put(ns, 'count', n + 1)
  ctx.enqueue(ctx.request.id.length > 0 ? '${'bafyreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq'}' : '', 'later', [n])
  return n + 1
}`
    let storeFn: string
    before(() => {
      storeFn = blocks.publish(publisher, STORE_CODE, ['bump']).fn
    })

    /** An executor whose reads answer `count` = 41 at version 7, recording what it was asked. */
    const reading = (node: TestNode, asked: unknown[], fail = false) =>
      createExecutor({
        key: node.key,
        sandbox,
        getBlock: blocks.get,
        covenant: () => node.covenant,
        view: () => viewOf(nodes),
        read: async (ns, key, at) => {
          asked.push({ ns, key, at })
          if (fail) throw new Error('no holder answered')
          return { value: key === 'count' ? 41 : null, version: key === 'count' ? 7 : 0 }
        },
      })

    it('reads at the version the request fixes, and signs the writes, reads and jobs with the value', async () => {
      const { request, id } = createRequest(caller, {
        fn: storeFn,
        export: 'bump',
        args: [NS],
        reads: { [NS]: 9 },
      })
      const asked: unknown[] = []
      const [a, b] = [reading(nodes[0], asked), reading(nodes[1], asked)]
      const [ra, rb] = (await Promise.all([a.execute(request), b.execute(request)])).map(receipted)
      assert.deepEqual(asked, [
        { ns: NS, key: 'count', at: 9 },
        { ns: NS, key: 'count', at: 9 },
      ])
      assert.equal(outputValue(ra.output), 42)
      assert.deepEqual(ra.output.store, [
        { ns: NS, reads: [{ key: 'count', version: 7 }], writes: [{ key: 'count', value: 42 }] },
      ])
      assert.deepEqual(ra.output.jobs, [
        {
          fn: 'bafyreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq',
          export: 'later',
          args: [41],
          options: {},
        },
      ])
      assert.equal(ra.receipt.outputHash, outputHash(ra.output))
      assert.equal(rb.receipt.outputHash, ra.receipt.outputHash)
      assert.equal(ra.receipt.request, id)
      // the same value without its effects is another output: the receipt does not sign it
      assert.notEqual(outputHash({ ...ra.output, store: undefined, jobs: undefined }), ra.receipt.outputHash)
    })

    it('ends a read of a namespace the request does not fix with STORE_NOT_FIXED, signed, reading nothing', async () => {
      const asked: unknown[] = []
      for (const reads of [undefined, { [OTHER]: 3 }]) {
        const { request } = createRequest(caller, { fn: storeFn, export: 'bump', args: [NS], reads })
        const reply = receipted(await reading(nodes[0], asked).execute(request))
        assert.equal(reply.output.error?.code, 'STORE_NOT_FIXED')
        assert.equal(reply.output.store, undefined, 'a failed call has no effects')
        assert.equal(reply.receipt.outputHash, outputHash(reply.output))
      }
      assert.deepEqual(asked, [])
    })

    it('signs nothing when this machine cannot read: a refusal that does not stand, and it runs again when asked again', async () => {
      const { request } = createRequest(caller, {
        fn: storeFn,
        export: 'bump',
        args: [NS],
        reads: { [NS]: 1 },
      })
      const asked: unknown[] = []
      const failing = reading(nodes[2], asked, true)
      assert.equal(refusalCode(await failing.execute(request), nodes[2].peer), 'INTERNAL')
      assert.equal(refusalCode(await failing.execute(request), nodes[2].peer), 'INTERNAL')
      assert.equal(asked.length, 2, 'not answered from the replies kept')
      // an executor that cannot read at all does the same
      const blind = createExecutor({
        key: nodes[2].key,
        sandbox,
        getBlock: blocks.get,
        covenant: () => nodes[2].covenant,
        view: () => viewOf(nodes),
      })
      assert.equal(refusalCode(await blind.execute(request), nodes[2].peer), 'INTERNAL')
    })

    it('keeps the fixed versions in the signed request: 1 to 16 namespaces, each a canonical id', () => {
      assert.throws(() => createRequest(caller, { fn: storeFn, export: 'bump', reads: { 'not-a-cid': 1 } }), {
        code: 'INVALID_REQUEST',
      })
      assert.throws(() => createRequest(caller, { fn: storeFn, export: 'bump', reads: { [NS]: -1 } }), {
        code: 'INVALID_REQUEST',
      })
      const { request } = createRequest(caller, { fn: storeFn, export: 'bump', reads: {} })
      assert.equal('reads' in request, false, 'no namespace fixed: no field')
      const fixed = createRequest(caller, { fn: storeFn, export: 'bump', reads: { [NS]: 2 } }).request
      const tampered = { ...fixed, reads: { [NS]: 3 } }
      assert.throws(() => checkRequest(tampered), { code: 'INVALID_SIGNATURE' })
    })
  })
})
