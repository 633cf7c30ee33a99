/**
 * Jobs benchmark on a 5-node local network (keepers k = 3, each attempt k = 3, q = 2), against a
 * baseline in the same run: the same work through a single-node SQLite-backed queue (one fastify
 * server taking jobs into a table, eight workers claiming them one at a time and running the same
 * function in the same sandbox pool, in-process). Measures:
 *
 * - drain: `JOBS` jobs (default 10 000) are enqueued through HTTP, all due at one instant `T`
 *   after the last is in; the time from `T` until the last of them has committed;
 * - enqueue → commit: jobs due at once, enqueued one after another, each waited for; the time from
 *   the record's creation to its committed state (both clocks on this machine);
 * - a keeper's death: jobs whose dispatcher is killed (SIGKILL) or hangs (SIGSTOP) shortly before
 *   they are due; how late after `runAfter` the next keeper starts them.
 *
 * - the floor (bench/floor.ts), right after the baseline: the work the design requires to drain
 *   the same jobs certified at k = 3 (three sandbox runs, the executors' request checks and
 *   receipt signatures, the dispatcher's check of q = 2 receipts, a durable SQLite write at each
 *   of three keepers), done in this process with nothing else, on the baseline's sandbox and on
 *   the devnet's (the latter on at most `FLOOR_DEVNET_JOBS` jobs, its drain taken at its rate).
 *   If the floor's drain is above 3× the baseline's, no implementation of the design meets the
 *   goal on this machine.
 *
 * Prints tables and writes bench/results/jobs-latest.json.
 *
 *   npm run bench:jobs              (JOBS=1000 npm run bench:jobs for a shorter run)
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import * as dagCbor from '@ipld/dag-cbor'
import Fastify from 'fastify'
import {
  enqueueJobRoute,
  type JobSummary,
  type ListJobsReply,
  listJobsRoute,
  metricsRoute,
  type PeerInfo,
  peersRoute,
} from '../src/api/index.ts'
import { bundleFile } from '../src/bundle/index.ts'
import { type CovenantClient, connect, loadCallerKey } from '../src/client/index.ts'
import { closestPeers } from '../src/covenant/index.ts'
import { type Devnet, startDevnet } from '../src/devnet/index.ts'
import { toBase64 } from '../src/encoding/index.ts'
import { CovenantError } from '../src/errors/index.ts'
import { createJob, jobKeyBytes } from '../src/jobs/index.ts'
import { createSandbox } from '../src/sandbox/index.ts'
import { freeBasePort } from '../test/fixtures/network.ts'
import { drainFloor } from './floor.ts'
import { type Latency, latency, printTable, round, writeResults } from './report.ts'

const JOBS = Number(process.env.JOBS ?? 10_000)
const LATENCY_SAMPLES = 30
const ENQUEUE_CONCURRENCY = 16
const BASELINE_WORKERS = 8
/** The baseline's sandbox: worker threads in its pool. */
const BASELINE_SANDBOX_WORKERS = 2
/** Jobs the floor drains on the devnet's sandboxes, at most (it keeps the floor's share of the run small). */
const FLOOR_DEVNET_JOBS = 2000
const NODES = 5
/** Jobs per keeper-death case, all with the victim as their dispatcher. */
const DEATH_JOBS = 10
const started = performance.now()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)))

const { code } = await bundleFile(new URL('../examples/hello.ts', import.meta.url).pathname)
const ARGS = ['Ada']

/** `total` calls of `fn` with `concurrency` in flight. */
async function pool(total: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await fn(next++)
    }),
  )
}

// --- the baseline: one server, one SQLite queue, the same function in the same sandbox pool ----
const baseDir = await mkdtemp(join(tmpdir(), 'covenant-bench-jobs-'))
const baseline = await (async () => {
  const sandbox = createSandbox({ workers: BASELINE_SANDBOX_WORKERS })
  const db = new DatabaseSync(join(baseDir, 'queue.db'))
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
    CREATE TABLE jobs (id INTEGER PRIMARY KEY, args TEXT NOT NULL, status TEXT NOT NULL,
      run_after INTEGER NOT NULL, created_at INTEGER NOT NULL, done_at INTEGER, result TEXT) STRICT;
    CREATE INDEX due ON jobs (status, run_after);`)
  const insert = db.prepare(
    "INSERT INTO jobs (args, status, run_after, created_at) VALUES (?, 'queued', ?, ?) RETURNING id",
  )
  const claim = db.prepare(`UPDATE jobs SET status = 'running' WHERE id = (SELECT id FROM jobs
    WHERE status = 'queued' AND run_after <= ? ORDER BY run_after, id LIMIT 1) RETURNING id, args`)
  const nextDue = db.prepare("SELECT min(run_after) AS at FROM jobs WHERE status = 'queued'")
  const finish = db.prepare("UPDATE jobs SET status = 'succeeded', done_at = ?, result = ? WHERE id = ?")
  const doneAt = db.prepare('SELECT status, created_at, done_at FROM jobs WHERE id = ?')
  const lastDone = db.prepare("SELECT count(*) AS n, max(done_at) AS at FROM jobs WHERE status = 'succeeded'")

  // Workers sleep until the next job is due, and are woken by every insert: the baseline at its best.
  let wake: Array<() => void> = []
  let stopped = false
  const idle = async () => {
    const at = (nextDue.get() as { at: number | null }).at
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, at === null ? 1000 : Math.max(0, Math.min(1000, at - Date.now())))
      wake.push(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
  const workers = Array.from({ length: BASELINE_WORKERS }, async () => {
    while (!stopped) {
      const job = claim.get(Date.now()) as { id: number; args: string } | undefined
      if (job === undefined) {
        await idle()
        continue
      }
      const r = await sandbox.run({
        code,
        exportName: 'greet',
        args: JSON.parse(job.args),
        seed: String(job.id),
        now: Date.now(),
      })
      if (!r.ok) throw new Error(r.error.message)
      finish.run(Date.now(), JSON.stringify(r.value), job.id)
    }
  })
  const server = Fastify()
  server.post('/jobs', async (req) => {
    const { args, runAfter } = req.body as { args: unknown[]; runAfter: number }
    const { id } = insert.get(JSON.stringify(args), runAfter, Date.now()) as { id: number }
    const woken = wake
    wake = []
    for (const w of woken) w()
    return { id }
  })
  server.get('/jobs/:id', async (req) => doneAt.get(Number((req.params as { id: string }).id)))
  const url = await server.listen({ host: '127.0.0.1', port: 0 })
  const enqueue = async (runAfter: number): Promise<number> => {
    const res = await fetch(`${url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ args: ARGS, runAfter }),
    })
    return ((await res.json()) as { id: number }).id
  }
  const status = async (id: number) =>
    (await (await fetch(`${url}/jobs/${id}`)).json()) as {
      status: string
      created_at: number
      done_at: number
    }

  // enqueue → done, one job at a time
  const samples: number[] = []
  for (let i = 0; i < LATENCY_SAMPLES + 5; i++) {
    const id = await enqueue(Date.now())
    let s = await status(id)
    while (s.status !== 'succeeded') {
      await sleep(1)
      s = await status(id)
    }
    if (i >= 5) samples.push(s.done_at - s.created_at)
  }
  // the drain
  const before = (lastDone.get() as { n: number }).n
  const t0 = performance.now()
  const T = Date.now() + 3_600_000
  await pool(JOBS, ENQUEUE_CONCURRENCY, () => enqueue(T))
  const enqueueMs = performance.now() - t0
  // everything is in: make it all due now
  const due = Date.now()
  db.prepare("UPDATE jobs SET run_after = ? WHERE status = 'queued'").run(due)
  for (const w of wake.splice(0)) w()
  let done = lastDone.get() as { n: number; at: number }
  while (done.n - before < JOBS) {
    await sleep(50)
    done = lastDone.get() as { n: number; at: number }
  }
  stopped = true
  for (const w of wake.splice(0)) w()
  await Promise.all(workers)
  await server.close()
  await sandbox.stop()
  db.close()
  return {
    enqueuePerSecond: JOBS / (enqueueMs / 1000),
    drainMs: done.at - due,
    latency: latency(samples),
  }
})()

// --- the floor: what the design requires to drain them, on this machine, with nothing else --------
const floor = await drainFloor({
  code,
  exportName: 'greet',
  args: ARGS,
  jobs: JOBS,
  concurrency: BASELINE_WORKERS,
  baselineWorkers: BASELINE_SANDBOX_WORKERS,
  baselineMs: baseline.drainMs,
  devnetJobs: FLOOR_DEVNET_JOBS,
})
// said now too: a failure in the network's part below must not lose them
process.stderr.write(
  `# baseline: ${JOBS} jobs drained in ${baseline.drainMs} ms; floor: ${floor.setups.map((f) => `${f.setup}: ${f.drainMs} ms`).join('; ')}; ${floor.ratio}× the baseline's\n`,
)

// --- the network -------------------------------------------------------------------------------
const dir = await mkdtemp(join(tmpdir(), 'covenant-bench-jobs-net-'))
const devnet: Devnet = await startDevnet({
  dir,
  nodes: NODES,
  basePort: await freeBasePort(2 * NODES),
  logLevel: 'warn',
})

/** Every job the nodes keep, each once as the node with the newest state holds it. */
async function allJobs(nodes: readonly string[]): Promise<Map<string, JobSummary>> {
  const best = new Map<string, JobSummary>()
  await Promise.all(
    nodes.map(async (url) => {
      for (let after: string | null = ''; after !== null; ) {
        const q = new URLSearchParams({ limit: '1000', ...(after === '' ? {} : { after }) })
        const res = await fetch(`${url}${listJobsRoute.path}?${q}`)
        if (!res.ok) return
        const page = (await res.json()) as ListJobsReply
        for (const j of page.jobs) {
          const held = best.get(j.id)
          if (held === undefined || j.version > held.version) best.set(j.id, j)
        }
        after = page.next
      }
    }),
  )
  return best
}

/** Jobs queued or running on any of `nodes`, by their own counts. */
async function unsettled(nodes: readonly string[]): Promise<number> {
  const counts = await Promise.all(
    nodes.map(async (url) => {
      const res = await fetch(`${url}${listJobsRoute.path}?limit=1`)
      const page = (await res.json()) as ListJobsReply
      return (page.counts.queued ?? 0) + (page.counts.running ?? 0)
    }),
  )
  return counts.reduce((a, b) => a + b, 0)
}

interface DeathCase {
  how: string
  jobs: number
  /** how late after runAfter the next keeper started each job, ms */
  delay: Latency
  max: number
  /** the latest start after the dispatcher died (a second before the jobs were due), ms */
  afterDeath: number
  /** jobs that ran more than one attempt */
  extraAttempts: number
  /** when the last surviving node marked the dead dispatcher dead, ms after the death */
  noticed: number
  /**
   * jobs whose certificate this client refused to judge (INVALID_CERTIFICATE: with two of five
   * nodes down, a loaded survivor can look dead too and leave its view a thin eligible set); their
   * timing is read from their status all the same, which is what this phase measures
   */
  unjudged: number
}

/** When every node of `urls` holds `peer` dead (polled every 25 ms, for at most `limitMs`), ms after `from`. */
async function noticedDead(
  urls: readonly string[],
  peer: string,
  from: number,
  limitMs: number,
): Promise<number> {
  const times = await Promise.all(
    urls.map(async (url) => {
      while (Date.now() - from < limitMs) {
        const { peers } = (await (await fetch(`${url}${peersRoute.path}`)).json()) as { peers: PeerInfo[] }
        if (peers.find((p) => p.id === peer)?.alive !== true) return Date.now() - from
        await sleep(25)
      }
      return Number.POSITIVE_INFINITY
    }),
  )
  return Math.max(...times)
}

/** Job attempts the nodes dispatched, by outcome, from their metrics. */
async function attemptOutcomes(urls: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const url of urls) {
    const res = await fetch(`${url}${metricsRoute.path}`).catch(() => undefined)
    if (res?.ok !== true) continue
    for (const m of (await res.text()).matchAll(
      /^covenant_jobs_attempts_total\{outcome="([A-Z_a-z]+)"\} (\d+)$/gm,
    ))
      out[m[1]] = (out[m[1]] ?? 0) + Number(m[2])
  }
  return out
}

let network:
  | {
      enqueuePerSecond: number
      drainMs: number
      latency: Latency
      queueDelay: Latency
      lateStart: boolean
      statuses: Record<string, number>
      /** attempts started per job (more than 1: deferred for want of room, or retried) */
      attemptsPerJob: number
      /** every attempt the nodes dispatched so far (the latency samples' too), by outcome */
      outcomes: Record<string, number>
      /** the same calls invoked directly, 8 in flight: successes per second, and failures */
      invokePerSecond: number
      invokeFailures: number
    }
  | undefined
const deaths: DeathCase[] = []
try {
  const urls = devnet.nodes.map((n) => n.http)
  const ids = devnet.nodes.map((n) => n.peerId)
  const clients: CovenantClient[] = await Promise.all(urls.map((node) => connect({ node, nodes: urls })))
  const [client] = clients
  const key = await loadCallerKey(join(dir, 'caller.key'))
  const { cid } = await client.deploy(code, { tags: ['bench'], key })
  // Jobs are paid for by their enqueuer (docs/jobs.md): on the default credit alone the bench's key
  // is refused (PAYMENT_REQUIRED) after a few hundred jobs per keeper. Each node's faucet mints it
  // 1 cr, the most a devnet node mints (its faucet limit): tens of thousands of hello jobs.
  const funded = await client.faucet(1_000_000_000, { key })
  if (funded.from.length !== NODES)
    throw new Error(`the faucet minted at ${funded.from.length} of ${NODES} nodes`)

  // enqueue → commit, one job at a time, through node 0; warm first
  const samples: number[] = []
  for (let i = 0; i < LATENCY_SAMPLES + 5; i++) {
    const { id } = await client.enqueue(cid, 'greet', ARGS, { key })
    const { job } = await client.job(id).wait()
    let info = job
    while (info.result?.committed !== true) {
      await sleep(20)
      info = await client.job(id).status()
    }
    if (i >= 5) samples.push(info.updatedAt - info.createdAt)
  }

  // For scale: the same calls invoked directly, 8 in flight (as bench:invoke does).
  const invokes = Math.min(JOBS, 500)
  let invokeFailures = 0
  let t = performance.now()
  await pool(invokes, 8, (i) =>
    clients[i % NODES].invoke(cid, 'greet', ARGS, { key }).catch(() => invokeFailures++),
  )
  const invokePerSecond = (invokes - invokeFailures) / ((performance.now() - t) / 1000)

  // The drain. A record's runAfter is signed, so the instant all are due is set before the first
  // is enqueued: from the enqueue rate of a warm-up whose jobs wait (then are cancelled, so they
  // never run), with room to spare.
  const warm = 200
  const waiting: string[] = []
  t = performance.now()
  await pool(warm, ENQUEUE_CONCURRENCY, async (i) => {
    const { id } = await clients[i % NODES].enqueue(cid, 'greet', ARGS, { key, runAfterMs: 3_600_000 })
    waiting.push(id)
  })
  const warmRate = warm / ((performance.now() - t) / 1000)
  await pool(warm, ENQUEUE_CONCURRENCY, (i) => client.job(waiting[i]).cancel({ key }))
  while ((await unsettled(urls)) > 0) await sleep(200)
  const due = Date.now() + Math.round((1.25 * JOBS * 1000) / warmRate) + 10_000
  t = performance.now()
  const enqueued = new Set<string>()
  await pool(JOBS, ENQUEUE_CONCURRENCY, async (i) => {
    const { id } = await clients[i % NODES].enqueue(cid, 'greet', ARGS, {
      key,
      runAfterMs: Math.max(0, due - Date.now()),
    })
    enqueued.add(id)
  })
  const enqueueMs = performance.now() - t
  const allIn = Date.now()
  process.stderr.write(
    `# network: ${JOBS} jobs enqueued in ${Math.round(enqueueMs)} ms, due in ${due - allIn} ms\n`,
  )
  await sleep(due - Date.now())
  while ((await unsettled(urls)) > 0) await sleep(500)
  const held = await allJobs(urls)
  const mine = [...enqueued].map((id) => held.get(id))
  const statuses: Record<string, number> = {}
  for (const j of mine) statuses[j?.status ?? 'lost'] = (statuses[j?.status ?? 'lost'] ?? 0) + 1
  const start = Math.max(due, allIn)
  const ends = mine.flatMap((j) => (j === undefined ? [] : [j.updatedAt]))
  network = {
    enqueuePerSecond: JOBS / (enqueueMs / 1000),
    drainMs: Math.max(...ends) - start,
    latency: latency(samples),
    queueDelay: latency(ends.map((e) => e - start)),
    lateStart: allIn > due,
    statuses,
    attemptsPerJob: mine.reduce((n, j) => n + (j?.started ?? 0), 0) / Math.max(1, mine.length),
    outcomes: await attemptOutcomes(urls),
    invokePerSecond,
    invokeFailures,
  }

  // A keeper's death: jobs whose dispatcher dies (SIGKILL) or hangs (SIGSTOP) a second before
  // they are due; how late after runAfter the next keeper starts them.
  const dead = new Set<number>()
  for (const [victim, how] of [
    [4, 'SIGKILL'],
    [3, 'SIGSTOP'],
  ] as const) {
    const live = ids.filter((_, i) => !dead.has(i))
    const runAfter = Date.now() + 8000
    const planned: string[] = []
    for (let n = 0; planned.length < DEATH_JOBS; n++) {
      const job = createJob(key, {
        fn: cid,
        export: 'greet',
        args: ARGS,
        runAfter,
        nonce: `death-${how}-${n}`,
      })
      if (closestPeers(jobKeyBytes(job.id), live, 3)[0] !== ids[victim]) continue
      const res = await fetch(`${urls[0]}${enqueueJobRoute.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ job: toBase64(dagCbor.encode(job.record)) }),
      })
      if (!res.ok) throw new Error(`enqueue answered ${res.status}: ${await res.text()}`)
      planned.push(job.id)
    }
    await sleep(runAfter - 1000 - Date.now())
    const diedAt = Date.now()
    if (how === 'SIGKILL') await devnet.kill(victim, 'SIGKILL')
    else devnet.nodes[victim].process?.kill('SIGSTOP')
    dead.add(victim)
    const noticed = await noticedDead(
      urls.filter((_, i) => !dead.has(i)),
      ids[victim],
      diedAt,
      15_000,
    )
    const delays: number[] = []
    let extraAttempts = 0
    let unjudged = 0
    for (const id of planned) {
      const job = await client
        .job(id)
        .wait()
        .then(
          (outcome) => outcome.job,
          async (err: unknown) => {
            if (CovenantError.from(err).code !== 'INVALID_CERTIFICATE') throw err
            unjudged++
            return client.job(id).status()
          },
        )
      const first = job.attempts.find((a) => a.dispatcher !== ids[victim])
      if (first !== undefined) delays.push(first.startedAt - runAfter)
      if (job.started > 1) extraAttempts++
    }
    deaths.push({
      how,
      jobs: planned.length,
      delay: latency(delays),
      max: Math.max(...delays),
      afterDeath: Math.max(...delays) + runAfter - diedAt,
      extraAttempts,
      noticed,
      unjudged,
    })
    if (how === 'SIGSTOP') await devnet.kill(victim, 'SIGKILL')
  }
} finally {
  await devnet.stop()
  await rm(dir, { recursive: true, force: true })
  await rm(baseDir, { recursive: true, force: true })
}

if (network === undefined) throw new Error('the network part did not run')
console.log(`\n${JOBS} jobs drained, the same function (examples/hello.ts greet)`)
printTable(
  ['setup', 'enqueue/s', 'drain s', 'jobs/s', 'drain / baseline', 'enqueue→commit p50 ms', 'p99 ms'],
  [
    [
      'baseline: one SQLite queue, 8 workers, same sandbox',
      baseline.enqueuePerSecond,
      baseline.drainMs / 1000,
      JOBS / (baseline.drainMs / 1000),
      1,
      baseline.latency.p50,
      baseline.latency.p99,
    ],
    [
      `network: ${NODES} nodes, keepers k=3, attempts k=3 q=2`,
      network.enqueuePerSecond,
      network.drainMs / 1000,
      JOBS / (network.drainMs / 1000),
      network.drainMs / baseline.drainMs,
      network.latency.p50,
      network.latency.p99,
    ],
    ...floor.setups.map((f) => [
      `floor: k=3 runs, signatures, 3 keeper writes; ${f.setup}${f.jobs < JOBS ? ` (${f.jobs} jobs, at that rate)` : ''}`,
      '',
      f.drainMs / 1000,
      f.perSecond,
      f.drainMs / baseline.drainMs,
      '',
      '',
    ]),
  ],
)
console.log(
  `floor of the drain (the faster setup, ${floor.concurrency} jobs in flight): ${round(floor.floorMs / 1000, 2)} s, ${floor.ratio}× the baseline's`,
)
console.log(
  `for scale, the same calls invoked directly on the network (k=3 q=2, 8 in flight): ${round(network.invokePerSecond, 1)} calls/s, ${network.invokeFailures} failed`,
)
console.log(
  `network jobs by end status: ${JSON.stringify(network.statuses)}, ${round(network.attemptsPerJob)} attempts per job${network.lateStart ? ' (enqueue ran past the due instant: drain timed from the last enqueue)' : ''}`,
)
console.log(`attempts dispatched by outcome: ${JSON.stringify(network.outcomes)}`)
console.log(
  '\na dispatcher dies a second before its jobs are due: how late the next keeper starts them (ms after runAfter)',
)
printTable(
  [
    'how',
    'jobs',
    'p50',
    'max',
    'latest start after the death',
    'every node noticed it after',
    'jobs with more than one attempt',
    'certificates not judged (thin view)',
  ],
  deaths.map((d) => [
    d.how,
    d.jobs,
    d.delay.p50,
    d.max,
    d.afterDeath,
    d.noticed,
    d.extraAttempts,
    d.unjudged,
  ]),
)
const file = await writeResults('jobs', {
  nodes: NODES,
  jobs: JOBS,
  function: 'examples/hello.ts greet',
  baseline: { ...baseline, workers: BASELINE_WORKERS },
  network,
  floor,
  keeperDeath: deaths,
  totalMs: round(performance.now() - started),
})
console.log(`\nwrote ${file} (${((performance.now() - started) / 1000).toFixed(1)} s)`)
