/**
 * Late receipts as evidence (src/exec/late-receipts.ts): replies of executors that `invoke`
 * abandoned, handed over as promises the test settles itself, so whether a reply comes before or
 * after anything else is decided here, not by a clock.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CovenantError } from '../../src/errors/index.ts'
import {
  type Attempt,
  type Certificate,
  type Conflict,
  createRequest,
  type ExecReply,
  LATE_REPLY_GRACE_MS,
  outputHash,
  replyWindowMs,
  signReceipt,
  watchLateReceipts,
} from '../../src/exec/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { SANDBOX_BUILD } from '../../src/sandbox/index.ts'

/** a function's CID: never fetched here */
const FN = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const HONEST = { json: '{"sum":5}', logs: [], error: null }
const LIE = { json: '{"forged":true}', logs: [], error: null }

/** A reply whose promise the test settles when it wants. */
function gated(): {
  promise: Promise<ExecReply>
  resolve: (r: ExecReply) => void
  reject: (e: unknown) => void
} {
  let resolve!: (r: ExecReply) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<ExecReply>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {})
  return { promise, resolve, reject }
}

/** Lets every settled promise's handlers run. */
const settle = () => new Promise((r) => setImmediate(r))

async function setup() {
  const caller = await generateKey()
  const [a, b, liar] = await Promise.all([generateKey(), generateKey(), generateKey()])
  const { request, id } = createRequest(caller, { fn: FN, export: 'add', args: [2, 3] })
  const reply = (key: PrivateKey, output: typeof HONEST, build = SANDBOX_BUILD): ExecReply =>
    ({
      receipt: signReceipt(key, {
        request: id,
        outputHash: outputHash(output),
        fuel: 10,
        covenantVersion: 1,
        build,
      }),
      output,
    }) as ExecReply
  const certificate: Certificate = {
    request,
    id,
    outputHash: outputHash(HONEST),
    receipts: [reply(a, HONEST), reply(b, HONEST)].map((r) => ('receipt' in r ? r.receipt : assert.fail())),
    skipped: [],
  }
  const tried: Attempt[] = [
    { peer: keyId(a), outcome: 'agreed', ms: 1 },
    { peer: keyId(b), outcome: 'agreed', ms: 1 },
    { peer: keyId(liar), outcome: 'abandoned', ms: 1 },
  ]
  return { request, id, liar, reply, certificate, tried }
}

// One request for every case: minting its ticket is the slow part.
let once: ReturnType<typeof setup> | undefined
const shared = () => (once ??= setup())

describe('late receipts', () => {
  it('turns a receipt for another output that comes after the quorum into a conflict', async () => {
    const { liar, reply, certificate, tried } = await shared()
    const late = gated()
    const found: Conflict[] = []
    watchLateReceipts(new Map([[keyId(liar), late.promise]]), tried, certificate, (c) => found.push(c))
    await settle()
    assert.equal(found.length, 0)
    late.resolve(reply(liar, LIE))
    await settle()
    assert.equal(found.length, 1)
    assert.equal(found[0].receipt.executor, keyId(liar))
    assert.equal(found[0].certificate, certificate)
  })

  it('asks again once when the stream broke before the deadline, and catches the lie then', async () => {
    const { liar, reply, certificate, tried } = await shared()
    const late = gated()
    const again = gated()
    const asked: string[] = []
    const found: Conflict[] = []
    watchLateReceipts(new Map([[keyId(liar), late.promise]]), tried, certificate, (c) => found.push(c), {
      askAgain: (peer) => {
        asked.push(peer)
        return again.promise
      },
      now: () => certificate.request.deadline - 1,
    })
    late.reject(new CovenantError('PEER_UNREACHABLE', 'the session closed'))
    await settle()
    assert.deepEqual(asked, [keyId(liar)])
    again.resolve(reply(liar, LIE))
    await settle()
    assert.equal(found.length, 1)
  })

  it('does not ask again after a timeout, past the deadline, or a second time', async () => {
    const { liar, certificate, tried } = await shared()
    const found: Conflict[] = []
    const cases = [
      { err: new CovenantError('PEER_TIMEOUT', 'no answer'), now: certificate.request.deadline - 1 },
      { err: new CovenantError('PEER_UNREACHABLE', 'closed'), now: certificate.request.deadline },
    ]
    for (const { err, now } of cases) {
      const late = gated()
      const asked: string[] = []
      watchLateReceipts(new Map([[keyId(liar), late.promise]]), tried, certificate, (c) => found.push(c), {
        askAgain: (peer) => {
          asked.push(peer)
          return Promise.reject(err)
        },
        now: () => now,
      })
      late.reject(err)
      await settle()
      assert.deepEqual(asked, [], `${err.code}, ${certificate.request.deadline - now} ms before the deadline`)
    }
    // the repeat breaks too: nothing more is sent
    const late = gated()
    const asked: string[] = []
    watchLateReceipts(new Map([[keyId(liar), late.promise]]), tried, certificate, (c) => found.push(c), {
      askAgain: (peer) => {
        asked.push(peer)
        return Promise.reject(new CovenantError('PEER_UNREACHABLE', 'closed again'))
      },
      now: () => certificate.request.deadline - 1,
    })
    late.reject(new CovenantError('PEER_UNREACHABLE', 'closed'))
    await settle()
    await settle()
    assert.deepEqual(asked, [keyId(liar)])
    assert.equal(found.length, 0)
  })

  it('ignores what proves nothing: an agreeing receipt, another build, another signer, a refusal, an executor that agreed', async () => {
    const { id, liar, reply, certificate, tried } = await shared()
    const stranger = await generateKey()
    const found: Conflict[] = []
    const replies: ExecReply[] = [
      reply(liar, HONEST),
      reply(liar, LIE, 'be'.repeat(32)),
      reply(stranger, LIE),
      { refusal: { executor: keyId(liar), request: id } } as unknown as ExecReply,
    ]
    for (const r of replies)
      watchLateReceipts(new Map([[keyId(liar), Promise.resolve(r)]]), tried, certificate, (c) =>
        found.push(c),
      )
    // an executor whose receipt is in the certificate is not watched, whatever it sends later
    const signer = certificate.receipts[0].executor
    watchLateReceipts(
      new Map([[signer, Promise.resolve(reply(liar, LIE))]]),
      tried.filter((a) => a.peer === signer),
      certificate,
      (c) => found.push(c),
    )
    // a forged signature: the receipt's bytes changed after signing
    const forged = reply(liar, LIE)
    if ('receipt' in forged) forged.receipt = { ...forged.receipt, fuel: forged.receipt.fuel + 1 }
    watchLateReceipts(new Map([[keyId(liar), Promise.resolve(forged)]]), tried, certificate, (c) =>
      found.push(c),
    )
    await settle()
    assert.equal(found.length, 0)
    // and the same watch does find the real lie
    watchLateReceipts(new Map([[keyId(liar), Promise.resolve(reply(liar, LIE))]]), tried, certificate, (c) =>
      found.push(c),
    )
    await settle()
    assert.equal(found.length, 1)
  })

  it('keeps a request open until the deadline and its grace, never less than invoke waits', () => {
    const deadline = 100_000
    assert.equal(replyWindowMs({ deadline }, 10_000, 40_000), deadline + LATE_REPLY_GRACE_MS - 40_000)
    assert.equal(replyWindowMs({ deadline }, 10_000, deadline), 10_000)
  })
})
