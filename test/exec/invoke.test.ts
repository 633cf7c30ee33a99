import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Manifest } from '../../src/content/index.ts'
import { signCovenant } from '../../src/covenant/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  certificateFromJSON,
  certificateToJSON,
  createExecutor,
  createRequest,
  ExecReplySchema,
  type ExecRequestInit,
  ExecRequestMessageSchema,
  type Executor,
  type ExecutorInit,
  type FaultKind,
  FORGED_VALUE,
  invoke,
  type OutputLike,
  outputHash,
  rankExecutors,
  type SendExec,
  skipEvidence,
  type TrustInput,
  type View,
  verifyCertificate,
  verifyConflict,
} from '../../src/exec/index.ts'
import { generateKey, type PrivateKey } from '../../src/keys/index.ts'
import { replyEnvelopeSchema } from '../../src/net/index.ts'
import { createSandbox, SANDBOX_BUILD, type Sandbox } from '../../src/sandbox/index.ts'
import {
  BlockMap,
  executingCovenant,
  makeNodes,
  NEVER_MS,
  type TestNode,
  viewOf,
} from '../fixtures/exec-cluster.ts'

const CODE = `
export function add(a, b, ctx) { ctx.log('adding'); return { sum: a + b, r: Math.random() } }
export function spin() { for (;;) {} }
export function bomb() { const a = []; for (let i = 0; ; i++) a.push('x'.repeat(4096) + i) }
`

const OTHER_BUILD = 'be'.repeat(32)

/**
 * A sandbox as an executor on another build runs it: the real one, whose results differ in one
 * visible way (as a fixed polyfill or a newer QuickJS may make them differ), signed as OTHER_BUILD.
 */
function onAnotherBuild(sandbox: Sandbox): Pick<Sandbox, 'run'> {
  return {
    async run(c) {
      const r = await sandbox.run(c)
      return r.ok ? { ...r, value: { ...(r.value as object), build: 'other' } } : r
    },
  }
}

interface Setup {
  request: ReturnType<typeof createRequest>['request']
  id: string
  /** the view of the nodes the executors run on, as the gateway and each executor see it */
  view: View
  /** eligible peers, closest first: rank i is ordered[i] */
  ordered: string[]
  executors: Map<string, Executor>
  crashed: string[]
  /** the exec protocol without the libp2p hop: messages go through DAG-CBOR and the wire schemas */
  send: SendExec
  /** settles once the replies of the `early` ranks are computed */
  ready: Promise<unknown>
}

describe('invoke (quorum collector) against in-process executors', () => {
  let sandbox: Sandbox
  let blocks: BlockMap
  let caller: PrivateKey
  let nodes: TestNode[]
  let manifest: Manifest
  let fn: string
  const everyExecutor: Executor[] = []

  before(async () => {
    sandbox = createSandbox({ workers: 2 })
    blocks = new BlockMap()
    caller = await generateKey()
    nodes = await makeNodes(6)
    ;({ manifest, fn } = blocks.publish(await generateKey(), CODE, ['add', 'spin', 'bomb']))
  })
  after(async () => {
    for (const e of everyExecutor) e.stop()
    await sandbox.stop()
  })

  /**
   * Creates the request, finds its executor order, and starts one executor per node with the
   * faults given by rank. `gate` holds every other reply until the gated ranks' replies are out.
   * `early` ranks compute their replies now (await `ready`), so they answer the moment they are
   * asked, before any timer can fire: no clock decides whether they are in time.
   */
  function setup(
    init: Omit<ExecRequestInit, 'fn'>,
    faults: Record<number, FaultKind> = {},
    options: {
      among?: TestNode[]
      gate?: number[]
      early?: number[]
      otherBuild?: number[]
      /** ranks whose executors run this covenant config instead of the one the view shows */
      covenants?: Record<number, Parameters<typeof executingCovenant>[0]>
      /** ranks whose executors hold calls against their callers' credit this way */
      admit?: Record<number, ExecutorInit['admit']>
      /** ranks whose executors queue at most this many calls beyond their concurrency */
      maxQueue?: Record<number, number>
      /** ranks whose executors run each call only once `held` settles, after `entered()` */
      held?: Record<number, { entered(): void; held: Promise<unknown> }>
    } = {},
  ): Setup {
    const among = options.among ?? nodes
    const view = viewOf(among)
    const { request, id } = createRequest(caller, { fn, ...init })
    const { ordered } = rankExecutors(view, request, manifest)
    const crashed: string[] = []
    const executors = new Map<string, Executor>()
    for (const node of among) {
      const rank = ordered.indexOf(node.peer)
      const other = options.otherBuild?.includes(rank) === true
      const own = options.covenants?.[rank]
      const covenant = own === undefined ? node.covenant : signCovenant(node.key, executingCovenant(own), 2)
      const hold = options.held?.[rank]
      const held: Pick<Sandbox, 'run'> | undefined =
        hold === undefined
          ? undefined
          : {
              async run(c) {
                hold.entered()
                await hold.held
                return sandbox.run(c)
              },
            }
      const executor = createExecutor({
        key: node.key,
        sandbox: held ?? (other ? onAnotherBuild(sandbox) : sandbox),
        maxQueue: options.maxQueue?.[rank],
        build: other ? OTHER_BUILD : undefined,
        getBlock: blocks.get,
        covenant: () => covenant,
        view: () => view,
        fault: faults[rank],
        onCrash: () => crashed.push(node.peer),
        admit: options.admit?.[rank],
      })
      executors.set(node.peer, executor)
      everyExecutor.push(executor)
    }
    // One promise per gated rank, settled once that executor's reply is out; the gated ranks are
    // always among the k asked first, so nothing waits forever.
    const gates = new Map((options.gate ?? []).map((r) => [ordered[r], Promise.withResolvers<void>()]))
    // Through the protocol's envelope, as net carries it: { result } or { error }.
    const exchange = async (peer: string, req: typeof request, signal?: AbortSignal) => {
      const message = ExecRequestMessageSchema.parse(dagCbor.decode(dagCbor.encode({ request: req })))
      let envelope: unknown
      try {
        envelope = { result: await executors.get(peer)!.execute(message.request, { signal }) }
      } catch (err) {
        envelope = { error: CovenantError.from(err).toJSON() }
      }
      return replyEnvelopeSchema.parse(dagCbor.decode(dagCbor.encode(envelope)))
    }
    const early = new Map((options.early ?? []).map((r) => [ordered[r], exchange(ordered[r], request)]))
    const send: SendExec = async (peer, req, { signal }) => {
      const work = early.get(peer) ?? exchange(peer, req, signal)
      const gate = gates.get(peer)
      if (gate !== undefined) work.finally(() => gate.resolve()).catch(() => {})
      else await Promise.all([...gates.values()].map((g) => g.promise))
      const reply = await work
      if ('error' in reply) throw CovenantError.fromJSON(reply.error)
      return ExecReplySchema.parse(reply.result)
    }
    return { request, id, view, ordered, executors, crashed, send, ready: Promise.all(early.values()) }
  }

  const call = (s: Setup, extra: { perExecutorTimeoutMs?: number; trust?: TrustInput } = {}) =>
    invoke({
      request: s.request,
      id: s.id,
      view: s.view,
      manifest,
      send: s.send,
      perExecutorTimeoutMs: extra.perExecutorTimeoutMs,
      trust: extra.trust,
    })

  it('returns the value once q executors agree, with a certificate anyone can check', async () => {
    const s = setup({ export: 'add', args: [20, 22] })
    const r = await call(s)
    assert.equal((r.value as { sum: number }).sum, 42)
    assert.deepEqual(r.output.logs, ['adding'])
    assert.deepEqual(r.conflicts, [])
    assert.equal(r.certificate.receipts.length, 2)
    const executors = r.certificate.receipts.map((x) => x.executor)
    for (const e of executors) assert.ok(s.ordered.slice(0, 3).includes(e))
    const checked = verifyCertificate(r.certificate, { output: r.output, view: s.view, manifest })
    assert.deepEqual(checked.value, r.value)
    // whichever two answered first: the third, if ranked ahead of them, is skipped without proof
    assert.ok(r.certificate.skipped.length <= 1)
    assert.equal(r.tried.filter((t) => t.outcome === 'agreed').length, 2)
    // Only the k chosen were asked.
    assert.deepEqual(new Set(r.tried.map((t) => t.peer)), new Set(s.ordered.slice(0, 3)))
  })

  it('reports a wrong result as conflict evidence naming its executor, and still returns the right value', async () => {
    const s = setup({ export: 'add', args: [1, 2] }, { 0: 'wrong-result' }, { gate: [0] })
    const r = await call(s)
    assert.equal((r.value as { sum: number }).sum, 3)
    assert.equal(r.conflicts.length, 1)
    const [c] = r.conflicts
    assert.equal(c.receipt.executor, s.ordered[0])
    assert.notEqual(c.receipt.outputHash, r.certificate.outputHash)
    assert.deepEqual(c.certificate, r.certificate)
    assert.equal(verifyConflict(c, { view: s.view, manifest }).ok, true)
    // the liar ranked first is in the certificate's skipped list, its receipt the proof
    assert.deepEqual(r.certificate.skipped, [{ peer: s.ordered[0], receipt: c.receipt }])
    assert.equal(r.tried.find((t) => t.peer === s.ordered[0])?.outcome, 'disagreed')
  })

  it('does not count an executor on another sandbox build as a liar', async () => {
    const s = setup({ export: 'add', args: [1, 2] }, {}, { gate: [0], otherBuild: [0] })
    const r = await call(s)
    assert.equal((r.value as { sum: number }).sum, 3)
    assert.ok(r.certificate.receipts.every((x) => x.build === SANDBOX_BUILD))
    assert.deepEqual(r.conflicts, [])
    const attempt = r.tried.find((t) => t.peer === s.ordered[0])
    assert.equal(attempt?.outcome, 'disagreed-by-build')
    assert.equal(attempt?.build, OTHER_BUILD)
    assert.notEqual(attempt?.outputHash, r.certificate.outputHash)
  })

  it('lets no colluding quorum frame an honest executor that runs another build', async () => {
    const three = nodes.slice(0, 3)
    const s = setup(
      { export: 'add', args: [1, 1], k: 3, q: 2 },
      { 0: 'wrong-result', 1: 'wrong-result' },
      { among: three, gate: [2], otherBuild: [2] },
    )
    const r = await call(s)
    // the colluders still win the vote (the Sybil limit), but get no evidence against the other build
    assert.deepEqual(r.value, FORGED_VALUE)
    assert.deepEqual(r.conflicts, [])
    assert.equal(r.tried.find((t) => t.peer === s.ordered[2])?.outcome, 'disagreed-by-build')
  })

  for (const fault of ['bad-signature', 'crash', 'slow', 'silent'] as const) {
    it(`still returns the right value with k=3, q=2 when the closest executor is ${fault}`, async () => {
      const s = setup({ export: 'add', args: [2, 2] }, { 0: fault })
      const r = await call(s, { perExecutorTimeoutMs: 3000 })
      assert.equal((r.value as { sum: number }).sum, 4)
      assert.ok(!r.certificate.receipts.some((x) => x.executor === s.ordered[0]))
      // the first ranked is skipped without proof: the one unproven skip a verifier tolerates
      assert.deepEqual(r.certificate.skipped, [{ peer: s.ordered[0] }])
      assert.equal(verifyCertificate(r.certificate, { output: r.output, view: s.view, manifest }).ok, true)
      if (fault === 'crash') assert.deepEqual(s.crashed, [s.ordered[0]])
    })
  }

  it('replaces executors that time out or crash with the next closest eligible ones', async () => {
    // q = k = 3: each of the three closest must answer, so all three faulty ones must be replaced.
    // The honest replacements answer as soon as they are asked, so only the faulty ones can meet
    // the 500 ms timer. Three skips without proof: a verifier must tolerate three to accept it.
    const s = setup(
      { export: 'add', args: [5, 5], k: 3, q: 3 },
      { 0: 'slow', 1: 'crash', 2: 'silent' },
      { early: [3, 4, 5] },
    )
    await s.ready
    const r = await call(s, { perExecutorTimeoutMs: 500, trust: { maxUnprovenSkips: 3 } })
    assert.throws(() => verifyCertificate(r.certificate, { view: s.view, manifest }), {
      code: 'INVALID_CERTIFICATE',
      message: /3 eligible executors ranked ahead/,
    })
    assert.equal(verifyCertificate(r.certificate, { view: s.view, manifest, maxUnprovenSkips: 3 }).ok, true)
    assert.equal((r.value as { sum: number }).sum, 10)
    assert.deepEqual(new Set(r.certificate.receipts.map((x) => x.executor)), new Set(s.ordered.slice(3, 6)))
    const byPeer = new Map(r.tried.map((t) => [t.peer, t]))
    // given up by the per-executor timer, not by the request's deadline (30 s away)
    for (const peer of [s.ordered[0], s.ordered[2]]) {
      assert.equal(byPeer.get(peer)?.error?.code, 'PEER_TIMEOUT')
      assert.match(byPeer.get(peer)?.error?.message ?? '', /did not answer within 500 ms/)
    }
    assert.equal(byPeer.get(s.ordered[1])?.error?.code, 'PEER_UNREACHABLE')
  })

  it('refuses two colluding wrong executors of three with q=3 (NO_QUORUM, with the receipts it got)', async () => {
    const three = nodes.slice(0, 3)
    const s = setup(
      { export: 'add', args: [1, 1], k: 3, q: 3 },
      { 0: 'wrong-result', 1: 'wrong-result' },
      { among: three },
    )
    await assert.rejects(call(s), (err: CovenantError) => {
      assert.equal(err.code, 'NO_QUORUM')
      const d = err.details as {
        receipts: Array<{ executor: string; signature: string }>
        outputHashes: Record<string, number>
      }
      assert.equal(d.receipts.length, 3)
      assert.deepEqual(Object.values(d.outputHashes).sort(), [1, 2])
      assert.equal(typeof d.receipts[0].signature, 'string')
      return true
    })
  })

  it('with q=2, two agreeing colluders win: the Sybil limit, stated in the docs', async () => {
    const three = nodes.slice(0, 3)
    const s = setup(
      { export: 'add', args: [1, 1], k: 3, q: 2 },
      { 0: 'wrong-result', 1: 'wrong-result' },
      { among: three, gate: [2] },
    )
    const r = await call(s)
    assert.deepEqual(r.value, FORGED_VALUE)
    // The honest executor, outvoted, is the one the "conflict evidence" names: evidence shows
    // disagreement, not who is right.
    assert.deepEqual(
      r.conflicts.map((c) => c.receipt.executor),
      [s.ordered[2]],
    )
    assert.equal(r.tried.find((t) => t.peer === s.ordered[2])?.outcome, 'disagreed')
  })

  it('certifies an infinite loop and a memory bomb by their error codes, and executors keep serving', async () => {
    const loopSetup = setup({ export: 'spin', fuel: 200, timeoutMs: NEVER_MS })
    const loop = await call(loopSetup)
    assert.equal(loop.output.error?.code, 'FUEL_EXHAUSTED')
    assert.equal(loop.value, null)
    assert.equal(
      verifyCertificate(loop.certificate, { output: loop.output, view: loopSetup.view, manifest }).ok,
      true,
    )
    const bombSetup = setup({ export: 'bomb', memoryMiB: 16, timeoutMs: NEVER_MS })
    const bomb = await call(bombSetup)
    assert.equal(bomb.output.error?.code, 'MEMORY_LIMIT')
    assert.equal(
      verifyCertificate(bomb.certificate, { output: bomb.output, view: bombSetup.view, manifest }).ok,
      true,
    )
    const after = await call(setup({ export: 'add', args: [3, 4] }))
    assert.equal((after.value as { sum: number }).sum, 7)
  })

  it('throws NO_EXECUTORS with the reasons when fewer than k nodes may execute', async () => {
    const refusing = nodes
      .slice(0, 5)
      .map((n) => ({ ...n, covenant: signCovenant(n.key, executingCovenant({ maxFuel: 200 }), 2) }))
    const s = setup({ export: 'add', args: [1, 2], fuel: 2000 }, {}, { among: [...refusing, nodes[5]] })
    await assert.rejects(call(s), (err: CovenantError) => {
      assert.equal(err.code, 'NO_EXECUTORS')
      const d = err.details as { eligible: string[]; excluded: Array<{ reason: string }> }
      assert.deepEqual(d.eligible, [nodes[5].peer])
      assert.equal(d.excluded.length, 5)
      return true
    })
  })

  it('skips executors ranked ahead that refuse with a standing reason, with their signed refusals as proof', async () => {
    // The view still shows ranks 0 and 1 executing anything; their own covenants now refuse the fuel.
    // Rank 4 answers only after ranks 0 to 3: on a loaded machine it could otherwise agree before
    // rank 2 or 3 and leave that one an unproven skip.
    const s = setup(
      { export: 'add', args: [2, 5] },
      {},
      { covenants: { 0: { maxFuel: 200 }, 1: { maxFuel: 200 } }, gate: [0, 1, 2, 3] },
    )
    const r = await call(s)
    assert.equal((r.value as { sum: number }).sum, 7)
    assert.deepEqual(
      r.certificate.skipped.map((x) => [x.peer, x.refusal?.code]),
      [
        [s.ordered[0], 'COVENANT_REFUSED'],
        [s.ordered[1], 'COVENANT_REFUSED'],
      ],
    )
    // proven skips: accepted even by a verifier that tolerates no unproven one
    assert.equal(verifyCertificate(r.certificate, { view: s.view, manifest, maxUnprovenSkips: 0 }).ok, true)
  })

  it('does not certify over more unproven skips than the caller accepts: it waits for them, then NO_QUORUM', async () => {
    // Ranks 0 and 1 never answer; 2 and 3 agree at once. Certifying ranks 2 and 3 would skip two
    // executors with no proof, so the gateway waits for them (their timers) and then gives up.
    const s = setup({ export: 'add', args: [1, 1] }, { 0: 'silent', 1: 'silent' }, { early: [2, 3] })
    await s.ready
    await assert.rejects(call(s, { perExecutorTimeoutMs: 500 }), (err: CovenantError) => {
      assert.equal(err.code, 'NO_QUORUM')
      assert.match(err.message, /more than 1 ranked ahead of them gave no proof/)
      return true
    })
    // a caller that tolerates two gets its answer
    const r = await call(s, { perExecutorTimeoutMs: 500, trust: { maxUnprovenSkips: 2 } })
    assert.equal((r.value as { sum: number }).sum, 2)
  })

  it('asks a busy executor ranked ahead again rather than skip it without proof: two busy do not end the call', async () => {
    // Ranks 0 and 1 queue nothing beyond their concurrency (4), and each runs 4 other calls held
    // until both have refused this one as busy (signed PEER_BUSY, no standing refusal). Ranks 2
    // and 3 agree at once, but certifying them would skip two executors with no proof: the caller
    // asks the busy ones again within their reply window, and they answer once free.
    const free = Promise.withResolvers<void>()
    const entered = [0, 0]
    const full = [Promise.withResolvers<void>(), Promise.withResolvers<void>()]
    const holding = (rank: number) => ({
      entered: () => {
        if (++entered[rank] === 4) full[rank].resolve()
      },
      held: free.promise,
    })
    const s = setup(
      { export: 'add', args: [5, 6] },
      {},
      { maxQueue: { 0: 0, 1: 0 }, held: { 0: holding(0), 1: holding(1) } },
    )
    const others = [0, 1].flatMap((rank) =>
      Array.from({ length: 4 }, (_, i) =>
        s.executors
          .get(s.ordered[rank])!
          .execute(createRequest(caller, { fn, export: 'add', args: [rank, i] }).request),
      ),
    )
    await Promise.all(full.map((f) => f.promise))
    const busy = new Set<string>()
    const send: SendExec = async (peer, req, options) => {
      const reply = await s.send(peer, req, options)
      if ('refusal' in reply && reply.refusal.code === 'PEER_BUSY') {
        busy.add(peer)
        if (busy.has(s.ordered[0]) && busy.has(s.ordered[1])) free.resolve()
      }
      return reply
    }
    const r = await invoke({ request: s.request, id: s.id, view: s.view, manifest, send })
    assert.equal((r.value as { sum: number }).sum, 11)
    assert.deepEqual([...busy].sort(), [s.ordered[0], s.ordered[1]].sort())
    // the best-ranked receipts sign: rank 0 or 1 among them, at most one unproven skip
    const signers = r.certificate.receipts.map((x) => s.ordered.indexOf(x.executor))
    assert.ok(signers.includes(0) || signers.includes(1), `signed by ranks ${signers}`)
    assert.equal(verifyCertificate(r.certificate, { output: r.output, view: s.view, manifest }).ok, true)
    await Promise.all(others)
  })

  it('does not ask an executor it holds evidence against: the certificate shows the evidence as its skip', async () => {
    const caught = setup({ export: 'add', args: [1, 2] }, { 0: 'wrong-result' }, { gate: [0] })
    const [conflict] = (await call(caught)).conflicts
    const liar = caught.ordered[0]
    // the same caller, function, export and ticket: the same executors, the liar first; the two
    // ranked next answer before the third does (on a loaded machine the third could otherwise
    // agree first and leave one of them an unproven skip)
    const s = setup({ export: 'add', args: [3, 4], ticket: caught.request.ticket }, {}, { gate: [1, 2] })
    assert.equal(s.ordered[0], liar)
    const evidence = skipEvidence(conflict)!
    const r = await invoke({
      request: s.request,
      view: s.view,
      manifest,
      send: s.send,
      evidence: (peer) => (peer === liar ? evidence : undefined),
    })
    assert.equal((r.value as { sum: number }).sum, 7)
    assert.ok(!r.tried.some((t) => t.peer === liar), 'not asked')
    assert.deepEqual(r.certificate.skipped[0], { peer: liar, conflict })
    // a proven skip, for any verifier holding the view, evidence or not; in its JSON form too
    assert.equal(verifyCertificate(r.certificate, { view: s.view, manifest, maxUnprovenSkips: 0 }).ok, true)
    const json = JSON.parse(JSON.stringify(certificateToJSON(r.certificate)))
    assert.equal(
      verifyCertificate(certificateFromJSON(json), { view: s.view, manifest, maxUnprovenSkips: 0 }).ok,
      true,
    )
    // altered evidence proves nothing: the liar is then an unproven skip
    const withEvidence = (c: typeof conflict) => ({
      ...r.certificate,
      skipped: [{ peer: liar, conflict: c }, ...r.certificate.skipped.slice(1)],
    })
    const altered = withEvidence({
      ...conflict,
      receipt: { ...conflict.receipt, fuel: conflict.receipt.fuel + 1 },
    })
    assert.throws(() => verifyCertificate(altered, { view: s.view, manifest, maxUnprovenSkips: 0 }), {
      code: 'INVALID_CERTIFICATE',
      message: /neither signed nor show/,
    })
    assert.equal(
      verifyCertificate(altered, { view: s.view, manifest }).ok,
      true,
      'one unproven skip, as before',
    )
    // evidence against another executor shown for this one is a forged proof
    const other = r.certificate.receipts[0]
    assert.throws(
      () => verifyCertificate(withEvidence({ ...conflict, receipt: other }), { view: s.view, manifest }),
      { code: 'INVALID_CERTIFICATE', message: /accuses another executor/ },
    )
    // and proofs nest one level deep: this certificate's own skips carry evidence
    assert.equal(skipEvidence({ receipt: conflict.receipt, certificate: r.certificate }), undefined)
  })

  it('puts what the outputs say about their differences into NO_QUORUM', async () => {
    const three = nodes.slice(0, 3)
    const s = setup(
      { export: 'add', args: [1, 1], k: 3, q: 3 },
      { 0: 'wrong-result', 1: 'wrong-result' },
      { among: three },
    )
    const divergence = (receipts: readonly { outputHash: string }[], outputs: readonly OutputLike[]) => ({
      signed: receipts.map((x) => x.outputHash).sort(),
      outputs: outputs.map((o) => outputHash(o)).sort(),
    })
    await assert.rejects(
      invoke({ request: s.request, view: s.view, manifest, send: s.send, divergence }),
      (err: CovenantError) => {
        assert.equal(err.code, 'NO_QUORUM')
        const d = (err.details as { divergence: ReturnType<typeof divergence> }).divergence
        assert.equal(d.signed.length, 3)
        assert.deepEqual(d.outputs, [...new Set(d.signed)].sort(), 'every output that came, once')
        return true
      },
    )
  })

  it('fails with PAYMENT_REQUIRED naming the executors that want paying, when their refusals leave no quorum', async () => {
    const unpaid: ExecutorInit['admit'] = (request) => {
      throw new CovenantError('PAYMENT_REQUIRED', `${request.caller} is past its credit here`)
    }
    const s = setup({ export: 'add', args: [1, 1] }, {}, { admit: { 0: unpaid, 1: unpaid } })
    await assert.rejects(call(s), (err: CovenantError) => {
      assert.equal(err.code, 'PAYMENT_REQUIRED')
      const d = err.details as { payees: string[]; tried: Array<{ peer: string; error?: { code: string } }> }
      assert.deepEqual(d.payees.sort(), [s.ordered[0], s.ordered[1]].sort())
      assert.equal(d.tried.find((t) => t.peer === s.ordered[0])?.error?.code, 'PAYMENT_REQUIRED')
      return true
    })
  })

  it('never accepts a receipt from a peer it did not ask, or one that does not match its output', async () => {
    const s = setup({ export: 'add', args: [1, 2] })
    const impostor = s.executors.get(s.ordered[5])!
    // The impostor answers first and the tamperer second, each handled before the next answers,
    // so a quorum cannot be reached (and either abandoned) before both replies were looked at.
    const gate = (): { open: () => void; passed: Promise<void> } => {
      let open!: () => void
      const passed = new Promise<void>((resolve) => {
        open = resolve
      })
      return { open, passed }
    }
    const impostorHandled = gate()
    const tampererHandled = gate()
    const send: SendExec = async (peer, request, opts) => {
      if (peer === s.ordered[0]) {
        try {
          return await impostor.execute(request, opts)
        } finally {
          setImmediate(impostorHandled.open)
        }
      }
      await impostorHandled.passed
      if (peer === s.ordered[1]) {
        try {
          const reply = await s.send(peer, request, opts)
          assert.ok('output' in reply)
          return { ...reply, output: { ...reply.output, json: '{"sum":4}' } }
        } finally {
          setImmediate(tampererHandled.open)
        }
      }
      await tampererHandled.passed
      return s.send(peer, request, opts)
    }
    const r = await invoke({ request: s.request, view: s.view, manifest, send })
    assert.equal((r.value as { sum: number }).sum, 3)
    const byPeer = new Map(r.tried.map((t) => [t.peer, t]))
    assert.equal(byPeer.get(s.ordered[0])?.error?.code, 'INVALID_SIGNATURE')
    assert.equal(byPeer.get(s.ordered[1])?.error?.code, 'PROTOCOL_ERROR')
    assert.ok(!r.certificate.receipts.some((x) => x.executor === s.ordered[5]))
    // the tamperer's own receipt is sound and counts; the output came from another executor
    assert.deepEqual(r.output.json, JSON.stringify(r.value))
  })
})
