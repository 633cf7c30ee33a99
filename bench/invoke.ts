/**
 * Invocation benchmark: latency (p50, p99) and throughput of calls on a 5-node local network with
 * k = 1 and with k = 3, q = 2, against a centralised baseline in the same run: one fastify server
 * that runs the same function in the same sandbox pool in-process and answers over HTTP. Also a
 * breakdown of where a networked call's time goes. The network runs twice, side by side, calls
 * alternating: nodes and caller keeping accounts (paid) and keeping none; their difference is what
 * accounting costs a call. Prints tables and writes
 * bench/results/invoke-latest.json.
 *
 *   npm run bench:invoke
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { bundleFile } from '../src/bundle/index.ts'
import { certificateFromJSON, connect, loadCallerKey, verifyCertificate } from '../src/client/index.ts'
import { startDevnet } from '../src/devnet/index.ts'
import { createRequest, requestToJSON } from '../src/exec/index.ts'
import { createSandbox } from '../src/sandbox/index.ts'
import { freeBasePort } from '../test/fixtures/network.ts'
import { type Latency, latency, printTable, round, throughput, timeEach, writeResults } from './report.ts'

const SEQUENTIAL = 60
const CONCURRENT_CALLS = 120
const CONCURRENCY = 8
const started = performance.now()

const { code } = await bundleFile(new URL('../examples/hello.ts', import.meta.url).pathname)
const ARGS = ['Ada']

// --- the centralised baseline: one server, the same function, the same sandbox pool ---------
const sandbox = createSandbox({ workers: 2 })
const server = Fastify()
server.post('/run', async (req) => {
  const { args } = req.body as { args: unknown[] }
  const r = await sandbox.run({
    code,
    exportName: 'greet',
    args,
    seed: String(Math.random()),
    now: Date.now(),
  })
  if (!r.ok) throw new Error(r.error.message)
  return { value: r.value, fuel: r.fuel }
})
const baseUrl = await server.listen({ host: '127.0.0.1', port: 0 })
const callBaseline = async () => {
  const res = await fetch(`${baseUrl}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args: ARGS }),
  })
  if (!res.ok) throw new Error(`baseline answered ${res.status}`)
  return res.json()
}
await timeEach(10, callBaseline)
const baseLatency = latency(await timeEach(SEQUENTIAL, callBaseline))
const baseCps = await throughput(CONCURRENT_CALLS, CONCURRENCY, callBaseline)
const sandboxOnly = latency(
  await timeEach(SEQUENTIAL, () =>
    sandbox.run({ code, exportName: 'greet', args: ARGS, seed: 'x', now: Date.now() }),
  ),
)
await server.close()
await sandbox.stop()

// --- the network, twice: accounts kept (nodes and caller), and none kept ----------------------
// Both devnets run side by side and their calls alternate, one each in turn, so the load of the
// machine (shared, 2 cores) falls on both alike: the difference of their p50 is what accounting
// costs a call — the executors' admission and receipt hold, and the caller's recording and
// settling (which run after each call returns, in the same process, competing for its CPU).
interface Setup {
  paid: boolean
  dir: string
  devnet: Awaited<ReturnType<typeof startDevnet>>
  client: Awaited<ReturnType<typeof connect>>
  key: Awaited<ReturnType<typeof loadCallerKey>>
  cid: string
}
const setups: Setup[] = []
const rows: Array<{ label: string; latency: Latency; cps: number }> = []
const overhead: Record<string, { p50Ms: number; meanMs: number }> = {}
const breakdown: Record<string, Record<string, number>> = {}
const callerRecordMs: number[] = []
/** per node of the paid network: its executor's accounting per call (admission to receipt), from /metrics */
const executorAccounting: Array<{ node: number; calls: number; p50Ms: number; p99Ms: number }> = []
const label = (s: Setup, k: number, q: number) => `network k=${k} q=${q}, ${s.paid ? 'paid' : 'no payment'}`
try {
  for (const paid of [false, true]) {
    const dir = await mkdtemp(join(tmpdir(), 'covenant-bench-invoke-'))
    const devnet = await startDevnet({
      dir,
      nodes: 5,
      basePort: await freeBasePort(10),
      logLevel: 'warn',
      payments: { enabled: paid },
    })
    // Node 0 is the gateway; the caller's view comes from all five, and it accepts k = q = 1.
    const client = await connect({
      devnetDir: devnet.dir,
      trust: { minQuorum: 1 },
      payments: paid ? { ledgerDir: dir } : false,
    })
    const key = await loadCallerKey(join(dir, 'caller.key'))
    const setup: Setup = { paid, dir, devnet, client, key, cid: '' }
    setups.push(setup)
    setup.cid = (await client.deploy(code, { tags: ['bench'], key })).cid
    // credit enough that no call waits for a payment ahead: what is measured is accounting
    if (paid) await client.faucet(1_000_000_000, { key })
    // the caller's part: recording its certificate in its ledger, just after `invoke` resolves
    // (timed synchronously: the SDK does it off the call's path, so its wall time is the next call's)
    const ledger = await client.payments?.ledger(key, false)
    if (ledger !== undefined) {
      const record = ledger.recordCertified.bind(ledger)
      ledger.recordCertified = (...args) => {
        const t = performance.now()
        const charged = record(...args)
        callerRecordMs.push(performance.now() - t)
        return charged
      }
    }
  }
  const [free, paid] = setups

  for (const { k, q } of [
    { k: 1, q: 1 },
    { k: 3, q: 2 },
  ]) {
    const call = (s: Setup) => () =>
      s.client.invoke(s.cid, 'greet', ARGS, { replicas: k, quorum: q, key: s.key })
    for (const s of setups) await timeEach(10, call(s)) // warm: code fetched and cached on the executors
    const samples = new Map<Setup, number[]>(setups.map((s) => [s, []]))
    for (let i = 0; i < SEQUENTIAL; i++)
      for (const s of i % 2 === 0 ? setups : [...setups].reverse())
        samples.get(s)?.push(...(await timeEach(1, call(s))))
    for (const s of setups)
      rows.push({
        label: label(s, k, q),
        latency: latency(samples.get(s) ?? []),
        cps: await throughput(CONCURRENT_CALLS, CONCURRENCY, call(s)),
      })
    const [a, b] = [latency(samples.get(free) ?? []), latency(samples.get(paid) ?? [])]
    overhead[`k=${k} q=${q}`] = { p50Ms: round(b.p50 - a.p50), meanMs: round(b.mean - a.mean) }
    await paid.client.settle({ key: paid.key })

    // Where the time goes (on the network that keeps accounts): raw calls that time each client
    // step and read the gateway's Server-Timing header (its own stages) and `tried` (each
    // executor's round trip).
    const { client, key, cid, devnet } = paid
    const manifest = await client.manifest(cid)
    const steps: Record<string, number[]> = {}
    const add = (step: string, ms: number) => {
      steps[step] ??= []
      steps[step].push(ms)
    }
    for (let i = 0; i < 40; i++) {
      let t = performance.now()
      const { request } = createRequest(key, { fn: cid, export: 'greet', args: ARGS, k, q })
      add('client: sign the request', performance.now() - t)
      t = performance.now()
      const res = await fetch(`${devnet.nodes[0].http}/v1/invoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ request: requestToJSON(request) }),
      })
      const body = (await res.json()) as {
        certificate: unknown
        output: { json: string; logs: string[]; error: null }
        tried: Array<{ outcome: string; ms: number }>
      }
      const roundTrip = performance.now() - t
      const server: Record<string, number> = {}
      for (const part of (res.headers.get('server-timing') ?? '').split(',')) {
        const m = /^\s*(\w+);dur=([\d.]+)/.exec(part)
        if (m !== null) server[m[1]] = Number(m[2])
      }
      const executor = Math.max(...body.tried.filter((a) => a.outcome === 'agreed').map((a) => a.ms))
      add('gateway: parse and verify the request', server.request)
      add('gateway: load the manifest (cached)', server.manifest)
      add('gateway: select, send, collect q receipts', server.quorum)
      add(
        '  of which the slowest agreeing executor (libp2p round trip + checks + sandbox + receipt)',
        executor,
      )
      add('gateway: encode the answer', server.answer)
      const inGateway = server.request + server.manifest + server.quorum + server.answer
      add('HTTP, fastify and JSON between client and gateway', roundTrip - inGateway)
      const view = await client.view()
      t = performance.now()
      verifyCertificate(certificateFromJSON(body.certificate), {
        view,
        manifest,
        output: body.output,
        minQuorum: 1,
      })
      add('client: verify the certificate against its view', performance.now() - t)
    }
    const table: Record<string, number> = {}
    for (const [step, xs] of Object.entries(steps)) table[step] = latency(xs).p50
    table['sandbox run alone (same pool, in-process, for scale)'] = sandboxOnly.p50
    breakdown[`k=${k} q=${q}`] = table
  }
  for (const node of paid.devnet.nodes) {
    const text = await (await fetch(`${node.http}/metrics`)).text()
    const read = (pattern: string) =>
      Number(
        new RegExp(`^covenant_exec_accounting_seconds${pattern} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN,
      )
    executorAccounting.push({
      node: node.index,
      calls: read('_count'),
      p50Ms: round(read('\\{quantile="0.5"\\}') * 1000),
      p99Ms: round(read('\\{quantile="0.99"\\}') * 1000),
    })
  }
  for (const s of setups) await s.client.close()
} finally {
  for (const s of setups) {
    await s.devnet.stop()
    await rm(s.dir, { recursive: true, force: true })
  }
}

console.log('\nlatency and throughput (ms, calls/s)')
printTable(
  ['setup', 'n', 'p50', 'p99', 'calls/s', 'p50 / baseline', 'calls/s / baseline'],
  [
    [
      'baseline: one fastify server, same sandbox',
      baseLatency.n,
      baseLatency.p50,
      baseLatency.p99,
      baseCps,
      1,
      1,
    ],
    ...rows.map((r) => [
      r.label,
      r.latency.n,
      r.latency.p50,
      r.latency.p99,
      r.cps,
      r.latency.p50 / baseLatency.p50,
      r.cps / baseCps,
    ]),
  ],
)
const callerRecord = latency(callerRecordMs)
// executors run a call in parallel: the one on its path is one executor's accounting (nodes that
// ran a handful of calls, cold, are left out of the figure but shown)
const executorP50 = Math.max(...executorAccounting.filter((e) => e.calls >= 20).map((e) => e.p50Ms))
console.log('\naccounting per call, paid network (ms, measured where it runs)')
printTable(
  ['part', 'calls', 'p50', 'p99'],
  [
    ...executorAccounting.map((e) => [
      `on the path: executor node ${e.node}, admit + signed/release`,
      e.calls,
      e.p50Ms,
      e.p99Ms,
    ]),
    ['after the call: caller records the certificate', callerRecord.n, callerRecord.p50, callerRecord.p99],
    ["on a call's path: executor p50 (nodes with ≥ 20 calls, the slowest)", '', executorP50, ''],
    ['all of it: executor p50 + caller p50', '', round(executorP50 + callerRecord.p50), ''],
  ],
)
console.log("\nend to end: paid − no payment, calls alternating (ms per call; the machine's noise included)")
printTable(
  ['setup', 'p50', 'mean'],
  Object.entries(overhead).map(([setup, o]) => [setup, o.p50Ms, o.meanMs]),
)
for (const [setup, steps] of Object.entries(breakdown)) {
  console.log(`\nwhere the time goes, ${setup} (p50 ms of each step)`)
  printTable(['step', 'p50 ms'], Object.entries(steps))
}
const file = await writeResults('invoke', {
  nodes: 5,
  function: 'examples/hello.ts greet',
  sequential: SEQUENTIAL,
  concurrentCalls: CONCURRENT_CALLS,
  concurrency: CONCURRENCY,
  baseline: { latency: baseLatency, callsPerSecond: baseCps, sandboxRun: sandboxOnly },
  network: rows,
  accountingOverhead: {
    executors: executorAccounting,
    callerRecordAfterCall: callerRecord,
    onPathP50Ms: executorP50,
    allP50Ms: round(executorP50 + callerRecord.p50),
    endToEnd: overhead,
  },
  breakdown,
  totalMs: round(performance.now() - started),
})
console.log(`\nwrote ${file} (${((performance.now() - started) / 1000).toFixed(1)} s)`)
