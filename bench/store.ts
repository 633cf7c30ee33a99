/**
 * Datastore benchmark on a 5-node local network (k = 3): read latency (through a holder and
 * through a node that holds nothing), and the latency and throughput of a commit that writes one
 * key, against a baseline in the same run: the same write through one fastify server to SQLite
 * (one transaction: read the head, insert the version, move the head), the same read from it.
 * Commits go through the SDK (which signs each one) to a node that is not a holder, which hands it
 * to the namespace's primary. Prints a table and writes bench/results/store-latest.json.
 *
 * The function-commit row (a certified run's write, the goal: within 3× the baseline's
 * p50) is a named slot, {@link functionCommitRow}, filled once function commits are wired.
 *
 *   npm run bench:store
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import Fastify from 'fastify'
import { connect, generateKey } from '../src/client/index.ts'
import { startDevnet } from '../src/devnet/index.ts'
import { freeBasePort } from '../test/fixtures/network.ts'
import { type Latency, latency, printTable, round, throughput, timeEach, writeResults } from './report.ts'

const READS = 200
const COMMITS = 100
const CONCURRENT_COMMITS = 120
const CONCURRENCY = 8

// --- the baseline: one fastify server writing to SQLite ----------------------------------------
const dir = await mkdtemp(join(tmpdir(), 'covenant-bench-store-'))
const db = new DatabaseSync(join(dir, 'baseline.db'))
db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
  CREATE TABLE kv (key TEXT NOT NULL, seq INTEGER NOT NULL, value TEXT, PRIMARY KEY (key, seq)) STRICT;
  CREATE TABLE head (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL) STRICT;
  INSERT INTO head VALUES (1, 0);`)
const headOf = db.prepare('SELECT seq FROM head WHERE id = 1')
const insert = db.prepare('INSERT INTO kv (key, seq, value) VALUES (?, ?, ?)')
const moveHead = db.prepare('UPDATE head SET seq = ? WHERE id = 1')
const latest = db.prepare('SELECT seq, value FROM kv WHERE key = ? ORDER BY seq DESC LIMIT 1')
const server = Fastify()
server.post('/write', async (req) => {
  const { key, value } = req.body as { key: string; value: unknown }
  db.exec('BEGIN IMMEDIATE')
  try {
    const seq = Number((headOf.get() as { seq: number }).seq) + 1
    insert.run(key, seq, JSON.stringify(value))
    moveHead.run(seq)
    db.exec('COMMIT')
    return { seq }
  } catch (err) {
    db.exec('ROLLBACK')
    throw err
  }
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

/**
 * The slot for a certified function's commit: run a function that writes one key (k = 3, q = 2)
 * and commit its certificate through the gateway. Function commits need exec's output to sign the
 * store effects and the holders' view-based certificate check, which are wired after this bench;
 * until then the row says so instead of a number.
 */
function functionCommitRow(): Record<string, unknown> {
  return { op: 'function commit (k=3, q=2, certified)', pending: 'function commits are not wired yet' }
}

// --- the network -------------------------------------------------------------------------------
const devnet = await startDevnet({
  dir: join(dir, 'devnet'),
  nodes: 5,
  basePort: await freeBasePort(10),
  logLevel: 'warn',
})
const results: Array<Record<string, unknown>> = []
const row = (
  op: string,
  covenant: Latency & { perSecond?: number },
  base: Latency & { perSecond?: number },
) => results.push({ op, covenant, baseline: base, ratioP50: round(covenant.p50 / base.p50, 1) })
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
  const commits = latency(await timeEach(COMMITS, (i) => viaOutsider.commit([{ key: 'counter', value: i }])))
  const baseWrites = latency(await timeEach(COMMITS, baselineWrite))
  row('key commit, 1 key (via a non-holder)', commits, baseWrites)

  const commitRate = await throughput(CONCURRENT_COMMITS, CONCURRENCY, (i) =>
    viaOutsider.commit([{ key: `k${i % 16}`, value: i }]),
  )
  const baseRate = await throughput(CONCURRENT_COMMITS, CONCURRENCY, baselineWrite)
  results.push({
    op: `key commits/s, ${CONCURRENCY} in flight`,
    covenant: { perSecond: round(commitRate, 1) },
    baseline: { perSecond: round(baseRate, 1) },
    ratio: round(baseRate / commitRate, 1),
  })

  const baseReads = latency(await timeEach(READS, baselineRead))
  row('read, via a holder', latency(await timeEach(READS, () => viaHolder.get('counter'))), baseReads)
  row('read, via a non-holder', latency(await timeEach(READS, () => viaOutsider.get('counter'))), baseReads)
  row(
    'read at a past version, via a holder',
    latency(await timeEach(READS, () => viaHolder.get('counter', { at: 5 }))),
    baseReads,
  )
  results.push(functionCommitRow())
} finally {
  await devnet.stop()
  await server.close()
  db.close()
  await rm(dir, { recursive: true, force: true })
}

printTable(
  ['op', 'n', 'p50 ms', 'p99 ms', 'per s', 'baseline p50 ms', 'baseline per s', '× baseline'],
  results.map((r) => {
    if (r.pending !== undefined) return [r.op, '', '', '', '', '', '', r.pending]
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
      r.ratioP50 ?? r.ratio,
    ]
  }),
)
console.log(`\nwrote ${await writeResults('store', { nodes: 5, replicas: 3, results })}`)
