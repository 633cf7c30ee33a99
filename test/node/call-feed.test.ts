/**
 * The calls feed (src/node/call-feed.ts): what it keeps of a call — never arguments, values, logs
 * or messages — how long it keeps it, and how it treats readers that are too many or too slow.
 */

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { CallEventSchema } from '../../src/api/index.ts'
import { cidForBytes } from '../../src/content/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  createRequest,
  type ExecResult,
  type InvokeResult,
  outputHash,
  outputValue,
  requestToJSON,
  signReceipt,
  signRefusal,
} from '../../src/exec/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { createCallFeed } from '../../src/node/call-feed.ts'
import { SANDBOX_BUILD } from '../../src/sandbox/index.ts'

const SECRET = 'top-secret-argument'
const fn = cidForBytes(new Uint8Array([1]), 'dag-cbor').toString()

describe('call feed', () => {
  let caller: PrivateKey
  let executor: PrivateKey
  let reply: ExecResult
  let signed: ReturnType<typeof createRequest>

  before(async () => {
    caller = await generateKey()
    executor = await generateKey()
    signed = createRequest(caller, { fn, export: 'greet', args: [SECRET, { deep: SECRET }] })
    const output = { json: JSON.stringify(`Hello, ${SECRET}`), logs: [`log ${SECRET}`], error: null }
    const receipt = signReceipt(executor, {
      request: signed.id,
      outputHash: outputHash(output),
      fuel: 7,
      build: SANDBOX_BUILD,
      covenantVersion: 1,
    })
    reply = { receipt, output }
  })

  it('keeps who, what, how much and who signed of an executor run, never the arguments or output', () => {
    const feed = createCallFeed({ now: () => 1000 })
    feed.executed({ request: signed.request, from: 'gateway-peer', reply, ms: 12.4 })
    const [event] = feed.recent(1)
    assert.deepEqual(CallEventSchema.parse(event), event)
    assert.equal(event.role, 'executor')
    assert.equal(event.request, signed.id)
    assert.equal(event.fn, fn)
    assert.equal(event.export, 'greet')
    assert.equal(event.caller, keyId(caller))
    assert.equal(event.fuel, 7)
    assert.equal(event.ms, 12)
    assert.equal(event.outcome, 'ok')
    assert.equal(event.from, 'gateway-peer')
    assert.equal(event.receipts[0].executor, keyId(executor))
    assert.ok(!JSON.stringify(event).includes(SECRET))
  })

  it('shows an executor’s signed refusal by its code, with no receipt and not its message', () => {
    const feed = createCallFeed()
    const refusal = signRefusal(executor, signed.id, new CovenantError('NOT_SELECTED', `not for ${SECRET}`))
    feed.executed({ request: signed.request, from: 'gateway-peer', reply: { refusal }, ms: 2 })
    const [event] = feed.recent(1)
    assert.deepEqual(CallEventSchema.parse(event), event)
    assert.equal(event.outcome, 'NOT_SELECTED')
    assert.equal(event.request, signed.id)
    assert.equal(event.fuel, null)
    assert.equal(event.outputHash, null)
    assert.deepEqual(event.receipts, [])
    assert.ok(!JSON.stringify(event).includes(SECRET))
  })

  it('keeps a gateway call with its certificate’s receipts, conflicts and attempts, or its error code', async () => {
    const feed = createCallFeed()
    const certificate = {
      request: signed.request,
      id: signed.id,
      outputHash: reply.receipt.outputHash,
      receipts: [reply.receipt],
      skipped: [],
    }
    const liar = await generateKey()
    const lie = signReceipt(liar, {
      request: signed.id,
      outputHash: outputHash({ json: JSON.stringify(SECRET), logs: [], error: null }),
      fuel: 7,
      build: SANDBOX_BUILD,
      covenantVersion: 1,
    })
    const result: InvokeResult = {
      value: outputValue(reply.output),
      output: reply.output,
      certificate,
      conflicts: [{ receipt: lie, certificate }],
      tried: [{ peer: keyId(executor), outcome: 'agreed', outputHash: reply.receipt.outputHash, ms: 5 }],
    }
    feed.gatewayed({ request: requestToJSON(signed.request), result, ms: 30 })
    const failure = new CovenantError('NO_EXECUTORS', `none for ${SECRET}`, {
      details: {
        tried: [{ peer: 'p', outcome: 'failed', ms: 3, error: { code: 'PEER_TIMEOUT', message: SECRET } }],
      },
    })
    feed.gatewayed({ request: requestToJSON(signed.request), error: failure, ms: 40 })
    // a request that is not even one is shown as far as it can be
    feed.gatewayed({ request: { fn: 5, export: ['x'], args: [SECRET] }, error: new Error(SECRET), ms: 1 })
    const [ok, failed, junk] = feed.recent(3)
    assert.equal(ok.outcome, 'ok')
    assert.equal(ok.request, signed.id)
    assert.equal(ok.k, 3)
    assert.equal(ok.receipts.length, 1)
    assert.deepEqual(ok.conflicts, [{ executor: keyId(liar), outputHash: lie.outputHash }])
    assert.deepEqual(ok.tried, [{ peer: keyId(executor), outcome: 'agreed', ms: 5, error: null }])
    assert.equal(failed.outcome, 'NO_EXECUTORS')
    assert.equal(failed.request, null)
    assert.deepEqual(failed.tried, [{ peer: 'p', outcome: 'failed', ms: 3, error: 'PEER_TIMEOUT' }])
    assert.equal(junk.fn, null)
    assert.equal(junk.outcome, 'INTERNAL')
    assert.deepEqual([ok.seq, failed.seq, junk.seq], [0, 1, 2])
    assert.ok(!JSON.stringify(feed.recent(10)).includes(SECRET))
  })

  it('keeps the last `keep` events', () => {
    const feed = createCallFeed({ keep: 3 })
    for (let i = 0; i < 10; i++) feed.executed({ request: {}, from: `p${i}`, error: new Error('x'), ms: 1 })
    assert.deepEqual(
      feed.recent(100).map((e) => e.from),
      ['p7', 'p8', 'p9'],
    )
    assert.deepEqual(feed.recent(0), [])
  })

  it('sends a reader the backlog, then each new event, until it goes away', async () => {
    const feed = createCallFeed({ maxSubscribers: 1 })
    feed.executed({ request: {}, from: 'before', error: new Error('x'), ms: 1 })
    const gone = new AbortController()
    const seen: string[] = []
    const reading = (async () => {
      for await (const e of feed.subscribe({ backlog: 5, signal: gone.signal })) {
        seen.push(e.from ?? '')
        if (seen.length === 2) gone.abort()
      }
    })()
    feed.executed({ request: {}, from: 'after', error: new Error('x'), ms: 1 })
    await reading
    assert.deepEqual(seen, ['before', 'after'])
    // a reader that left is no longer counted: the one place is free again
    assert.doesNotThrow(() => feed.subscribe({ backlog: 0, signal: new AbortController().signal }))
  })

  it('refuses readers beyond its limit, and drops one that falls too far behind', async () => {
    const feed = createCallFeed({ maxSubscribers: 2, maxQueued: 3 })
    const gone = new AbortController()
    const slow = feed.subscribe({ backlog: 0, signal: gone.signal })
    feed.subscribe({ backlog: 0, signal: gone.signal })
    assert.throws(
      () => feed.subscribe({ backlog: 0, signal: gone.signal }),
      (e: CovenantError) => e.code === 'PEER_BUSY',
    )
    for (let i = 0; i < 10; i++) feed.executed({ request: {}, from: `p${i}`, error: new Error('x'), ms: 1 })
    const got: string[] = []
    for await (const e of slow) got.push(e.from ?? '')
    // it got what was queued before it fell behind, then its stream ended
    assert.deepEqual(got, ['p0', 'p1', 'p2'])
    gone.abort()
    assert.doesNotThrow(() => feed.subscribe({ backlog: 0, signal: new AbortController().signal }))
  })
})
