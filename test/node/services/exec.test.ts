/**
 * Remote execution end to end on ONE devnet of 11 real node processes: the gateway's
 * `POST /v1/invoke`, the executors behind `/covenant/exec/3.0.0`, every fault kind, colluders,
 * covenants that keep a node out, hostile functions, replays, conflict evidence spreading over
 * `/covenant/conflict/3.0.0` (and forged evidence refused), the SDK's `invoke` and its distrust of
 * the gateway (a lying gateway, also lying about its peers), key order through a remote gateway,
 * and `covenant call --json`.
 *
 * One network serves every case because covenants decide who may run what: the same code is
 * deployed by several publishers, and each faulty node executes only for its own publisher
 * (`allowedPublishers`). So the eligible executors of each function are (GATEWAY never executes,
 * REFUSER refuses the functions' tag):
 * - main:          [H0 H1 H2] — only honest nodes
 * - <fault kind>:  [H0 H1 H2 + the one node with that fault]
 * - wrong-result:  [H0 H1 H2 WR1 SLOW] — five of the ten executing nodes, so its certificates (and
 *                  the evidence they back) pass every node's default trust
 * - collude:       [H0 WR1 WR2] — two colluding liars and one honest node
 * Those are carved sets on purpose (three or four of ten executing nodes), so the callers here
 * accept a thinner eligible set than the default ({@link TRUST}). For a fault case the test mints
 * tickets until the selection puts the faulty node among the k = 3, as an attacker would have to.
 */

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  type CovenantClient,
  certificateFromJSON,
  conflictFromJSON,
  connect,
  loadCallerKey,
} from '../../../src/client/index.ts'
import {
  type CovenantConfig,
  CovenantConfigSchema,
  compareDistance,
  DEFAULT_COVENANT,
  peerPosition,
  type SignedCovenant,
  signCovenant,
  signedCovenantToJSON,
  xorDistance,
} from '../../../src/covenant/index.ts'
import { CovenantError } from '../../../src/errors/index.ts'
import {
  type Attempt,
  type Certificate,
  CONFLICT_PROTOCOL,
  createRequest,
  EXEC_PROTOCOL,
  type ExecReply,
  FORGED_VALUE,
  outputHash,
  receiptToJSON,
  requestToJSON,
  selectExecutors,
  signReceipt,
  type TrustInput,
  type View,
  verifyCertificate,
  verifyConflict,
  verifyRefusal,
} from '../../../src/exec/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../../src/keys/index.ts'
import { createNet, type Net } from '../../../src/net/index.ts'
import { LIMIT_RANGES, SANDBOX_BUILD } from '../../../src/sandbox/index.ts'
import { covenant } from '../../fixtures/cli.ts'
import { NEVER_MS, ticketWhere } from '../../fixtures/exec-cluster.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'

const GATEWAY = 0
const REFUSER = 1
const H0 = 2
const H1 = 3
const H2 = 4
const WR1 = 5
const WR2 = 6
const BADSIG = 7
const SLOW = 8
const SILENT = 9
const CRASH = 10
const HONEST = [H0, H1, H2]
const TAG = 'games'

/** What the callers here accept: the carved sets above (three of ten executing nodes). */
const TRUST = { minEligibleFraction: 0.3 } satisfies TrustInput

const FAULTS: Record<number, string> = {
  // a liar that answers after the quorum and after the gateway stopped waiting for it
  [WR1]: 'late-wrong-result',
  [WR2]: 'wrong-result',
  [BADSIG]: 'bad-signature',
  [SLOW]: 'slow',
  [SILENT]: 'silent',
  [CRASH]: 'crash',
}

/** The functions, one publisher each; the covenants below say which nodes execute each. */
const FUNCTIONS = ['main', 'wrong-result', 'bad-signature', 'slow', 'silent', 'crash', 'collude'] as const
type FunctionName = (typeof FUNCTIONS)[number]

/**
 * Whether the liar case can be set up on a devnet of these peer ids: some selection key ranks WR1
 * among the first three of the nodes that execute `wrong-result` (the covenants below) and SLOW
 * after them. Where the ids sit in the trie can rule that out (SLOW and WR1 a subtree of their
 * own, ranked after the other three or before them as one block): no ticket would ever give it.
 */
function liarCasePossible(ids: readonly string[]): boolean {
  const executing = [H0, H1, H2, WR1, SLOW]
  const key = new Uint8Array(32)
  for (let i = 0; i < 4000; i++) {
    crypto.getRandomValues(key)
    const top = executing
      .map((n) => ({ n, d: xorDistance(peerPosition(ids[n]), key) }))
      .sort((a, b) => compareDistance(a.d, b.d))
      .slice(0, 3)
      .map((x) => x.n)
    if (top.includes(WR1) && !top.includes(SLOW)) return true
  }
  return false
}

function covenants(publishers: Record<FunctionName, string>): Record<number, CovenantConfig> {
  // Every executing node allows the longest wall clock, so a fuel- or memory-bound call can be
  // given one that never decides.
  const executing = (execute: Partial<CovenantConfig['execute']>): CovenantConfig =>
    CovenantConfigSchema.parse({
      ...DEFAULT_COVENANT,
      execute: {
        ...DEFAULT_COVENANT.execute,
        enabled: true,
        maxWallClockMs: LIMIT_RANGES.timeoutMs.max,
        ...execute,
      },
    })
  const only = (...names: FunctionName[]) => executing({ allowedPublishers: names.map((n) => publishers[n]) })
  return {
    [GATEWAY]: CovenantConfigSchema.parse(DEFAULT_COVENANT), // stores and serves, never executes
    [REFUSER]: executing({ refusedTags: [TAG] }),
    [H0]: executing({}),
    [H1]: executing({ refusedPublishers: [publishers.collude] }),
    [H2]: executing({ refusedPublishers: [publishers.collude] }),
    [WR1]: only('wrong-result', 'collude'),
    [WR2]: only('collude'),
    [BADSIG]: only('bad-signature'),
    [SLOW]: only('slow', 'wrong-result'),
    [SILENT]: only('silent'),
    [CRASH]: only('crash'),
  }
}

const SOURCE = `
export function add(a, b, ctx) { ctx.log('adding'); return { sum: a + b, r: Math.random() } }
export function ordered() { return { zeta: 1, alpha: 2, middle: { z: true, a: [{ y: 1, b: 2 }] } } }
export function spin() { for (;;) {} }
export function bomb() { const a = []; for (let i = 0; ; i++) a.push('x'.repeat(4096) + i) }
`

interface InvokeReply {
  value: unknown
  output: { json: string; logs: string[]; error: { code: string; message: string } | null }
  certificate: unknown
  conflicts: unknown[]
  tried: Attempt[]
  error?: { code: string; message: string; details?: Record<string, unknown> }
}

type Signed = ReturnType<typeof createRequest> & { selection: ReturnType<typeof selectExecutors> }

/** The JSON a tampering gateway rewrites. */
interface ReplyJSON {
  value: unknown
  output: InvokeReply['output']
  certificate: { id: string; receipts: Array<{ signature: string }>; skipped: unknown[] }
}

describe('remote execution on an 11-node devnet', { timeout: 300_000 }, () => {
  let devnet: TestDevnet
  let dir: string
  let caller: PrivateKey
  let callerFile: string
  let gateway: CovenantClient
  let fns: Record<FunctionName, { cid: string; manifest: { tags: string[]; publisher: string } }>
  /** the network as every node describes it, covenants checked here */
  let view: View
  let prober: Net
  const peer = (i: number) => devnet.nodes[i].peerId
  const http = (i: number) => devnet.nodes[i].http
  const honest = () => HONEST.map(peer)
  const fnOf = (r: { request: { fn: string } }) => Object.values(fns).find((f) => f.cid === r.request.fn)!

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-exec-e2e-'))
    const publisherKeys = Object.fromEntries(
      await Promise.all(FUNCTIONS.map(async (name) => [name, await generateKey()] as const)),
    ) as Record<FunctionName, PrivateKey>
    const publishers = Object.fromEntries(FUNCTIONS.map((n) => [n, keyId(publisherKeys[n])])) as Record<
      FunctionName,
      string
    >
    // a devnet whose ids cannot give the liar case's selection is started again, with new ids
    for (let started = 1; ; started++) {
      devnet = await startTestDevnet({
        nodes: 11,
        covenants: covenants(publishers),
        faults: FAULTS,
        // 11 nodes on 2 shared cores: calmer than the fixtures' default, and a hello timeout a loaded
        // machine does not reach (a late hello would mark a live peer dead and change who is
        // selected); a killed node is still noticed at once, through its closed connections.
        heartbeatMs: 3000,
        helloTimeoutMs: 10_000,
        repairIntervalMs: 5000,
      })
      if (liarCasePossible(devnet.nodes.map((n) => n.peerId)) || started === 5) break
      await devnet.cleanup()
    }
    callerFile = join(dir, 'caller.key')
    caller = await loadCallerKey(callerFile)
    gateway = await connect({ node: http(GATEWAY), devnetDir: devnet.dir, trust: TRUST })
    const entries = []
    for (const name of FUNCTIONS) {
      const { cid } = await gateway.deploy(SOURCE, {
        key: publisherKeys[name],
        tags: [TAG],
        exports: ['add', 'bomb', 'ordered', 'spin'],
      })
      const { manifest } = await gateway.getFunction(cid)
      entries.push([name, { cid, manifest: { tags: manifest.tags, publisher: manifest.publisher } }])
    }
    fns = Object.fromEntries(entries)
    view = await gateway.view()
    assert.equal(view.peers.size, 11)
    prober = createNet({ privateKey: await generateKey() })
    await prober.start()
    for (const i of [GATEWAY, REFUSER, H0, H1, H2])
      await prober.addAddresses(peer(i), [devnet.nodes[i].multiaddrs[0].replace(/\/p2p\/.*$/, '')])
  })
  after(async () => {
    await prober?.stop()
    await devnet?.cleanup()
    await rm(dir, { recursive: true, force: true })
  })

  /**
   * Signs a request for function `name` once the network is settled. With `accept`, mints tickets
   * until the selection it gives satisfies `accept(chosen)` (the only way to steer who executes).
   */
  async function request(
    name: FunctionName,
    init: {
      export?: string
      args?: unknown[]
      k?: number
      q?: number
      fuel?: number
      timeoutMs?: number
      /** ms from now @default the request's own default */
      deadlineInMs?: number
    } = {},
    accept?: (chosen: string[]) => boolean,
  ): Promise<Signed> {
    // Signed once every node sees every other: the deadline starts after any wait for a late
    // hello on this loaded machine, not before it (a wait in `post` alone ate 30 s deadlines).
    await devnet.waitConnected()
    const limits = {
      fn: fns[name].cid,
      export: init.export ?? 'add',
      k: init.k ?? 3,
      fuel: init.fuel ?? 2000,
      memoryMiB: 64,
      timeoutMs: init.timeoutMs ?? 5000,
    }
    const ticket =
      accept === undefined
        ? undefined
        : ticketWhere(caller, view, limits, fns[name].manifest, (ordered) =>
            accept(ordered.slice(0, limits.k)),
          )
    const deadline = init.deadlineInMs === undefined ? undefined : Date.now() + init.deadlineInMs
    const r = createRequest(caller, {
      ...limits,
      args: init.args ?? [2, 3],
      q: init.q ?? 2,
      ticket,
      deadline,
    })
    const selection = selectExecutors({
      view,
      request: r.request,
      manifest: fns[name].manifest,
      minEligibleFraction: 0,
    })
    return { ...r, selection }
  }

  async function post(
    r: Signed | { request: ReturnType<typeof createRequest>['request'] },
  ): Promise<{ status: number; body: InvokeReply }> {
    // Selection is over the live peers: wait until every node sees every other again, should a
    // hello have been late on this loaded machine.
    await devnet.waitConnected()
    const res = await fetch(`${http(GATEWAY)}/v1/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request: requestToJSON(r.request), trust: TRUST }),
    })
    const body = (await res.json()) as InvokeReply
    return { status: res.status, body }
  }

  const verified = (certificate: unknown, output?: InvokeReply['output'], trust: TrustInput = TRUST) => {
    const c = certificateFromJSON(certificate)
    return verifyCertificate(c, { ...trust, view, manifest: fnOf(c).manifest, output })
  }

  /** Posts and checks the answer: `sum`, with a certificate anyone can verify, from the predicted executors. */
  async function expectSum(r: Signed, sum: number): Promise<InvokeReply> {
    const { status, body } = await post(r)
    assert.equal(status, 200, JSON.stringify(body).slice(0, 500))
    assert.equal((body.value as { sum: number }).sum, sum)
    const { certificate } = verified(body.certificate, body.output)
    assert.equal(certificate.id, r.id)
    const executors = certificate.receipts.map((x) => x.executor)
    assert.equal(new Set(executors).size, r.request.q)
    // the first k asked are exactly the k the selection rule predicts
    assert.deepEqual(
      new Set(body.tried.slice(0, r.request.k).map((a) => a.peer)),
      new Set(r.selection.chosen),
    )
    for (const e of executors) assert.ok(r.selection.ordered.includes(e))
    return body
  }

  it('returns the right value with q receipts from the executors the selection rule predicts', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await request('main', { args: [i, 40] })
      assert.deepEqual(new Set(r.selection.chosen), new Set(honest()))
      const body = await expectSum(r, 40 + i)
      assert.deepEqual(body.output.logs, ['adding'])
      assert.deepEqual(body.conflicts, [])
    }
    // Among four eligible nodes, k = 2 picks the two the rule says, whichever they are.
    const r = await request('bad-signature', { k: 2, q: 2 }, (chosen) =>
      chosen.every((p) => honest().includes(p)),
    )
    assert.equal(r.selection.ordered.length, 4)
    await expectSum(r, 5)
  })

  it('gives the value the function returned, key order included, through a gateway that did not run it', async () => {
    const r = await request('main', { export: 'ordered', args: [] })
    const { status, body } = await post(r)
    assert.equal(status, 200)
    assert.ok(!body.tried.some((a) => a.peer === peer(GATEWAY)), 'the gateway never executes')
    const expected = '{"zeta":1,"alpha":2,"middle":{"z":true,"a":[{"y":1,"b":2}]}}'
    assert.equal(body.output.json, expected)
    assert.equal(JSON.stringify(body.value), expected)
    verified(body.certificate, body.output)
    const viaSdk = await gateway.invoke(fns.main.cid, 'ordered', [], { key: caller })
    assert.equal(JSON.stringify(viaSdk.value), expected)
    assert.deepEqual(Object.keys(viaSdk.value as object), ['zeta', 'alpha', 'middle'])
  })

  for (const [kind, index] of [
    ['bad-signature', BADSIG],
    ['slow', SLOW],
    ['silent', SILENT],
  ] as const) {
    it(`returns the right value with a ${kind} executor among the three`, async () => {
      const r = await request(kind, { args: [20, 1] }, (chosen) => chosen.includes(peer(index)))
      const body = await expectSum(r, 21)
      const attempt = body.tried.find((a) => a.peer === peer(index))
      assert.ok(attempt !== undefined && attempt.outcome !== 'agreed')
      if (attempt.outcome === 'failed') assert.equal(attempt.error?.code, 'INVALID_SIGNATURE')
      // Two honest executors suffice: the answer came while the slow or silent one (which holds
      // its reply until after the deadline, or forever) was still running, so nobody waited for it.
      if (kind !== 'bad-signature') assert.equal(attempt.outcome, 'abandoned')
    })
  }

  /** Conflicts node i holds against each executor. */
  async function conflictCounts(i: number): Promise<Map<string, number>> {
    const peers = (await (await fetch(`${http(i)}/v1/peers`)).json()).peers as Array<{
      id: string
      conflicts: number
    }>
    return new Map(peers.map((p) => [p.id, p.conflicts]))
  }

  let evidence: unknown

  it('returns the right value with a liar among the three, and spreads the evidence of its late lie', async () => {
    const witnesses = [GATEWAY, H1, REFUSER]
    const before = await Promise.all(witnesses.map(conflictCounts))
    const r = await request(
      'wrong-result',
      { args: [7, 7], deadlineInMs: 20_000 },
      (chosen) => chosen.includes(peer(WR1)) && !chosen.includes(peer(SLOW)),
    )
    const body = await expectSum(r, 14)
    // The liar (late-wrong-result) holds its forged receipt until a second before the deadline:
    // the quorum came without it, and the gateway stopped waiting for it 10 s after asking.
    assert.equal(body.tried.find((a) => a.peer === peer(WR1))?.outcome, 'abandoned')
    assert.deepEqual(body.conflicts, [])
    // The gateway still takes its receipt when it comes, and the other live nodes learn it: each
    // checks it against its own view with its default trust.
    const untilLie = r.request.deadline - Date.now()
    for (const [w, i] of witnesses.entries()) {
      const stored = await waitFor(
        `the conflict on node ${i}`,
        async () => {
          const res = await fetch(`${http(i)}/v1/conflicts?executor=${peer(WR1)}`)
          const list = (await res.json()).conflicts as Array<{
            conflict: { certificate: { id: string } }
            receivedAt: number
          }>
          return list.find((s) => s.conflict.certificate.id === r.id)
        },
        untilLie + 20_000,
      )
      evidence = stored.conflict
      const conflict = verifyConflict(conflictFromJSON(stored.conflict), {
        view,
        manifest: fns['wrong-result'].manifest,
      }).conflict
      assert.equal(conflict.receipt.executor, peer(WR1))
      assert.equal(conflict.certificate.receipts.length, 2)
      // one more against the liar, none more against an honest executor
      const after = await conflictCounts(i)
      assert.equal(after.get(peer(WR1)), (before[w].get(peer(WR1)) ?? 0) + 1)
      assert.equal(after.get(peer(H0)), before[w].get(peer(H0)) ?? 0)
    }
  })

  it('stores reported evidence once, and refuses forged evidence: throwaway keys frame nobody', async () => {
    const report = (conflict: unknown) =>
      prober.request(
        peer(H1),
        CONFLICT_PROTOCOL,
        { conflict: conflictFromJSON(conflict) },
        { timeoutMs: 10_000 },
      )
    const before = await conflictCounts(H1)
    // the real evidence again: accepted, and nothing changes
    assert.deepEqual(await report(evidence), { ok: true })
    // The framer: an honest executor's real receipt, against a "certificate" of throwaway keys
    // that signed another output for the same request.
    const { body } = await post(await request('main', { args: [9, 9] }))
    const real = certificateFromJSON(body.certificate)
    const victim = real.receipts[0]
    const throwaway = await Promise.all([generateKey(), generateKey()])
    const lie = { json: '{"sum":99}', logs: [], error: null }
    const framed = {
      receipt: receiptToJSON(victim),
      certificate: {
        ...(body.certificate as object),
        outputHash: outputHash(lie),
        receipts: throwaway.map((key) =>
          receiptToJSON(
            signReceipt(key, {
              request: real.id,
              outputHash: outputHash(lie),
              fuel: victim.fuel,
              covenantVersion: 1,
              build: SANDBOX_BUILD,
            }),
          ),
        ),
      },
    }
    await assert.rejects(report(framed), (e: CovenantError) => e.code === 'INVALID_CONFLICT')
    // The flooder: evidence against keys nobody knows, over a real certificate.
    const stranger = await generateKey()
    const flood = {
      receipt: receiptToJSON(
        signReceipt(stranger, {
          request: real.id,
          outputHash: outputHash(lie),
          fuel: 1,
          covenantVersion: 1,
          build: SANDBOX_BUILD,
        }),
      ),
      certificate: body.certificate,
    }
    await assert.rejects(report(flood), (e: CovenantError) => e.code === 'INVALID_CONFLICT')
    const after = await conflictCounts(H1)
    assert.deepEqual(after, before)
    const against = await (await fetch(`${http(H1)}/v1/conflicts?executor=${keyId(stranger)}`)).json()
    assert.deepEqual(against.conflicts, [])
    // asking for evidence against another spelling of a key is refused, not silently empty
    const otherSpelling = peerIdFromString(peer(WR1)).toCID().toString()
    const respelled = await fetch(`${http(H1)}/v1/conflicts?executor=${otherSpelling}`)
    assert.equal(respelled.status, 400)
    assert.equal((await respelled.json()).error.code, 'INVALID_KEY_ID')
  })

  it('answers a replayed request from what it already answered: the function does not run twice', async () => {
    const r = await request('main', { args: [30, 12] })
    const first = await expectSum(r, 42)
    const metric = async (i: number, answer: string) => {
      const text = await (await fetch(`${http(i)}/metrics`)).text()
      return Number(new RegExp(`covenant_executor_requests\\{answer="${answer}"\\} (\\d+)`).exec(text)?.[1])
    }
    // A replay is safe to send again: a stream the loaded machine broke (PEER_UNREACHABLE, seen in
    // CI) is asked once more, and the runs counted below still show whether anything ran twice.
    const replayTo = async (i: number, tries = 3): Promise<ExecReply> => {
      try {
        return (await prober.request(
          peer(i),
          EXEC_PROTOCOL,
          { request: r.request },
          { timeoutMs: 30_000 },
        )) as ExecReply
      } catch (err) {
        if (tries <= 1 || (err as { code?: string }).code !== 'PEER_UNREACHABLE') throw err
        return replayTo(i, tries - 1)
      }
    }
    // Once every executor answered (a replay waits for a run still going), count their runs.
    const settled = await Promise.all(HONEST.map((i) => replayTo(i)))
    const runs = await Promise.all(HONEST.map((i) => metric(i, 'executed')))
    const replays = await Promise.all(HONEST.map((i) => metric(i, 'replayed')))
    // Replayed to each executor, and through the gateway again: the same receipts, no new run.
    const again = await Promise.all(HONEST.map((i) => replayTo(i)))
    assert.deepEqual(again, settled)
    const { body } = await post(r)
    // each receipt in the new certificate is the very one its executor gave the first time
    const given = new Map<string, unknown>()
    for (const reply of settled) if ('receipt' in reply) given.set(reply.receipt.executor, reply.receipt)
    for (const receipt of certificateFromJSON(body.certificate).receipts)
      assert.deepEqual(receipt, given.get(receipt.executor))
    assert.equal(
      certificateFromJSON(body.certificate).outputHash,
      certificateFromJSON(first.certificate).outputHash,
    )
    assert.deepEqual(await Promise.all(HONEST.map((i) => metric(i, 'executed'))), runs)
    const later = await Promise.all(HONEST.map((i) => metric(i, 'replayed')))
    for (const [j, n] of later.entries()) assert.ok(n >= replays[j] + 1, `executor ${j} answered the replay`)
  })

  it('does not accept a value two colluding executors forged when q = k = 3: NO_QUORUM', async () => {
    const r = await request('collude', { k: 3, q: 3 })
    assert.deepEqual(new Set(r.selection.ordered), new Set([peer(H0), peer(WR1), peer(WR2)]))
    const { status, body } = await post(r)
    assert.equal(status, 502)
    assert.equal(body.error?.code, 'NO_QUORUM')
    const details = body.error?.details as {
      outputHashes: Record<string, number>
      receipts: unknown[]
      divergence: {
        groups: Array<{ executors: string[] }>
        differences: Array<{ path: string; expected: string; actual: string }>
      }
    }
    // WR1 lied in an earlier test: a gateway holding that evidence asks it no more
    const held = await fetch(`${http(GATEWAY)}/v1/conflicts?executor=${peer(WR1)}`)
    const accused = ((await held.json()) as { conflicts: unknown[] }).conflicts.length > 0
    assert.deepEqual(Object.values(details.outputHashes).sort(), accused ? [1, 1] : [1, 2])
    assert.equal(details.receipts.length, accused ? 2 : 3)
    // where the outputs part, for the function's author: the honest { sum: 5 } lacks the forged
    // object's key and the other way round; which is the reference is which receipt came first
    const { groups, differences } = details.divergence
    assert.ok(groups.flatMap((g) => g.executors).includes(peer(H0)))
    assert.equal(differences.length, 1)
    const { path, expected, actual } = differences[0]
    assert.deepEqual(
      { path, expected, actual },
      path === '$.value.sum'
        ? { path, expected: '5', actual: '(absent)' }
        : { path: '$.value.forged', expected: 'true', actual: '(absent)' },
    )
    // and the command prints it for a person
    const failed = await covenant(
      // the colluders are three of ten executing nodes: a set the default trust calls carved
      ['call', fns.collude.cid, 'add', '1', '1', '--replicas', '3', '--quorum', '3'].concat([
        '--min-eligible-fraction',
        '0',
        '--node',
        http(GATEWAY),
        '--key',
        callerFile,
      ]),
    ).then(
      () => assert.fail('the call should fail'),
      (e: { stderr: string }) => e.stderr,
    )
    assert.match(failed, /error NO_QUORUM/)
    assert.match(failed, /the executors signed different outputs/)
    assert.match(
      failed,
      /differs first at \$\.value\.(sum|forged): \(absent\) where output \w+… has (2|true)\n/,
    )
    // the SDK says the same, and never hands out the forged value
    await assert.rejects(
      gateway.invoke(fns.collude.cid, 'add', [1, 1], { key: caller, replicas: 3, quorum: 3 }),
      (e: CovenantError) => e.code === 'NO_QUORUM',
    )
    // with q = 2 the two colluders are a quorum (the documented Sybil limit), unless the gateway
    // holds evidence against one of them: then it asks only the other and the honest node
    const forged = await post(await request('collude'))
    if (accused) assert.equal(forged.body.error?.code, 'NO_QUORUM')
    else assert.deepEqual(forged.body.value, FORGED_VALUE)
  })

  it('never chooses a node whose covenant disables execution or refuses the tag; they refuse if asked', async () => {
    const r = await request('main')
    const excluded = new Map(r.selection.excluded.map((x) => [x.peer, x.reason]))
    assert.match(excluded.get(peer(GATEWAY)) ?? '', /does not execute/)
    assert.match(excluded.get(peer(REFUSER)) ?? '', /refuses tag "games"/)
    for (const i of [GATEWAY, REFUSER]) {
      const reply = (await prober.request(
        peer(i),
        EXEC_PROTOCOL,
        { request: r.request },
        { timeoutMs: 5000 },
      )) as ExecReply
      assert.ok('refusal' in reply)
      const refusal = verifyRefusal(reply.refusal)
      assert.deepEqual([refusal.executor, refusal.code, refusal.request], [peer(i), 'COVENANT_REFUSED', r.id])
    }
    // Calls that ask every eligible executor of their function reach six nodes, never those two.
    const asked = new Set<string>()
    for (const [name, k] of [
      ['main', 3],
      ['bad-signature', 4],
      ['slow', 4],
      ['silent', 4],
    ] as const) {
      const { status, body } = await post(await request(name, { k, q: 2 }))
      assert.equal(status, 200, JSON.stringify(body).slice(0, 500))
      for (const a of body.tried) asked.add(a.peer)
    }
    assert.deepEqual(asked, new Set([...HONEST, BADSIG, SLOW, SILENT].map(peer)))
  })

  it('returns FUEL_EXHAUSTED and MEMORY_LIMIT agreed by a quorum, and the executors keep serving', async () => {
    // Fuel and memory decide these calls; their wall clock (two minutes) never does.
    for (const [name, code, fuel] of [
      ['spin', 'FUEL_EXHAUSTED', 200],
      ['bomb', 'MEMORY_LIMIT', undefined],
    ] as const) {
      const { status, body } = await post(
        await request('main', { export: name, args: [], fuel, timeoutMs: NEVER_MS }),
      )
      assert.equal(status, 200)
      assert.equal(body.output.error?.code, code)
      assert.equal(verified(body.certificate, body.output).certificate.receipts.length, 2)
      // through the SDK the agreed failure is a typed error carrying its certificate
      await assert.rejects(
        gateway.invoke(fns.main.cid, name, [], { key: caller, fuel, timeoutMs: NEVER_MS }),
        (e: CovenantError) => {
          assert.equal(e.code, code)
          const { certificate } = e.details as { certificate: unknown }
          return verified(certificate).ok
        },
      )
      await expectSum(await request('main', { args: [1, 1] }), 2)
    }
  })

  const TRANSIENT = new Set(['DEADLINE_EXCEEDED', 'PEER_BUSY', 'PEER_UNREACHABLE', 'NO_QUORUM'])
  it('SDK invoke refuses a lying gateway: tampered answers, values forged by made-up keys, lies about its peers', async () => {
    const result = await gateway.invoke(fns.main.cid, 'add', [3, 4], { key: caller })
    assert.equal((result.value as { sum: number }).sum, 7)
    assert.equal((await gateway.verify(result.certificate, { output: result.output })).ok, true)
    assert.equal(result.certificate.request.caller, keyId(caller))
    assert.ok(result.certificate.receipts.every((x) => honest().includes(x.executor)))

    // Keys the lying gateway makes on the spot, with covenants that would make them executors.
    const made = await Promise.all([generateKey(), generateKey()])
    const madeCovenants: SignedCovenant[] = made.map((key) =>
      signCovenant(key, { execute: { enabled: true, maxWallClockMs: LIMIT_RANGES.timeoutMs.max } }, 1),
    )
    const forgedOutput = { json: '{"sum":8,"r":0}', logs: ['adding'], error: null }
    const forgeWithMadeKeys = (b: ReplyJSON) => {
      const certificate = b.certificate as unknown as Certificate & { id: string }
      const receipts = made.map((key) =>
        receiptToJSON(
          signReceipt(key, {
            request: certificate.id,
            outputHash: outputHash(forgedOutput),
            fuel: 1,
            covenantVersion: 1,
            build: SANDBOX_BUILD,
          }),
        ),
      )
      return {
        ...b,
        value: { sum: 8, r: 0 },
        output: forgedOutput,
        certificate: { ...b.certificate, outputHash: outputHash(forgedOutput), receipts, skipped: [] },
      }
    }

    // A gateway in the middle that rewrites honest answers in different ways.
    let previous: ReplyJSON | undefined
    const tamper: Record<string, (b: ReplyJSON) => unknown> = {
      value: (b) => ({ ...b, value: { sum: 8 }, output: { ...b.output, json: '{"sum":8,"r":0}' } }),
      signature: (b) => {
        const [first, ...rest] = b.certificate.receipts
        const signature = (first.signature[0] === 'A' ? 'B' : 'A') + first.signature.slice(1)
        return { ...b, certificate: { ...b.certificate, receipts: [{ ...first, signature }, ...rest] } }
      },
      'dropped receipt': (b) => ({
        ...b,
        certificate: { ...b.certificate, receipts: b.certificate.receipts.slice(0, 1) },
      }),
      'replayed answer': (b) => previous ?? b,
      'a value forged by keys made on the spot': forgeWithMadeKeys,
      'a forged value, and its makers presented as peers': forgeWithMadeKeys,
    }
    let mode: string | undefined
    const proxy: Server = createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      const upstream = await fetch(`${http(GATEWAY)}${req.url}`, {
        method: req.method,
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: req.method === 'GET' ? undefined : Buffer.concat(chunks),
      })
      const type = upstream.headers.get('content-type') ?? 'application/octet-stream'
      if (req.url !== '/v1/invoke' && req.url !== '/v1/peers') {
        // blocks (the manifest the caller checks the selection with) pass through untouched
        res.writeHead(upstream.status, { 'content-type': type })
        res.end(Buffer.from(await upstream.arrayBuffer()))
        return
      }
      const body = (await upstream.json()) as ReplyJSON & { peers?: unknown[] }
      let answer: unknown = body
      // an error the honest gateway gave (a loaded machine misses deadlines) passes through as it is
      if (req.url === '/v1/invoke' && mode !== undefined && body.certificate !== undefined)
        answer = tamper[mode](body)
      if (req.url === '/v1/peers' && mode === 'a forged value, and its makers presented as peers')
        answer = {
          peers: [
            ...(body.peers ?? []),
            ...madeCovenants.map((c) => ({
              id: c.peer,
              addrs: [],
              alive: true,
              lastSeen: Date.now(),
              self: false,
              covenant: signedCovenantToJSON(c),
              conflicts: 0,
            })),
          ],
        }
      res.writeHead(upstream.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(answer))
      if (req.url === '/v1/invoke') previous = body
    })
    await new Promise<void>((res) => proxy.listen(0, '127.0.0.1', res))
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
      // Two callers behind the liar: one builds its view from the liar and two other nodes, one
      // from every node of the devnet file. Neither takes its view from the gateway alone.
      const liars = [
        await connect({ nodes: [proxyUrl, http(H1), http(REFUSER)], trust: TRUST, viewTtlMs: 0 }),
        await connect({ node: proxyUrl, devnetDir: devnet.dir, trust: TRUST, viewTtlMs: 0 }),
      ]
      for (const liar of liars) {
        mode = undefined
        // passed through untouched, it is accepted (and primes the replay)
        const honestAnswer = await liar.invoke(fns.main.cid, 'add', [1, 2], { key: caller })
        assert.equal((honestAnswer.value as { sum: number }).sum, 3)
        for (const m of Object.keys(tamper)) {
          mode = m
          // Only a tampered answer counts: a call the honest gateway itself failed under load is tried again.
          let code: string | undefined
          for (let attempt = 0; attempt < 3 && (code === undefined || TRANSIENT.has(code)); attempt++) {
            code = await liar.invoke(fns.main.cid, 'add', [3, 4], { key: caller }).then(
              () => 'accepted',
              (e: unknown) => (e instanceof CovenantError ? e.code : String(e)),
            )
          }
          assert.equal(code, 'INVALID_CERTIFICATE', `tampering by ${m} was not caught`)
        }
      }
      // the liar listed its made-up peers, but one node of three is no majority: they are not in the view
      const seen = await liars[0].view({ fresh: true })
      assert.equal(seen.peers.size, 11)
      for (const c of madeCovenants) assert.equal(seen.peers.has(c.peer), false)
    } finally {
      await new Promise((res) => proxy.close(res))
    }
  })

  it('covenant call --json prints one object; a function error exits 1 without --json', async () => {
    const cli = (args: string[]) =>
      covenant(
        [
          'call',
          fns.main.cid,
          ...args,
          '--node',
          http(GATEWAY),
          '--nodes',
          [GATEWAY, H0, REFUSER].map(http).join(','),
          '--key',
          callerFile,
          '--min-eligible-fraction',
          String(TRUST.minEligibleFraction),
        ],
        { timeout: 60_000 },
      )
    const { stdout } = await cli(['add', '5', '6', '--json'])
    const lines = stdout.trim().split('\n')
    assert.equal(lines.length, 1)
    const out = JSON.parse(lines[0])
    assert.equal(out.ok, true)
    assert.equal(out.value.sum, 11)
    assert.equal(typeof out.ms, 'number')
    assert.deepEqual(out.conflicts, [])
    assert.deepEqual(Object.keys(out.certificate).sort(), [
      'id',
      'outputHash',
      'receipts',
      'request',
      'skipped',
    ])
    for (const key of ['executor', 'fuel', 'signature']) assert.ok(key in out.certificate.receipts[0])
    verified(out.certificate, { json: JSON.stringify(out.value), logs: ['adding'], error: null })
    // the ticket is kept next to the key, for the next call this hour
    const kept = JSON.parse(await (await import('node:fs/promises')).readFile(`${callerFile}.ticket`, 'utf8'))
    assert.equal(kept.caller, keyId(caller))
    assert.deepEqual(certificateFromJSON(out.certificate).request.ticket, {
      epoch: kept.epoch,
      nonce: kept.nonce,
    })
    // key order survives the CLI too
    const ordered = JSON.parse((await cli(['ordered', '--json'])).stdout)
    assert.deepEqual(Object.keys(ordered.value), ['zeta', 'alpha', 'middle'])

    const failed = JSON.parse(
      (await cli(['spin', '--fuel', '200', '--timeout', String(NEVER_MS), '--json'])).stdout,
    )
    assert.equal(failed.ok, false)
    assert.equal(failed.error.code, 'FUEL_EXHAUSTED')
    verified(failed.certificate)

    await assert.rejects(
      cli(['spin', '--fuel', '200', '--timeout', String(NEVER_MS)]),
      (e: { code: number; stderr: string; stdout: string }) => {
        assert.equal(e.code, 1)
        assert.equal(e.stdout, '')
        assert.match(e.stderr, /error FUEL_EXHAUSTED: /)
        assert.match(e.stderr, /hint: raise --fuel/)
        return true
      },
    )
    // the default trust refuses the carved set, before anything runs
    const strict = await covenant([
      'call',
      fns.main.cid,
      'add',
      '1',
      '1',
      '--node',
      http(GATEWAY),
      '--key',
      callerFile,
      '--json',
    ])
    assert.equal(JSON.parse(strict.stdout).error.code, 'NO_EXECUTORS')
  })

  // Last: the crash fault takes its node down for good.
  it('returns the right value with a crash executor among the three; the crashed node is gone', async () => {
    const r = await request('crash', { args: [100, 1] }, (chosen) => chosen.includes(peer(CRASH)))
    await expectSum(r, 101)
    await waitFor('the crash node to exit', async () =>
      devnet.nodes[CRASH].process === undefined ? true : undefined,
    )
    await expectSum(await request('main', { args: [1, 2] }), 3)
  })
})
