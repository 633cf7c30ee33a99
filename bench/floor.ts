/**
 * The floor: a lower bound, measured on this machine in the same run as a bench's baseline, of
 * what ANY implementation of Covenant's design must spend, made of only the steps the design
 * requires, each done by the most favourable real implementation at hand and nothing else: no
 * node, no gossip, no queue, no payment. A bench prints it beside its baseline: if the floor alone
 * is more than the goal's multiple of the baseline, no implementation of this design meets the
 * goal on this machine.
 *
 * {@link commitFloor} (bench:store, issue 9): the critical path of one certified commit of a
 * function that writes one key, each step timed alone and within one sequential pipeline:
 *
 * 1. the client signs its request (DAG-CBOR + Ed25519; its ticket for the hour minted beforehand);
 * 2. one HTTP round trip to a fastify server whose route does nothing (the SDK talks HTTP to its
 *    gateway), carrying the request as the SDK sends it;
 * 3. an executor checks the request (`verifyRequest`: shape, ticket, signature), runs the very
 *    function in the sandbox (a pool of 2 workers, as a devnet node's), hashes the output and
 *    signs its receipt; the k executors run in parallel, so one counts;
 * 4. one libp2p round trip gateway ↔ executor on a long-lived session between two libp2p nodes on
 *    loopback (src/net), the request out and the receipt and output back;
 * 5. a holder checks the certificate with the real check (`verifyCertificate`: the request, q = 2
 *    receipts, the selection over its view of 5 executing peers, the output's hash) and applies the
 *    write to SQLite in the baseline's own transaction;
 * 6. one libp2p round trip for replication to a majority (k = 3: the primary and one more holder,
 *    whose check and write run while the primary does its own, so they count once);
 * 7. the client checks the certificate (`verifyCertificate`, its own request's signature known).
 *
 * Each step is timed alone (`samples` times in a row) and within the pipeline; the floor is the
 * lowest of: the sum of the steps' p50s alone, their sum within the pipeline, the pipeline's own
 * p50. A lower one still is printed beside it: the steps alone with every check and signature
 * counted as bare Ed25519 operations (no parsing, encoding, ticket, selection or hashing).
 *
 * Each role runs in its own thread, as each is another node: src/keys and src/exec remember the
 * signatures and requests their process made or checked, and a role must not find another role's
 * work there. The executor and the holder time their own step; the hand-offs between threads are
 * not counted.
 *
 * Left out, so the floor stays below any implementation: the gateway → primary hop (a gateway may
 * be the primary), the gateway's own checks, fetching the code (cached), the write policy and
 * capability checks (a holder can keep them checked per grant), the MVCC check beyond the
 * baseline's own, the primary's lock and prepare, payments, and everything that runs in parallel
 * with the steps above (the other executors, the other holders).
 *
 * {@link drainFloor} (bench:jobs, issue 10): the CPU work the design requires per job, for `jobs`
 * jobs with `concurrency` in flight on this machine's cores: k = 3 sandbox runs of the job's
 * function (each executor first checks the request's Ed25519 signature, then signs its receipt
 * over the output's hash), the dispatcher's check of q = 2 receipts, and one durable SQLite write
 * of the job's final state at each of k = 3 keepers (each its own database file, the baseline's
 * pragmas). Requests are signed beforehand (the enqueuer can sign the first attempt's request
 * when it enqueues). Signatures are checked with node:crypto directly: three executors checking
 * one request are three processes, and src/keys would answer the second from its cache. Left out:
 * every message (enqueue, dispatch, receipts, state replication among keepers), the keepers'
 * rounds to agree on a job's state and their own checks of its certificate, the dispatcher's claim
 * of a job and its signature on the attempt's request, parsing and hashing the request at each
 * executor, payments.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import Fastify from 'fastify'
import { z } from 'zod'
import { cidForBytes } from '../src/content/index.ts'
import { type SignedCovenant, signCovenant } from '../src/covenant/index.ts'
import {
  type Certificate,
  createView,
  DEFAULT_REQUEST_LIMITS,
  epochOf,
  mintTicket,
  type Output,
  outputEffects,
  outputHash,
  type Receipt,
  requestId,
  requestToJSON,
  type SignedRequest,
  selectExecutors,
  signReceipt,
  verifyCertificate,
  verifyRequest,
} from '../src/exec/index.ts'
import { sign as ed25519Sign, verify as ed25519Verify } from '../src/keys/ed25519.ts'
import {
  canonicalBytes,
  decodeKey,
  encodeKey,
  generateKey,
  keyId,
  type PrivateKey,
  signValue,
} from '../src/keys/index.ts'
import { createNet } from '../src/net/index.ts'
import { createSandbox, SANDBOX_BUILD, type Sandbox, type SandboxResult } from '../src/sandbox/index.ts'
import { type Latency, latency, round } from './report.ts'

/** A devnet node's sandbox: `execute.concurrency` (default 2) workers. */
const NODE_SANDBOX_WORKERS = 2
/** Executing peers in the views (the devnet's 5 nodes). */
const VIEW_PEERS = 5
const EXEC_PROTOCOL = '/covenant-floor/exec/1.0.0'
const REPLICATE_PROTOCOL = '/covenant-floor/replicate/1.0.0'

/** The output an executor hashes and signs, as src/exec's executor builds it from a result. */
function outputOf(result: SandboxResult): Output {
  if (!result.ok) throw new Error(`the floor's call failed: ${result.error.code} ${result.error.message}`)
  return {
    json: JSON.stringify(result.value) ?? 'null',
    logs: [...result.logs],
    error: null,
    ...outputEffects(result.effects),
  }
}

// ── roles in their own threads ──────────────────────────────────────────────────────────────────

interface ExecutorInit {
  code: string
  keys: Uint8Array[]
}
interface ExecutorAsk {
  request: SignedRequest
  /** indexes into the keys: the first signs on the clock, the others after it */
  signers: number[]
}
/** A role's own time for its step, ms, and for each part of it. */
interface Timed {
  ms: number
  parts: Record<string, number>
}
interface ExecutorReply extends Timed {
  receipts: Receipt[]
  output: Output
}
interface HolderInit {
  covenants: SignedCovenant[]
  manifest: { tags: string[]; publisher: string }
  db: string
}
interface HolderAsk {
  certificate: Certificate
  output: Output
  key: string
  value: unknown
}

async function executorRole(init: ExecutorInit): Promise<(ask: ExecutorAsk) => Promise<ExecutorReply>> {
  const sandbox = createSandbox({ workers: NODE_SANDBOX_WORKERS })
  const keys = init.keys.map(decodeKey)
  const runOf = (request: SignedRequest, id: string) =>
    sandbox.run({
      code: init.code,
      exportName: request.export,
      args: request.args,
      seed: id,
      now: request.timestamp,
      request: { id, caller: request.caller },
    })
  return async ({ request, signers }) => {
    const t = performance.now()
    const { id } = verifyRequest(request)
    const checked = performance.now()
    const result = await runOf(request, id)
    const output = outputOf(result)
    const ran = performance.now()
    const receiptOf = (key: PrivateKey) =>
      signReceipt(key, {
        request: id,
        outputHash: outputHash(output),
        fuel: result.fuel,
        covenantVersion: 1,
        build: SANDBOX_BUILD,
      })
    const first = receiptOf(keys[signers[0]])
    const end = performance.now()
    const parts = { check: checked - t, run: ran - checked, sign: end - ran }
    // the other executors ran in parallel: their receipts are made off the clock
    return {
      ms: end - t,
      parts,
      receipts: [first, ...signers.slice(1).map((i) => receiptOf(keys[i]))],
      output,
    }
  }
}

async function holderRole(init: HolderInit): Promise<(ask: HolderAsk) => Promise<Timed>> {
  const view = createView(init.covenants)
  const { write } = baselineStore(init.db)
  return async ({ certificate, output, key, value }) => {
    const t = performance.now()
    verifyCertificate(certificate, { view, manifest: init.manifest, output })
    const checked = performance.now()
    write(key, value)
    const end = performance.now()
    return { ms: end - t, parts: { check: checked - t, write: end - checked } }
  }
}

/**
 * bench:store's baseline datastore in `file`: a SQLite table of versions and a head, written one
 * key per transaction (read the head, insert the version, move the head). The floor's holder
 * writes with the very same transaction.
 */
export function baselineStore(file: string): {
  db: DatabaseSync
  write: (key: string, value: unknown) => number
} {
  const db = new DatabaseSync(file)
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
    CREATE TABLE kv (key TEXT NOT NULL, seq INTEGER NOT NULL, value TEXT, PRIMARY KEY (key, seq)) STRICT;
    CREATE TABLE head (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL) STRICT;
    INSERT INTO head VALUES (1, 0);`)
  const headOf = db.prepare('SELECT seq FROM head WHERE id = 1')
  const insert = db.prepare('INSERT INTO kv (key, seq, value) VALUES (?, ?, ?)')
  const moveHead = db.prepare('UPDATE head SET seq = ? WHERE id = 1')
  const write = (key: string, value: unknown): number => {
    db.exec('BEGIN IMMEDIATE')
    try {
      const seq = Number((headOf.get() as { seq: number }).seq) + 1
      insert.run(key, seq, JSON.stringify(value))
      moveHead.run(seq)
      db.exec('COMMIT')
      return seq
    } catch (err) {
      db.exec('ROLLBACK')
      throw err
    }
  }
  return { db, write }
}

if (!isMainThread && (workerData as { floorRole?: string } | null)?.floorRole !== undefined) {
  const { floorRole, init } = workerData as { floorRole: 'executor' | 'holder'; init: unknown }
  const port = parentPort!
  const answer =
    floorRole === 'executor'
      ? ((await executorRole(init as ExecutorInit)) as (ask: unknown) => Promise<unknown>)
      : ((await holderRole(init as HolderInit)) as (ask: unknown) => Promise<unknown>)
  port.on('message', async (ask: unknown) => {
    if (ask === 'stop') {
      port.close()
      return
    }
    try {
      port.postMessage({ ok: await answer(ask) })
    } catch (err) {
      port.postMessage({ error: (err as Error).stack ?? String(err) })
    }
  })
  port.postMessage({ ready: true })
}

/** A role in its own thread, asked one thing at a time. */
async function startRole<A, R>(
  floorRole: string,
  init: unknown,
): Promise<{ ask: (a: A) => Promise<R>; stop: () => Promise<void> }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { floorRole, init } })
  let pending: { resolve: (r: R) => void; reject: (e: Error) => void } | undefined
  let ready: () => void = () => {}
  let failed: (e: Error) => void = () => {}
  const started = new Promise<void>((resolve, reject) => {
    ready = resolve
    failed = reject
  })
  worker.on('message', (m: { ready?: true; ok?: R; error?: string }) => {
    if (m.ready === true) return ready()
    const p = pending
    pending = undefined
    if (m.error !== undefined) p?.reject(new Error(`floor ${floorRole}: ${m.error}`))
    else p?.resolve(m.ok as R)
  })
  worker.on('error', (err) => {
    failed(err)
    pending?.reject(err)
  })
  await started
  return {
    ask: (a) =>
      new Promise<R>((resolve, reject) => {
        pending = { resolve, reject }
        worker.postMessage(a)
      }),
    stop: async () => {
      worker.postMessage('stop')
      await worker.terminate()
    },
  }
}

// ── issue 9: one certified commit ───────────────────────────────────────────────────────────────

export interface CommitFloor {
  samples: number
  /**
   * Each step's latency, ms, in pipeline order: `alone`, the step repeated `samples` times by
   * itself; `inPipeline`, as timed within the sequential pipeline of all steps, once per sample.
   */
  steps: Array<{ step: string; alone: Latency; inPipeline: Latency; parts?: Record<string, number> }>
  /** the sum of the steps' p50s, each alone, ms */
  sumAlone: number
  /** the sum of the steps' p50s within the pipeline, ms */
  sumInPipeline: number
  /** the p50 of each pipeline sample's steps added up, ms */
  pipeline: Latency
  /** the lowest of the three: the floor, ms */
  floorP50: number
  /**
   * A lower floor still, ms: the steps alone with every check and signature counted as bare
   * Ed25519 operations (node:crypto, p50 of each alone): the executor's check as one verify, the
   * holder's as three, the client's as two, each signature as one sign; no parsing, no encoding,
   * no ticket, no selection, no hashing.
   */
  bareSignatures: { verifyP50: number; signP50: number; floorP50: number; ratio: number }
  baselineP50: number
  /** floorP50 / baselineP50 */
  ratio: number
}

const COMMIT_STEPS = [
  'client signs the request',
  'HTTP round trip to a gateway doing nothing',
  'executor: checks the request, runs it, signs',
  'libp2p round trip gateway ↔ executor',
  'holder: checks the certificate, writes SQLite',
  'libp2p round trip primary ↔ 2nd holder',
  'client checks the certificate',
] as const

/**
 * Measures the critical path of one certified commit of `code`'s export `exportName`, a function
 * `(ns, key, value, ctx)` that writes `value` at `key`: `samples` times each step alone, then
 * `samples` times the whole pipeline, each after `warm` untimed rounds.
 */
export async function commitFloor(init: {
  code: string
  exportName: string
  baselineP50: number
  samples?: number
  warm?: number
}): Promise<CommitFloor> {
  const samples = init.samples ?? 200
  const warm = init.warm ?? 20
  const dir = await mkdtemp(join(tmpdir(), 'covenant-floor-commit-'))
  const caller = await generateKey()
  const executors = await Promise.all(Array.from({ length: VIEW_PEERS }, () => generateKey()))
  const covenants = executors.map((k) => signCovenant(k, { execute: { enabled: true } }, 1))
  const view = createView(covenants)
  const manifest = { tags: [] as string[], publisher: keyId(await generateKey()) }
  const fn = cidForBytes(canonicalBytes({ code: init.code }), 'dag-cbor').toString()
  const ns = cidForBytes(canonicalBytes({ namespace: 'floor' }), 'dag-cbor').toString()
  const ticket = mintTicket(keyId(caller), epochOf(Date.now()))
  let made = 0
  const bodyOf = () => {
    const i = made++
    const timestamp = Date.now()
    return {
      v: 3 as const,
      fn,
      export: init.exportName,
      args: [ns, `k${i % 16}`, i],
      ...DEFAULT_REQUEST_LIMITS,
      deadline: timestamp + 30_000,
      k: 3,
      q: 2,
      nonce: `floor-${i}-${timestamp}`,
      ticket,
      timestamp,
      caller: keyId(caller),
    }
  }
  // the selection does not depend on the nonce: the same two executors sign every sample
  const ranked = selectExecutors({ view, request: bodyOf(), manifest, minEligibleFraction: 0.5 }).chosen
  const signers = ranked.slice(0, 2).map((peer) => executors.findIndex((k) => keyId(k) === peer))

  const executor = await startRole<ExecutorAsk, ExecutorReply>('executor', {
    code: init.code,
    keys: executors.map(encodeKey),
  } satisfies ExecutorInit)
  const holder = await startRole<HolderAsk, Timed>('holder', {
    covenants,
    manifest,
    db: join(dir, 'holder.db'),
  } satisfies HolderInit)
  const gatewayHttp = Fastify()
  gatewayHttp.post('/v1/invoke', async () => ({}))
  const gateway = createNet({ privateKey: await generateKey(), dht: false })
  const remote = createNet({ privateKey: await generateKey(), dht: false })
  let reply: { receipt: Receipt; output: Output } | undefined

  interface Run {
    request: SignedRequest
    receipts: Receipt[]
    output: Output
    certificate: Certificate
  }
  /** each step, given what the steps before it made; it returns its own time, ms */
  const timed = async (step: () => unknown): Promise<number> => {
    const t = performance.now()
    await step()
    return performance.now() - t
  }
  const sign = () => {
    const body = bodyOf()
    return { ...body, signature: signValue(caller, body) } as SignedRequest
  }
  let url = ''
  const http = async (request: SignedRequest) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request: requestToJSON(request) }),
    })
    if (!res.ok) throw new Error(`the gateway answered ${res.status}`)
    await res.json()
  }
  const execute = async (request: SignedRequest): Promise<Timed & { run: Run }> => {
    const { ms, parts, receipts, output } = await executor.ask({ request, signers })
    const certificate: Certificate = {
      request,
      id: requestId(request),
      outputHash: receipts[0].outputHash,
      receipts,
      skipped: [],
    }
    return { ms, parts, run: { request, receipts, output, certificate } }
  }
  const execTrip = (run: Run) => {
    reply = { receipt: run.receipts[0], output: run.output }
    return gateway.request(remote.peerId, EXEC_PROTOCOL, { request: run.request }, { session: true })
  }
  const hold = (run: Run) =>
    holder.ask({
      certificate: run.certificate,
      output: run.output,
      key: run.request.args[1] as string,
      value: run.request.args[2],
    })
  const replicate = (run: Run) =>
    gateway.request(
      remote.peerId,
      REPLICATE_PROTOCOL,
      { certificate: run.certificate, output: run.output },
      { session: true },
    )
  const check = (run: Run) => verifyCertificate(run.certificate, { view, manifest, output: run.output })

  const alone: number[][] = COMMIT_STEPS.map(() => [])
  /** the executor's and the holder's parts, each step alone: step index → part → ms */
  const parts = new Map<number, Map<string, number[]>>()
  const keepParts = (s: number, timed: Timed, i: number) => {
    if (i < warm) return
    const of = parts.get(s) ?? new Map<string, number[]>()
    parts.set(s, of)
    for (const [part, ms] of Object.entries(timed.parts)) of.set(part, [...(of.get(part) ?? []), ms])
  }
  const inPipeline: number[][] = COMMIT_STEPS.map(() => [])
  const totals: number[] = []
  let sampleRequest: SignedRequest | undefined
  try {
    url = `${await gatewayHttp.listen({ host: '127.0.0.1', port: 0 })}/v1/invoke`
    await gateway.start()
    await remote.start()
    await remote.handle(EXEC_PROTOCOL, { schema: z.unknown(), sessions: true, handler: async () => reply })
    await remote.handle(REPLICATE_PROTOCOL, {
      schema: z.unknown(),
      sessions: true,
      handler: async () => ({ ok: true }),
    })
    await gateway.addAddresses(remote.peerId, remote.multiaddrs())

    // Each step alone, `samples` times in a row; every request, receipt and certificate is new to
    // the role that checks it.
    const n = warm + samples
    const keep = (s: number, ms: number, i: number) => {
      if (i >= warm) alone[s].push(ms)
    }
    const requests: SignedRequest[] = []
    for (let i = 0; i < n; i++) {
      let request: SignedRequest | undefined
      keep(0, await timed(() => (request = sign())), i)
      requests.push(request!)
    }
    sampleRequest = requests[0]
    for (let i = 0; i < n; i++) keep(1, await timed(() => http(requests[i])), i)
    const runs: Run[] = []
    for (let i = 0; i < n; i++) {
      const ran = await execute(requests[i])
      keep(2, ran.ms, i)
      keepParts(2, ran, i)
      runs.push(ran.run)
    }
    for (let i = 0; i < n; i++) keep(3, await timed(() => execTrip(runs[i])), i)
    for (let i = 0; i < n; i++) {
      const held = await hold(runs[i])
      keep(4, held.ms, i)
      keepParts(4, held, i)
    }
    for (let i = 0; i < n; i++) keep(5, await timed(() => replicate(runs[i])), i)
    for (let i = 0; i < n; i++) keep(6, await timed(() => check(runs[i])), i)

    // The steps back to back, one commit after another.
    for (let i = 0; i < n; i++) {
      const times: number[] = []
      let request: SignedRequest | undefined
      times.push(await timed(() => (request = sign())))
      times.push(await timed(() => http(request!)))
      const { ms, run } = await execute(request!)
      times.push(ms)
      times.push(await timed(() => execTrip(run)))
      times.push((await hold(run)).ms)
      times.push(await timed(() => replicate(run)))
      times.push(await timed(() => check(run)))
      if (i < warm) continue
      times.forEach((t, s) => {
        inPipeline[s].push(t)
      })
      totals.push(times.reduce((a, b) => a + b, 0))
    }
  } finally {
    await gateway.stop()
    await remote.stop()
    await gatewayHttp.close()
    await executor.stop()
    await holder.stop()
    await rm(dir, { recursive: true, force: true })
  }
  const steps = COMMIT_STEPS.map((step, s) => ({
    step,
    alone: latency(alone[s]),
    inPipeline: latency(inPipeline[s]),
    ...(parts.has(s)
      ? { parts: Object.fromEntries([...parts.get(s)!].map(([part, ms]) => [part, latency(ms).p50])) }
      : {}),
  }))
  const sumAlone = round(steps.reduce((a, s) => a + s.alone.p50, 0))
  const sumInPipeline = round(steps.reduce((a, s) => a + s.inPipeline.p50, 0))
  const pipeline = latency(totals)
  const floorP50 = Math.min(sumAlone, sumInPipeline, pipeline.p50)
  const bare = bareEd25519(samples, caller, canonicalBytes(sampleRequest!))
  const part = (s: number, name: string) => steps[s].parts?.[name] ?? 0
  const bareFloor = round(
    bare.signP50 +
      steps[1].alone.p50 +
      (bare.verifyP50 + part(2, 'run') + bare.signP50) +
      steps[3].alone.p50 +
      (3 * bare.verifyP50 + part(4, 'write')) +
      steps[5].alone.p50 +
      2 * bare.verifyP50,
  )
  return {
    samples,
    steps,
    sumAlone,
    sumInPipeline,
    pipeline,
    floorP50,
    bareSignatures: { ...bare, floorP50: bareFloor, ratio: round(bareFloor / init.baselineP50, 2) },
    baselineP50: init.baselineP50,
    ratio: round(floorP50 / init.baselineP50, 2),
  }
}

/** p50s of a bare Ed25519 sign and verify of `bytes` with node:crypto, each `n` times alone. */
function bareEd25519(n: number, key: PrivateKey, bytes: Uint8Array): { verifyP50: number; signP50: number } {
  const signs: number[] = []
  const verifies: number[] = []
  let signature = ed25519Sign(key, bytes)
  for (let i = 0; i < n; i++) {
    let t = performance.now()
    signature = ed25519Sign(key, bytes)
    signs.push(performance.now() - t)
    t = performance.now()
    if (!ed25519Verify(key.publicKey, bytes, signature)) throw new Error('a bare signature does not verify')
    verifies.push(performance.now() - t)
  }
  return { verifyP50: latency(verifies).p50, signP50: latency(signs).p50 }
}

// ── issue 10: draining jobs ─────────────────────────────────────────────────────────────────────

export interface DrainFloor {
  jobs: number
  concurrency: number
  /** per sandbox setup: how many jobs it drained, in how long, and the drain of `jobs` at that rate */
  setups: Array<{ setup: string; jobs: number; ms: number; perSecond: number; drainMs: number }>
  /** the fastest setup's drain of `jobs`, ms: the floor */
  floorMs: number
  baselineMs: number
  /** floorMs / baselineMs */
  ratio: number
}

/**
 * Drains `jobs` jobs of `code`'s `exportName(...args)` as the design requires (see the module
 * comment), `concurrency` jobs in flight, once on one sandbox of `baselineWorkers` workers (the
 * baseline's) and once on the devnet's sandboxes (5 nodes of 2 workers each, every job's three
 * runs on three of them), the latter on at most `devnetJobs` jobs and its drain of `jobs` taken
 * at its rate. The floor is the faster.
 */
export async function drainFloor(init: {
  code: string
  exportName: string
  args: unknown[]
  jobs: number
  concurrency: number
  baselineWorkers: number
  baselineMs: number
  devnetJobs?: number
}): Promise<DrainFloor> {
  const dir = await mkdtemp(join(tmpdir(), 'covenant-floor-drain-'))
  const enqueuer = await generateKey()
  const enqueuerKey = enqueuer.publicKey
  const executors = await Promise.all(Array.from({ length: 3 }, () => generateKey()))
  const publicKeys = new Map(executors.map((k) => [keyId(k), k.publicKey]))
  const fn = cidForBytes(canonicalBytes({ code: init.code }), 'dag-cbor').toString()
  const ticket = mintTicket(keyId(enqueuer), epochOf(Date.now()))
  // Each keeper's table holds the queued jobs, as enqueueing left them (off the clock).
  const keepers = Array.from({ length: 3 }, (_, k) => {
    const db = new DatabaseSync(join(dir, `keeper-${k}.db`))
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
      CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, done_at INTEGER, result TEXT) STRICT;`)
    return db
  })
  const fill = (n: number) => {
    for (const db of keepers) {
      db.exec('DELETE FROM jobs; BEGIN')
      const insert = db.prepare("INSERT INTO jobs (id, status) VALUES (?, 'queued')")
      for (let i = 0; i < n; i++) insert.run(i)
      db.exec('COMMIT')
    }
  }
  const finish: StatementSync[] = keepers.map((db) =>
    db.prepare("UPDATE jobs SET status = 'succeeded', done_at = ?, result = ? WHERE id = ?"),
  )
  // Each job's request, signed by its enqueuer when it enqueued (off the clock).
  const requests = Array.from({ length: init.jobs }, (_, i) => {
    const timestamp = Date.now()
    const body = {
      v: 3 as const,
      fn,
      export: init.exportName,
      args: init.args,
      ...DEFAULT_REQUEST_LIMITS,
      deadline: timestamp + 900_000,
      k: 3,
      q: 2,
      nonce: `job-floor-${i}`,
      ticket,
      timestamp,
      caller: keyId(enqueuer),
    }
    const bytes = canonicalBytes(body)
    const request = { ...body, signature: ed25519Sign(enqueuer, bytes) } as SignedRequest
    return { request, bytes, id: requestId(request) }
  })

  const drain = async (n: number, sandboxOf: (job: number, executor: number) => Sandbox): Promise<number> => {
    fill(n)
    let next = 0
    const t = performance.now()
    await Promise.all(
      Array.from({ length: init.concurrency }, async () => {
        while (next < n) {
          const i = next++
          const { request, bytes, id } = requests[i]
          const receipts = await Promise.all(
            executors.map(async (key, e) => {
              if (!ed25519Verify(enqueuerKey, bytes, request.signature))
                throw new Error('the request does not verify')
              const result = await sandboxOf(i, e).run({
                code: init.code,
                exportName: request.export,
                args: request.args,
                seed: id,
                now: request.timestamp,
              })
              const output = outputOf(result)
              return signReceipt(key, {
                request: id,
                outputHash: outputHash(output),
                fuel: result.fuel,
                covenantVersion: 1,
                build: SANDBOX_BUILD,
              })
            }),
          )
          for (const { signature, ...body } of receipts.slice(0, 2))
            if (!ed25519Verify(publicKeys.get(body.executor)!, canonicalBytes(body), signature))
              throw new Error('a receipt does not verify')
          const done = Date.now()
          for (const f of finish) f.run(done, receipts[0].outputHash, i)
        }
      }),
    )
    return performance.now() - t
  }
  const warm = async (sandboxes: Sandbox[]) =>
    Promise.all(
      sandboxes.flatMap((s) =>
        Array.from({ length: 8 }, (_, i) =>
          s.run({ code: init.code, exportName: init.exportName, args: init.args, seed: `w${i}`, now: 0 }),
        ),
      ),
    )

  const setups: DrainFloor['setups'] = []
  try {
    const one = createSandbox({ workers: init.baselineWorkers })
    try {
      await warm([one])
      const ms = await drain(init.jobs, () => one)
      setups.push({
        setup: `one sandbox of ${init.baselineWorkers} workers (the baseline's)`,
        jobs: init.jobs,
        ms: round(ms),
        perSecond: round(init.jobs / (ms / 1000), 1),
        drainMs: round(ms),
      })
    } finally {
      await one.stop()
    }
    const nodes = Array.from({ length: VIEW_PEERS }, () => createSandbox({ workers: NODE_SANDBOX_WORKERS }))
    try {
      await warm(nodes)
      const n = Math.min(init.jobs, init.devnetJobs ?? init.jobs)
      const ms = await drain(n, (job, e) => nodes[(job + e) % VIEW_PEERS])
      setups.push({
        setup: `${VIEW_PEERS} sandboxes of ${NODE_SANDBOX_WORKERS} workers (the devnet's nodes)`,
        jobs: n,
        ms: round(ms),
        perSecond: round(n / (ms / 1000), 1),
        drainMs: round((ms * init.jobs) / n),
      })
    } finally {
      await Promise.all(nodes.map((s) => s.stop()))
    }
  } finally {
    for (const db of keepers) db.close()
    await rm(dir, { recursive: true, force: true })
  }
  const floorMs = Math.min(...setups.map((s) => s.drainMs))
  return {
    jobs: init.jobs,
    concurrency: init.concurrency,
    setups,
    floorMs: round(floorMs),
    baselineMs: init.baselineMs,
    ratio: round(floorMs / init.baselineMs, 2),
  }
}
