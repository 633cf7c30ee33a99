/**
 * Datastore benchmark on a 5-node local network (k = 3): read latency (through a holder and
 * through a node that holds nothing), and the latency and throughput of a commit that writes one
 * key, against a baseline in the same run: the same write through one fastify server to SQLite
 * (one transaction: read the head, insert the version, move the head), the same read from it.
 * Commits go through the SDK (which signs each one) to a node that is not a holder, which hands it
 * to the namespace's primary. Prints a table and writes bench/results/store-latest.json.
 *
 * The function-commit rows (a certified run's write, the issue's goal: within 3× the baseline's
 * p50): a function that writes one key, run by k = 3 executors, q = 2 agreeing, its certificate
 * committed by the gateway on the namespace's holders, called through the SDK (which signs the
 * request and checks the certificate against a view from every node); its throughput with 8
 * calls in flight; the guestbook's `sign` (two reads at the versions the request fixes, three
 * writes); and where the time goes: the gateway's Server-Timing stages, and the namespace
 * primary's (its lock, prepare, the other holders' check and append rounds, its own apply) from
 * every node's `covenant_store_commit_stage_seconds`.
 *
 * The floor rows (bench/floor.ts): the steps the design requires on a certified commit's critical
 * path, each done alone by the fastest real implementation at hand, timed in this run beside the
 * baseline: each step alone and within one sequential pipeline, their sums, and the lowest sum
 * over the baseline's p50. If that ratio is above the goal's 3×, no implementation of the design
 * meets the goal on this machine.
 *
 *   npm run bench:store
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { setUpGuestbook } from '../examples/guestbook/setup.ts'
import { invokeRoute } from '../src/api/index.ts'
import { connect, generateKey } from '../src/client/index.ts'
import { startDevnet } from '../src/devnet/index.ts'
import { createRequest, epochOf, mintTicket, requestToJSON } from '../src/exec/index.ts'
import { keyId } from '../src/keys/index.ts'
import { freeBasePort } from '../test/fixtures/network.ts'
import { baselineStore, type CommitFloor, commitFloor } from './floor.ts'
import { type Latency, latency, printTable, round, throughput, timeEach, writeResults } from './report.ts'

const READS = 200
const COMMITS = 100
const CONCURRENT_COMMITS = 120
const CONCURRENCY = 8

// --- the baseline: one fastify server writing to SQLite ----------------------------------------
const dir = await mkdtemp(join(tmpdir(), 'covenant-bench-store-'))
const { db, write } = baselineStore(join(dir, 'baseline.db'))
const latest = db.prepare('SELECT seq, value FROM kv WHERE key = ? ORDER BY seq DESC LIMIT 1')
const server = Fastify()
server.post('/write', async (req) => {
  const { key, value } = req.body as { key: string; value: unknown }
  return { seq: write(key, value) }
})
server.get('/read/:key', async (req) => {
  const row = latest.get((req.params as { key: string }).key) as { seq: number; value: string } | undefined
  return { value: row === undefined ? null : JSON.parse(row.value), version: row?.seq ?? 0 }
})
const baseUrl = await server.listen({ host: '127.0.0.1', port: 0 })
const baselineWrite = async (i: number) => {
  const res = await fetch(`${baseUrl}/write`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key: `k${i % 16}`, value: i }),
  })
  if (!res.ok) throw new Error(`baseline answered ${res.status}`)
  return res.json()
}
const baselineRead = async () => (await fetch(`${baseUrl}/read/counter`)).json()

/** A function that writes one key and reads nothing: a blind write, certified. */
const WRITE_ONE = 'export function put(ns, key, value, ctx) { ctx.store.put(ns, key, value); return value }\n'

/** p50 of each stage the gateway's Server-Timing header names (`stage;dur=ms`), over `headers`. */
function stages(headers: readonly string[]): Record<string, number> {
  const by = new Map<string, number[]>()
  for (const h of headers)
    for (const part of h.split(',')) {
      const m = /^\s*(\w+);dur=([\d.]+)/.exec(part)
      if (m !== null) by.set(m[1], [...(by.get(m[1]) ?? []), Number(m[2])])
    }
  return Object.fromEntries([...by].map(([stage, ms]) => [stage, latency(ms).p50]))
}

/** Seconds and commits so far per stage of `kind`'s commits on the primaries, from every node's /metrics. */
async function primaryStages(
  nodes: readonly { http: string }[],
  kind: string,
): Promise<Map<string, [number, number]>> {
  const totals = new Map<string, [number, number]>()
  const line = /^covenant_store_commit_stage_seconds_(sum|count)\{([^}]*)\} ([\d.e+-]+)$/
  for (const node of nodes)
    for (const text of (await (await fetch(`${node.http}/metrics`)).text()).split('\n')) {
      const m = line.exec(text)
      if (m === null || !m[2].includes(`kind="${kind}"`)) continue
      const stage = /stage="(\w+)"/.exec(m[2])?.[1] ?? '?'
      const [sum, count] = totals.get(stage) ?? [0, 0]
      totals.set(stage, m[1] === 'sum' ? [sum + Number(m[3]), count] : [sum, count + Number(m[3])])
    }
  return totals
}

/** The mean ms of each primary stage of `kind`'s commits made while `during` ran. */
async function primaryStagesOf(
  nodes: readonly { http: string }[],
  kind: string,
  during: () => Promise<unknown>,
): Promise<Record<string, number>> {
  const before = await primaryStages(nodes, kind)
  await during()
  const after = await primaryStages(nodes, kind)
  return Object.fromEntries(
    [...after].map(([stage, [sum, count]]) => {
      const [sum0, count0] = before.get(stage) ?? [0, 0]
      return [stage, count > count0 ? round(((sum - sum0) / (count - count0)) * 1000, 2) : 0]
    }),
  )
}

// --- the network -------------------------------------------------------------------------------
const devnet = await startDevnet({
  dir: join(dir, 'devnet'),
  nodes: 5,
  basePort: await freeBasePort(10),
  logLevel: 'warn',
})
const results: Array<Record<string, unknown>> = []
let floor: CommitFloor | undefined
const row = (
  op: string,
  covenant: Latency & { perSecond?: number },
  base: Latency & { perSecond?: number },
) => results.push({ op, covenant, baseline: base, ratioP50: round(covenant.p50 / base.p50, 1) })
/** Commits per second with {@link CONCURRENCY} in flight, against the baseline's. */
const rateRow = (what: string, perSecond: number, base: number) =>
  results.push({
    op: `${what}/s, ${CONCURRENCY} in flight`,
    covenant: { perSecond: round(perSecond, 1) },
    baseline: { perSecond: round(base, 1) },
    ratio: round(base / perSecond, 1),
  })
try {
  const owner = await generateKey()
  const first = await connect({ node: devnet.nodes[0].http })
  const { ns, holders } = await first.createStore('bench', { public: true, key: owner })
  const holder = devnet.nodes.find((n) => holders.includes(n.peerId))!
  const outsider = devnet.nodes.find((n) => !holders.includes(n.peerId))!
  const viaHolder = (await connect({ node: holder.http })).store(ns, { key: owner })
  const viaOutsider = (await connect({ node: outsider.http })).store(ns, { key: owner })
  await viaOutsider.commit([{ key: 'counter', value: 0 }])
  await baselineWrite(0)

  // warm both paths, then measure
  await timeEach(10, (i) => viaOutsider.commit([{ key: 'counter', value: i }]))
  await timeEach(10, baselineWrite)
  let keyTimes: number[] = []
  const keyStages = await primaryStagesOf(devnet.nodes, 'key', async () => {
    keyTimes = await timeEach(COMMITS, (i) => viaOutsider.commit([{ key: 'counter', value: i }]))
  })
  const commits = latency(keyTimes)
  const baseWrites = latency(await timeEach(COMMITS, baselineWrite))
  row('key commit, 1 key (via a non-holder)', commits, baseWrites)
  // the floor of a certified commit, beside the baseline it is held to
  floor = await commitFloor({ code: WRITE_ONE, exportName: 'put', baselineP50: baseWrites.p50 })

  const commitRate = await throughput(CONCURRENT_COMMITS, CONCURRENCY, (i) =>
    viaOutsider.commit([{ key: `k${i % 16}`, value: i }]),
  )
  const baseRate = await throughput(CONCURRENT_COMMITS, CONCURRENCY, baselineWrite)
  rateRow('key commits', commitRate, baseRate)

  const baseReads = latency(await timeEach(READS, baselineRead))
  row('read, via a holder', latency(await timeEach(READS, () => viaHolder.get('counter'))), baseReads)
  row('read, via a non-holder', latency(await timeEach(READS, () => viaOutsider.get('counter'))), baseReads)
  row(
    'read at a past version, via a holder',
    latency(await timeEach(READS, () => viaHolder.get('counter', { at: 5 }))),
    baseReads,
  )

  // --- function commits: certified runs whose writes the gateway commits ----------------------
  const net = await connect({ nodes: devnet.nodes.map((n) => n.http) })
  const caller = await generateKey()
  const publisher = await generateKey()
  const { cid: fn } = await net.deploy(WRITE_ONE, { key: publisher, exports: ['put'] })
  const { ns: fnNs } = await net.createStore('bench-fn', { public: true, key: owner })
  const grant = await net.grant({
    namespace: fnNs,
    audience: { fn },
    expiresAt: Date.now() + 86_400_000,
    key: owner,
  })
  await net.store(fnNs, { key: owner }).keepGrants([grant])
  const put = (i: number) => net.invoke(fn, 'put', [fnNs, `k${i % 16}`, i], { key: caller })
  await timeEach(10, put)
  const fnCommits = latency(await timeEach(COMMITS, put))
  row('function commit, 1 key (k=3, q=2, certified)', fnCommits, baseWrites)
  const fnRate = await throughput(CONCURRENT_COMMITS, CONCURRENCY, put)
  rateRow('function commits', fnRate, baseRate)
  // the guestbook: two reads at the versions fixed from the head, three writes; one author key per
  // call keeps the rate limit out of the way
  const book = await setUpGuestbook(net, owner, { name: 'bench-guestbook' })
  const authors = await Promise.all(Array.from({ length: 25 }, () => generateKey()))
  // each author's ticket for the hour, minted before the clock runs (a caller mints one an hour)
  const tickets = authors.map((a) => mintTicket(keyId(a), epochOf(Date.now())))
  const signBook = (i: number) =>
    net.invoke(book.fn, 'sign', [book.ns, 'Bench', `entry ${i}`], {
      stores: [book.ns],
      key: authors[i],
      ticket: tickets[i],
    })
  await timeEach(5, (i) => signBook(20 + i))
  row('guestbook sign: 2 reads, 3 writes (certified)', latency(await timeEach(20, signBook)), baseWrites)
  // where a function commit's time goes: the gateway's stages, over requests sent as the SDK does
  const timings: string[] = []
  const gateway = devnet.nodes[0].http
  const fnStages = await primaryStagesOf(devnet.nodes, 'function', () =>
    timeEach(30, async (i) => {
      const { request } = createRequest(caller, { fn, export: 'put', args: [fnNs, `t${i % 16}`, i] })
      const res = await fetch(`${gateway}${invokeRoute.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ request: requestToJSON(request) }),
      })
      await res.json()
      timings.push(res.headers.get('server-timing') ?? '')
    }),
  )
  results.push({ op: 'function commit: gateway stages, p50 ms', stages: stages(timings) })
  results.push({ op: 'function commit: primary stages, mean ms', stages: fnStages })
  results.push({ op: 'key commit: primary stages, mean ms', stages: keyStages })
  for (const { step, alone, inPipeline, parts } of floor.steps)
    results.push({
      op: `floor: ${step}`,
      covenant: alone,
      baseline: {},
      note: `alone${
        parts === undefined
          ? ''
          : ` (${Object.entries(parts)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')})`
      }; p50 ${inPipeline.p50} in the pipeline`,
    })
  const sumRow = (op: string, p50: number) =>
    results.push({ op, covenant: { p50 }, baseline: baseWrites, ratioP50: round(p50 / baseWrites.p50, 2) })
  sumRow("floor: sum of the steps' p50s, each alone", floor.sumAlone)
  sumRow("floor: sum of the steps' p50s in the pipeline", floor.sumInPipeline)
  row('floor: the whole pipeline, per commit', floor.pipeline, baseWrites)
  sumRow('floor of a certified commit (the lowest of the three)', floor.floorP50)
  sumRow(
    `floor, checks as bare Ed25519 (verify ${floor.bareSignatures.verifyP50}, sign ${floor.bareSignatures.signP50})`,
    floor.bareSignatures.floorP50,
  )
} finally {
  await devnet.stop()
  await server.close()
  db.close()
  await rm(dir, { recursive: true, force: true })
}

printTable(
  ['op', 'n', 'p50 ms', 'p99 ms', 'per s', 'baseline p50 ms', 'baseline per s', '× baseline'],
  results.map((r) => {
    if (r.stages !== undefined)
      return [
        r.op,
        '',
        '',
        '',
        '',
        '',
        '',
        Object.entries(r.stages as Record<string, number>)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      ]
    const c = r.covenant as Latency & { perSecond?: number }
    const b = r.baseline as Latency & { perSecond?: number }
    return [
      r.op,
      c.n ?? '',
      c.p50 ?? '',
      c.p99 ?? '',
      c.perSecond ?? '',
      b.p50 ?? '',
      b.perSecond ?? '',
      r.ratioP50 ?? r.ratio ?? r.note,
    ]
  }),
)
console.log(`\nwrote ${await writeResults('store', { nodes: 5, replicas: 3, results, floor })}`)
