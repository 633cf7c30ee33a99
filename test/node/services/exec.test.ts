/**
 * Remote execution end to end on ONE devnet of 11 real node processes: the gateway's
 * `POST /v1/invoke`, the executors behind `/covenant/exec/1.0.0`, every fault kind, colluders,
 * covenants that keep a node out, hostile functions, conflict evidence spreading over
 * `/covenant/conflict/1.0.0`, the SDK's `invoke` (and its distrust of the gateway) and
 * `covenant call --json`.
 *
 * One network serves every case because covenants decide who may run what: the same code is
 * deployed by several publishers, and each faulty node executes only for its own publisher
 * (`allowedPublishers`). So the eligible executors of each function are (GATEWAY never executes,
 * REFUSER refuses the functions' tag):
 * - main:         [H0 H1 H2] — only honest nodes
 * - <fault kind>: [H0 H1 H2 + the one node with that fault]
 * - collude:      [H0 WR1 WR2] — two colluding liars and one honest node
 * For a fault case the test picks a nonce whose selection puts the faulty node among the k = 3.
 */

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  type CovenantClient,
  certificateFromJSON,
  conflictFromJSON,
  connect,
  loadCallerKey,
  verifyCertificate,
  verifyConflict,
} from '../../../src/client/index.ts'
import {
  type CovenantConfig,
  CovenantConfigSchema,
  DEFAULT_COVENANT,
  signedCovenantFromJSON,
} from '../../../src/covenant/index.ts'
import { CovenantError } from '../../../src/errors/index.ts'
import {
  type Attempt,
  CONFLICT_PROTOCOL,
  createRequest,
  EXEC_PROTOCOL,
  FORGED_VALUE,
  requestToJSON,
  type SelectionCandidate,
  selectExecutors,
  signReceipt,
} from '../../../src/exec/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../../src/keys/index.ts'
import { createNet, type Net } from '../../../src/net/index.ts'
import { SANDBOX_BUILD } from '../../../src/sandbox/index.ts'
import { covenant } from '../../fixtures/cli.ts'
import { makeNodes, type TestNode } from '../../fixtures/exec-cluster.ts'
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

const FAULTS: Record<number, string> = {
  [WR1]: 'wrong-result',
  [WR2]: 'wrong-result',
  [BADSIG]: 'bad-signature',
  [SLOW]: 'slow',
  [SILENT]: 'silent',
  [CRASH]: 'crash',
}

/** The functions, one publisher each; the covenants below say which nodes execute each. */
const FUNCTIONS = ['main', 'wrong-result', 'bad-signature', 'slow', 'silent', 'crash', 'collude'] as const
type FunctionName = (typeof FUNCTIONS)[number]

function covenants(publishers: Record<FunctionName, string>): Record<number, CovenantConfig> {
  const executing = (execute: Partial<CovenantConfig['execute']>): CovenantConfig =>
    CovenantConfigSchema.parse({
      ...DEFAULT_COVENANT,
      execute: { ...DEFAULT_COVENANT.execute, enabled: true, ...execute },
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
    [SLOW]: only('slow'),
    [SILENT]: only('silent'),
    [CRASH]: only('crash'),
  }
}

const SOURCE = `
export function add(a, b, ctx) { ctx.log('adding'); return { sum: a + b, r: Math.random() } }
export function spin() { for (;;) {} }
export function bomb() { const a = []; for (let i = 0; ; i++) a.push('x'.repeat(4096) + i) }
`

interface InvokeReply {
  value: unknown
  output: { value: unknown; logs: string[]; error: { code: string; message: string } | null }
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
  certificate: { receipts: Array<{ signature: string }> }
}

describe('remote execution on an 11-node devnet', { timeout: 240_000 }, () => {
  let devnet: TestDevnet
  let dir: string
  let caller: PrivateKey
  let callerFile: string
  let gateway: CovenantClient
  let fns: Record<FunctionName, { cid: string; manifest: { tags: string[]; publisher: string } }>
  let candidates: SelectionCandidate[]
  let prober: Net
  const peer = (i: number) => devnet.nodes[i].peerId
  const http = (i: number) => devnet.nodes[i].http
  const honest = () => HONEST.map(peer)

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-exec-e2e-'))
    const publisherKeys = Object.fromEntries(
      await Promise.all(FUNCTIONS.map(async (name) => [name, await generateKey()] as const)),
    ) as Record<FunctionName, PrivateKey>
    const publishers = Object.fromEntries(FUNCTIONS.map((n) => [n, keyId(publisherKeys[n])])) as Record<
      FunctionName,
      string
    >
    devnet = await startTestDevnet({
      nodes: 11,
      covenants: covenants(publishers),
      faults: FAULTS,
      // 11 nodes on 2 shared cores: calmer than the fixtures' default; a killed node is still
      // noticed at once, through its closed connections.
      heartbeatMs: 3000,
      helloTimeoutMs: 2000,
      repairIntervalMs: 5000,
    })
    callerFile = join(dir, 'caller.key')
    caller = await loadCallerKey(callerFile)
    gateway = await connect({ node: http(GATEWAY) })
    const entries = []
    for (const name of FUNCTIONS) {
      const { cid } = await gateway.deploy(SOURCE, {
        key: publisherKeys[name],
        tags: [TAG],
        exports: ['add', 'bomb', 'spin'],
      })
      const { manifest } = await gateway.getFunction(cid)
      entries.push([name, { cid, manifest: { tags: manifest.tags, publisher: manifest.publisher } }])
    }
    fns = Object.fromEntries(entries)
    // The candidates as anyone can see them: the gateway's peer table, covenants checked here.
    candidates = (await gateway.peers()).map((p) => ({
      peer: p.id,
      covenant: signedCovenantFromJSON(p.covenant),
    }))
    assert.equal(candidates.length, 11)
    prober = createNet({ privateKey: await generateKey() })
    await prober.start()
    for (const i of [GATEWAY, REFUSER, H1])
      await prober.addAddresses(peer(i), [devnet.nodes[i].multiaddrs[0].replace(/\/p2p\/.*$/, '')])
  })
  after(async () => {
    await prober?.stop()
    await devnet?.cleanup()
    await rm(dir, { recursive: true, force: true })
  })

  /** Signs a request for function `name`, trying nonces until `accept(chosen)` holds. */
  function request(
    name: FunctionName,
    init: { export?: string; args?: unknown[]; k?: number; q?: number; fuel?: number } = {},
    accept: (chosen: string[]) => boolean = () => true,
  ): Signed {
    for (let n = 0; n < 200; n++) {
      const r = createRequest(caller, {
        fn: fns[name].cid,
        export: init.export ?? 'add',
        args: init.args ?? [2, 3],
        fuel: init.fuel,
        timeoutMs: 3000,
        k: init.k ?? 3,
        q: init.q ?? 2,
      })
      const selection = selectExecutors({
        requestId: r.id,
        manifest: fns[name].manifest,
        limits: r.request,
        candidates,
        k: r.request.k,
      })
      if (accept(selection.chosen)) return { ...r, selection }
    }
    throw new Error('no nonce gives that selection')
  }

  async function post(r: Signed): Promise<{ status: number; body: InvokeReply }> {
    const res = await fetch(`${http(GATEWAY)}/v1/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request: requestToJSON(r.request) }),
    })
    const body = (await res.json()) as InvokeReply
    return { status: res.status, body }
  }

  /** Posts and checks the answer: `sum`, with a certificate anyone can verify, from the predicted executors. */
  async function expectSum(r: Signed, sum: number): Promise<InvokeReply> {
    const { status, body } = await post(r)
    assert.equal(status, 200, JSON.stringify(body).slice(0, 500))
    assert.equal((body.value as { sum: number }).sum, sum)
    const fn = Object.values(fns).find((f) => f.cid === r.request.fn)!
    const certificate = certificateFromJSON(body.certificate)
    verifyCertificate(certificate, { output: body.output, candidates, manifest: fn.manifest })
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
      const r = request('main', { args: [i, 40] })
      assert.deepEqual(new Set(r.selection.chosen), new Set(honest()))
      const body = await expectSum(r, 40 + i)
      assert.deepEqual(body.output.logs, ['adding'])
      assert.deepEqual(body.conflicts, [])
    }
    // Among four eligible nodes, k = 2 picks the two the rule says, whichever they are.
    for (let i = 0; i < 3; i++) {
      const r = request('bad-signature', { k: 2, q: 2 }, (chosen) =>
        chosen.every((p) => honest().includes(p)),
      )
      assert.equal(r.selection.ordered.length, 4)
      await expectSum(r, 5)
    }
  })

  for (const [kind, index] of [
    ['bad-signature', BADSIG],
    ['slow', SLOW],
    ['silent', SILENT],
  ] as const) {
    it(`returns the right value with a ${kind} executor among the three`, async () => {
      const r = request(kind, { args: [20, 1] }, (chosen) => chosen.includes(peer(index)))
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

  it('returns the right value with a wrong-result executor, and spreads the conflict evidence', async () => {
    const witnesses = [GATEWAY, H1, REFUSER]
    const before = await Promise.all(witnesses.map(conflictCounts))
    const r = request('wrong-result', { args: [7, 7] }, (chosen) => chosen.includes(peer(WR1)))
    const body = await expectSum(r, 14)
    for (const c of body.conflicts)
      assert.equal(verifyConflict(conflictFromJSON(c)).conflict.executor, peer(WR1))
    // Whether the forged receipt came before or after the quorum, the gateway keeps it, and the
    // other live nodes learn it.
    for (const [w, i] of witnesses.entries()) {
      const stored = await waitFor(`the conflict on node ${i}`, async () => {
        const res = await fetch(`${http(i)}/v1/conflicts?executor=${peer(WR1)}`)
        const list = (await res.json()).conflicts as Array<{
          conflict: { request: string }
          receivedAt: number
        }>
        return list.find((s) => s.conflict.request === r.id)
      })
      const conflict = verifyConflict(conflictFromJSON(stored.conflict)).conflict
      assert.equal(conflict.executor, peer(WR1))
      assert.equal(conflict.agreed.length, 2)
      // one more against the liar, none more against an honest executor
      const after = await conflictCounts(i)
      assert.equal(after.get(peer(WR1)), (before[w].get(peer(WR1)) ?? 0) + 1)
      assert.equal(after.get(peer(H0)), before[w].get(peer(H0)) ?? 0)
    }
  })

  it('stores reported conflict evidence once, and refuses evidence that does not verify', async () => {
    // Evidence of its own: three keys that signed receipts for one request, one of them lying.
    const [liar, ...agreeing] = await makeNodes(3)
    const { id } = createRequest(caller, { fn: fns.main.cid, export: 'add' })
    const sign = (n: TestNode, outputHash: string) =>
      signReceipt(n.key, { request: id, outputHash, fuel: 1, covenantVersion: 1, build: SANDBOX_BUILD })
    const conflict = {
      request: id,
      executor: liar.peer,
      receipt: sign(liar, 'b'.repeat(64)),
      agreedOutputHash: 'a'.repeat(64),
      agreed: agreeing.map((n) => sign(n, 'a'.repeat(64))),
    }
    const against = async () =>
      (await (await fetch(`${http(H1)}/v1/conflicts?executor=${liar.peer}`)).json()).conflicts as unknown[]
    const tampered = { ...conflict, agreedOutputHash: conflict.receipt.outputHash }
    await assert.rejects(
      prober.request(peer(H1), CONFLICT_PROTOCOL, { conflict: tampered }, { timeoutMs: 5000 }),
      (e: CovenantError) => e.code === 'INVALID_CONFLICT',
    )
    assert.deepEqual(await against(), [])
    // valid evidence is stored; reported again, it changes nothing
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await prober.request(peer(H1), CONFLICT_PROTOCOL, { conflict }, { timeoutMs: 5000 }), {
        ok: true,
      })
      const stored = await against()
      assert.equal(stored.length, 1)
      assert.equal(verifyConflict(conflictFromJSON((stored[0] as { conflict: unknown }).conflict)).ok, true)
    }
  })

  it('does not accept a value two colluding executors forged when q = k = 3: NO_QUORUM', async () => {
    const r = request('collude', { k: 3, q: 3 })
    assert.deepEqual(new Set(r.selection.ordered), new Set([peer(H0), peer(WR1), peer(WR2)]))
    const { status, body } = await post(r)
    assert.equal(status, 502)
    assert.equal(body.error?.code, 'NO_QUORUM')
    const details = body.error?.details as { outputHashes: Record<string, number>; receipts: unknown[] }
    assert.deepEqual(Object.values(details.outputHashes).sort(), [1, 2])
    assert.equal(details.receipts.length, 3)
    // the SDK says the same, and never hands out the forged value
    await assert.rejects(
      gateway.invoke(fns.collude.cid, 'add', [1, 1], { key: caller, replicas: 3, quorum: 3 }),
      (e: CovenantError) => e.code === 'NO_QUORUM',
    )
    // with q = 2 the two colluders are a quorum: the documented Sybil limit
    const forged = await post(request('collude'))
    assert.deepEqual(forged.body.value, FORGED_VALUE)
  })

  it('never chooses a node whose covenant disables execution or refuses the tag; they refuse if asked', async () => {
    const r = request('main')
    const excluded = new Map(r.selection.excluded.map((x) => [x.peer, x.reason]))
    assert.match(excluded.get(peer(GATEWAY)) ?? '', /does not execute/)
    assert.match(excluded.get(peer(REFUSER)) ?? '', /refuses tag "games"/)
    for (const i of [GATEWAY, REFUSER]) {
      await assert.rejects(
        prober.request(peer(i), EXEC_PROTOCOL, { request: r.request }, { timeoutMs: 5000 }),
        (e: CovenantError) => e.code === 'COVENANT_REFUSED',
      )
    }
    // Calls that ask every eligible executor of their function reach six nodes, never those two.
    const asked = new Set<string>()
    for (const [name, k] of [
      ['main', 3],
      ['bad-signature', 4],
      ['slow', 4],
      ['silent', 4],
    ] as const) {
      const { status, body } = await post(request(name, { k, q: 2 }))
      assert.equal(status, 200, JSON.stringify(body).slice(0, 500))
      for (const a of body.tried) asked.add(a.peer)
    }
    assert.deepEqual(asked, new Set([...HONEST, BADSIG, SLOW, SILENT].map(peer)))
  })

  it('returns FUEL_EXHAUSTED and MEMORY_LIMIT agreed by a quorum, and the executors keep serving', async () => {
    for (const [name, code, fuel] of [
      ['spin', 'FUEL_EXHAUSTED', 300],
      ['bomb', 'MEMORY_LIMIT', undefined],
    ] as const) {
      const { status, body } = await post(request('main', { export: name, args: [], fuel }))
      assert.equal(status, 200)
      assert.equal(body.output.error?.code, code)
      const certificate = certificateFromJSON(body.certificate)
      verifyCertificate(certificate, { output: body.output })
      assert.equal(certificate.receipts.length, 2)
      // through the SDK the agreed failure is a typed error carrying its certificate
      await assert.rejects(
        gateway.invoke(fns.main.cid, name, [], { key: caller, fuel }),
        (e: CovenantError) => {
          assert.equal(e.code, code)
          const { certificate } = e.details as { certificate: unknown }
          return verifyCertificate(certificateFromJSON(certificate)).ok
        },
      )
      await expectSum(request('main', { args: [1, 1] }), 2)
    }
  })

  it('SDK invoke returns a checked certificate and rejects a gateway that tampers with it', async () => {
    const result = await gateway.invoke(fns.main.cid, 'add', [3, 4], { key: caller })
    assert.equal((result.value as { sum: number }).sum, 7)
    assert.equal(verifyCertificate(result.certificate, { output: result.output }).ok, true)
    assert.equal(result.certificate.request.caller, keyId(caller))
    assert.ok(result.certificate.receipts.every((x) => honest().includes(x.executor)))

    // A gateway in the middle that rewrites honest answers in different ways.
    let previous: ReplyJSON | undefined
    const tamper: Record<string, (b: ReplyJSON) => unknown> = {
      value: (b) => ({ ...b, value: { sum: 8 }, output: { ...b.output, value: { sum: 8, r: 0 } } }),
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
    }
    let mode: string | undefined
    const proxy: Server = createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      const upstream = await fetch(`${http(GATEWAY)}${req.url}`, {
        method: req.method,
        headers: { 'content-type': 'application/json' },
        body: Buffer.concat(chunks),
      })
      const body = (await upstream.json()) as ReplyJSON
      res.writeHead(upstream.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(mode === undefined ? body : tamper[mode](body)))
      previous = body
    })
    await new Promise<void>((res) => proxy.listen(0, '127.0.0.1', res))
    try {
      const liar = await connect({ node: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` })
      // passed through untouched, it is accepted (and primes the replay)
      assert.equal(
        ((await liar.invoke(fns.main.cid, 'add', [1, 2], { key: caller })).value as { sum: number }).sum,
        3,
      )
      for (const m of Object.keys(tamper)) {
        mode = m
        await assert.rejects(
          liar.invoke(fns.main.cid, 'add', [3, 4], { key: caller }),
          (e: CovenantError) => e instanceof CovenantError && e.code === 'INVALID_CERTIFICATE',
          `tampering by ${m} was not caught`,
        )
      }
    } finally {
      await new Promise((res) => proxy.close(res))
    }
  })

  it('covenant call --json prints one object; a function error exits 1 without --json', async () => {
    const cli = (args: string[]) =>
      covenant(['call', fns.main.cid, ...args, '--node', http(GATEWAY), '--key', callerFile], {
        timeout: 60_000,
      })
    const { stdout } = await cli(['add', '5', '6', '--json'])
    const lines = stdout.trim().split('\n')
    assert.equal(lines.length, 1)
    const out = JSON.parse(lines[0])
    assert.equal(out.ok, true)
    assert.equal(out.value.sum, 11)
    assert.equal(typeof out.ms, 'number')
    assert.deepEqual(out.conflicts, [])
    assert.deepEqual(Object.keys(out.certificate).sort(), ['id', 'outputHash', 'receipts', 'request'])
    for (const key of ['executor', 'fuel', 'signature']) assert.ok(key in out.certificate.receipts[0])
    verifyCertificate(certificateFromJSON(out.certificate), {
      output: { value: out.value, logs: ['adding'] },
    })

    const failed = JSON.parse((await cli(['spin', '--fuel', '300', '--json'])).stdout)
    assert.equal(failed.ok, false)
    assert.equal(failed.error.code, 'FUEL_EXHAUSTED')
    verifyCertificate(certificateFromJSON(failed.certificate))

    await assert.rejects(
      cli(['spin', '--fuel', '300']),
      (e: { code: number; stderr: string; stdout: string }) => {
        assert.equal(e.code, 1)
        assert.equal(e.stdout, '')
        assert.match(e.stderr, /error FUEL_EXHAUSTED: /)
        assert.match(e.stderr, /hint: raise --fuel/)
        return true
      },
    )
  })

  // Last: the crash fault takes its node down for good.
  it('returns the right value with a crash executor among the three; the crashed node is gone', async () => {
    const r = request('crash', { args: [100, 1] }, (chosen) => chosen.includes(peer(CRASH)))
    await expectSum(r, 101)
    await waitFor('the crash node to exit', async () =>
      devnet.nodes[CRASH].process === undefined ? true : undefined,
    )
    await expectSum(request('main', { args: [1, 2] }), 3)
  })
})
