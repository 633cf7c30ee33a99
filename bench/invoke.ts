/**
 * Invocation benchmark: latency (p50, p99) and throughput of certified calls on a 5-node local
 * network with k = 1 and with k = 3, q = 2, against a centralised baseline in the same run: one
 * fastify server that runs the same function in the same sandbox pool in-process and answers over
 * HTTP. The setups are measured interleaved (one call of each in turn; throughput in alternating
 * blocks), so a machine whose load changes during the run weighs on all of them alike. Also a
 * breakdown of where a call's time goes. The network runs twice, side by side: keeping no accounts
 * (the rows the goals are judged on) and keeping them (nodes and caller: the paid rows); the
 * difference of their calls through the gateway is what accounting costs a call. Prints tables and
 * writes bench/results/invoke-latest.json.
 *
 *   npm run bench:invoke
 *
 * The goals (issue 12) are ratios within one run: k = 3, q = 2 p50 ≤ 2× the baseline's, k = 1
 * p50 ≤ 1.5×, p99 ≤ 3× the baseline's p99, and k = 3 throughput with 8 calls in flight ≥ half of
 * the baseline's divided by 3.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { bundleFile } from '../src/bundle/index.ts'
import {
  type CovenantClient,
  certificateFromJSON,
  connect,
  loadCallerKey,
  verifyCertificate,
} from '../src/client/index.ts'
import { type Devnet, startDevnet } from '../src/devnet/index.ts'
import { createRequest, requestToJSON } from '../src/exec/index.ts'
import { createSandbox } from '../src/sandbox/index.ts'
import { freeBasePort } from '../test/fixtures/network.ts'
import { latency, printTable, round, writeResults } from './report.ts'

const SEQUENTIAL = 200
const CONCURRENT_CALLS = 120
const CONCURRENCY = 8
const THROUGHPUT_ROUNDS = 3
const BREAKDOWN_CALLS = 60
const started = performance.now()
const loadBefore = loadavg()

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

interface Setup {
  label: string
  call: () => Promise<unknown>
  samples: number[]
  calls: number
  seconds: number
}

/** One call of each setup in turn, `n` times; the order rotates so none always goes first. */
async function interleaved(setups: Setup[], n: number): Promise<void> {
  for (let i = 0; i < n; i++)
    for (let j = 0; j < setups.length; j++) {
      const s = setups[(i + j) % setups.length]
      const t = performance.now()
      await s.call()
      s.samples.push(performance.now() - t)
    }
}

/** `CONCURRENT_CALLS` calls with `CONCURRENCY` in flight, per setup in turn, `rounds` times. */
async function throughputs(setups: Setup[], rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r++)
    for (const s of setups) {
      let next = 0
      const t = performance.now()
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < CONCURRENT_CALLS) await s.call()
        }),
      )
      s.seconds += (performance.now() - t) / 1000
      s.calls += CONCURRENT_CALLS
    }
}

const setup = (label: string, call: () => Promise<unknown>): Setup => ({
  label,
  call,
  samples: [],
  calls: 0,
  seconds: 0,
})

// --- the network, twice: keeping no accounts, and keeping them (nodes and caller) --------------
const networks: Array<{ dir: string; devnet: Devnet }> = []
const clients: CovenantClient[] = []
const sandboxOnly: number[] = []
const breakdown: Record<string, Record<string, number>> = {}
const setups: Setup[] = [setup('baseline: one fastify server, same sandbox', callBaseline)]
let selected: Record<string, string[]> = {}
const callerRecordMs: number[] = []
/** per node of the paid network: its executor's accounting per call (admission to receipt), from /metrics */
const executorAccounting: Array<{ node: number; calls: number; p50Ms: number; p99Ms: number }> = []
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
    networks.push({ dir, devnet })
  }
  const [{ dir, devnet }, paidNet] = networks
  const open = async (options: {
    devnetDir: string
    paid?: boolean
    direct?: boolean
    executingGateway?: boolean
  }) => {
    const { paid, ...rest } = options
    // the caller's view comes from all five nodes, and it accepts k = q = 1
    const c = await connect({
      ...rest,
      trust: { minQuorum: 1 },
      payments: paid === true ? { ledgerDir: paidNet.dir } : false,
    })
    clients.push(c)
    return c
  }
  // Node 0 is the gateway.
  const client = await open({ devnetDir: devnet.dir })
  // The same caller sending each call to a node that executes it (over HTTP, as a browser can).
  const viaExecutor = await open({ devnetDir: devnet.dir, executingGateway: true })
  // The same caller in Node, calling the executors itself over libp2p (the view from all five too).
  const direct = await open({ devnetDir: devnet.dir, direct: true })
  // The same caller on the network that keeps accounts, with credit enough that no call waits for
  // a payment ahead: what is measured is accounting.
  const payer = await open({ devnetDir: paidNet.devnet.dir, paid: true })
  const key = await loadCallerKey(join(dir, 'caller.key'))
  const payerKey = await loadCallerKey(join(paidNet.dir, 'caller.key'))
  const { cid } = await client.deploy(code, { tags: ['bench'], key })
  const paidCid = (await payer.deploy(code, { tags: ['bench'], key: payerKey })).cid
  await payer.faucet(1_000_000_000, { key: payerKey })
  // the caller's part: recording its certificate in its ledger, just after `invoke` resolves
  // (timed synchronously: the SDK does it off the call's path, so its wall time is the next call's)
  const ledger = await payer.payments?.ledger(payerKey, false)
  if (ledger !== undefined) {
    const record = ledger.recordCertified.bind(ledger)
    ledger.recordCertified = (...args) => {
      const t = performance.now()
      const charged = record(...args)
      callerRecordMs.push(performance.now() - t)
      return charged
    }
  }
  const manifest = await client.manifest(cid)
  const nodeIndex = (peer: string) => devnet.nodes.findIndex((n) => n.peerId === peer)
  const configs = [
    { k: 1, q: 1 },
    { k: 3, q: 2 },
  ]
  for (const { k, q } of configs)
    setups.push(
      setup(`network k=${k} q=${q} (through the gateway)`, () =>
        client.invoke(cid, 'greet', ARGS, { replicas: k, quorum: q, key }),
      ),
    )
  for (const { k, q } of configs)
    setups.push(
      setup(`network k=${k} q=${q} (an executor as the gateway)`, () =>
        viaExecutor.invoke(cid, 'greet', ARGS, { replicas: k, quorum: q, key }),
      ),
    )
  for (const { k, q } of configs)
    setups.push(
      setup(`network k=${k} q=${q} (Node SDK, direct)`, () =>
        direct.invoke(cid, 'greet', ARGS, { replicas: k, quorum: q, key }),
      ),
    )
  for (const { k, q } of configs)
    setups.push(
      setup(`network k=${k} q=${q} (through the gateway, paid)`, () =>
        payer.invoke(paidCid, 'greet', ARGS, { replicas: k, quorum: q, key: payerKey }),
      ),
    )
  // warm: code fetched and cached on the executors, sessions open, pools started
  for (const s of setups) for (let i = 0; i < 20; i++) await s.call()
  selected = Object.fromEntries(
    await Promise.all(
      configs.map(async ({ k, q }) => {
        const r = await client.invoke(cid, 'greet', ARGS, { replicas: k, quorum: q, key })
        return [`k=${k} q=${q}`, r.tried.map((a) => `node ${nodeIndex(a.peer)}: ${a.outcome}`)]
      }),
    ),
  )
  await interleaved(setups, SEQUENTIAL)
  await throughputs(setups, THROUGHPUT_ROUNDS)
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t = performance.now()
    await sandbox.run({ code, exportName: 'greet', args: ARGS, seed: 'x', now: Date.now() })
    sandboxOnly.push(performance.now() - t)
  }

  // Where the time goes: raw calls that time each client step and read the gateway's
  // Server-Timing header (its own stages) and `tried` (each executor's round trip).
  for (const { k, q } of configs) {
    const steps: Record<string, number[]> = {}
    const add = (step: string, ms: number) => {
      steps[step] ??= []
      steps[step].push(ms)
    }
    for (let i = 0; i < BREAKDOWN_CALLS; i++) {
      let t = performance.now()
      const { request } = createRequest(key, { fn: cid, export: 'greet', args: ARGS, k, q })
      add('client: sign the request', performance.now() - t)
      t = performance.now()
      const res = await fetch(`${devnet.nodes[0].http}/v1/invoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ request: requestToJSON(request), trust: { minQuorum: 1 } }),
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
      add('  of which the slowest agreeing executor (round trip as the gateway saw it)', executor)
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
    table['sandbox run alone (same pool, in-process, for scale)'] = latency(sandboxOnly).p50
    breakdown[`k=${k} q=${q}`] = table
  }
  await payer.settle({ key: payerKey })
  for (const node of paidNet.devnet.nodes) {
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
} finally {
  for (const c of clients) await c.close()
  for (const { dir, devnet } of networks) {
    await devnet.stop()
    await rm(dir, { recursive: true, force: true })
  }
  await server.close()
  await sandbox.stop()
}

const base = setups[0]
const baseLatency = latency(base.samples)
const baseCps = base.calls / base.seconds
const rows = setups.map((s) => ({ label: s.label, latency: latency(s.samples), cps: s.calls / s.seconds }))
console.log(
  `\nlatency (${SEQUENTIAL} calls each, interleaved) and throughput (${CONCURRENCY} in flight, ${THROUGHPUT_ROUNDS} × ${CONCURRENT_CALLS} calls each); load average ${loadBefore.map((x) => x.toFixed(1)).join(' ')} before, ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} after`,
)
printTable(
  ['setup', 'p50 ms', 'p99 ms', 'calls/s', 'p50 / base', 'p99 / base', 'calls/s / (base/3)'],
  rows.map((r) => [
    r.label,
    r.latency.p50,
    r.latency.p99,
    r.cps,
    r.latency.p50 / baseLatency.p50,
    r.latency.p99 / baseLatency.p99,
    r.cps / (baseCps / 3),
  ]),
)
// What accounting costs a call: paid − no payment, through the gateway, calls interleaved.
const overhead: Record<string, { p50Ms: number; meanMs: number }> = {}
for (const k of ['k=1 q=1', 'k=3 q=2']) {
  const free = rows.find((r) => r.label === `network ${k} (through the gateway)`)
  const paid = rows.find((r) => r.label === `network ${k} (through the gateway, paid)`)
  if (free !== undefined && paid !== undefined)
    overhead[k] = {
      p50Ms: round(paid.latency.p50 - free.latency.p50),
      meanMs: round(paid.latency.mean - free.latency.mean),
    }
}
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
console.log(
  "\nend to end: paid − no payment, through the gateway, calls interleaved (ms per call; the machine's noise included)",
)
printTable(
  ['setup', 'p50', 'mean'],
  Object.entries(overhead).map(([setup, o]) => [setup, o.p50Ms, o.meanMs]),
)
for (const [config, who] of Object.entries(selected))
  console.log(`executors asked, ${config}: ${who.join(', ')}`)
for (const [config, steps] of Object.entries(breakdown)) {
  console.log(`\nwhere the time goes, ${config} through the gateway (p50 ms of each step)`)
  printTable(['step', 'p50 ms'], Object.entries(steps))
}
const file = await writeResults('invoke', {
  nodes: 5,
  function: 'examples/hello.ts greet',
  sequential: SEQUENTIAL,
  concurrentCalls: CONCURRENT_CALLS,
  concurrency: CONCURRENCY,
  throughputRounds: THROUGHPUT_ROUNDS,
  loadBefore,
  baseline: { latency: baseLatency, callsPerSecond: baseCps, sandboxRun: latency(sandboxOnly) },
  setups: rows.map((r) => ({
    ...r,
    p50Ratio: round(r.latency.p50 / baseLatency.p50),
    p99Ratio: round(r.latency.p99 / baseLatency.p99),
    throughputRatio: round(r.cps / (baseCps / 3)),
  })),
  selected,
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
