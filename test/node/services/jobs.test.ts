/**
 * Jobs on ONE devnet of 7 real node processes (keepers k = 3), through the SDK, the HTTP API, the
 * jobs protocol and the CLI. Two nodes carry devnet faults: EXEC_CRASHER's executor exits as soon
 * as it starts running a call (exec's `crash`), KEEPER_CRASHER dies (SIGKILL) right after it
 * dispatched its first attempt (`jobs-crash-on-dispatch`).
 *
 * Nothing here waits on chance. Each job's record is built in the test, so its id, and so its
 * keepers, are known before it is enqueued: a case draws the record's nonce until the job's
 * dispatcher is the one it wants. The executors an attempt asks follow from the dispatcher's
 * ticket, which is deterministic (the first nonce that works, this hour), so a case knows them
 * too, for this hour and the next. The crashing executor's case comes first and ends with it dead:
 * a gateway replaces a failing or slow executor by the next one down its ranking, so on a loaded
 * machine any call could reach it otherwise. The crashing keeper dispatches only in its own case.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import {
  enqueueJobRoute,
  enqueueRunRoute,
  jobEventsRoute,
  jobRoute,
  routePath,
} from '../../../src/api/index.ts'
import {
  type CovenantClient,
  certificateFromJSON,
  connect,
  generateKey,
  type JobInfo,
  keyId,
  type PrivateKey,
} from '../../../src/client/index.ts'
import type { Manifest } from '../../../src/content/index.ts'
import { type SignedCovenant, signedCovenantFromJSON } from '../../../src/covenant/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import {
  certificateToJSON,
  createView,
  epochOf,
  mintTicket,
  rankExecutors,
  type Ticket,
} from '../../../src/exec/index.ts'
import {
  cancelJob,
  createJob,
  encodeState,
  initialState,
  JOBS_PROTOCOL,
  type JobInit,
  paidOf,
  parseState,
  signCancel,
  startAttempt,
  succeed,
} from '../../../src/jobs/index.ts'
import { encodeKey } from '../../../src/keys/index.ts'
import { createNet, type Net, sessionProtocol } from '../../../src/net/index.ts'
import { JOBS_SCAN_INTERVAL_MS } from '../../../src/node/index.ts'
import { covenant } from '../../fixtures/cli.ts'
import { ticketWhere } from '../../fixtures/exec-cluster.ts'
import { keepersOf as liveKeepers, planJob as planKeepers, postJob } from '../../fixtures/jobs.ts'
import {
  FAST_INTERVALS,
  payeeStatement,
  startTestDevnet,
  type TestDevnet,
  waitFor,
} from '../../fixtures/network.ts'

const NODES = 7
const GATEWAY = 0
const EXEC_CRASHER = 5
const KEEPER_CRASHER = 6

interface Fn {
  fn: string
  manifest: Manifest
}

describe('jobs on a 7-node devnet', { timeout: 600_000 }, () => {
  let devnet: TestDevnet
  let ids: string[]
  let covenants: SignedCovenant[]
  let net: CovenantClient
  let enqueuer: PrivateKey
  let hello: Fn
  let loop: Fn
  let prober: Net
  let proberKey: PrivateKey
  let keyDir: string
  const dead = new Set<number>()
  const startEpoch = epochOf(Date.now())
  const index = (id: string) => ids.indexOf(id)

  const rejectsWith = (p: Promise<unknown>, code: string) =>
    assert.rejects(p, (e: CovenantError) => e.code === code, code)

  /** The job's keepers among the live nodes, its dispatcher first. */
  const keepersOf = (id: string): number[] => liveKeepers(id, ids, dead)

  const tickets = new Map<string, Ticket>()
  /** Node `i`'s first ticket of `epoch`, the one its first attempts use. */
  const ticketOf = (i: number, epoch: number): Ticket => {
    const k = `${i}/${epoch}`
    if (!tickets.has(k)) tickets.set(k, mintTicket(ids[i], epoch))
    return tickets.get(k)!
  }

  /**
   * The executors a first attempt dispatched by node `d` asks in the hour the test started, and in
   * the next: the test ends within one of them.
   */
  const executorsOf = (d: number, f: Fn, exportName: string, fuel = 2000): number[][] => {
    const view = createView(covenants, { alive: (p) => !dead.has(index(p)) })
    return [startEpoch, startEpoch + 1].map((e) => {
      const request = { caller: ids[d], ticket: ticketOf(d, e), fn: f.fn, export: exportName }
      const limits = { fuel, memoryMiB: 64, timeoutMs: 5000, k: 3 }
      return rankExecutors(view, { ...request, ...limits }, f.manifest)
        .ordered.slice(0, 3)
        .map(index)
    })
  }

  /**
   * The live dispatchers whose first attempts never ask the crashing executor, this hour or the
   * next, less the crashing keeper.
   */
  const safeFor = (f: Fn, exportName: string, fuel?: number): Set<number> =>
    new Set(
      ids
        .map((_, d) => d)
        .filter(
          (d) =>
            !dead.has(d) &&
            d !== KEEPER_CRASHER &&
            (dead.has(EXEC_CRASHER) ||
              executorsOf(d, f, exportName, fuel).every((top) => !top.includes(EXEC_CRASHER))),
        ),
    )

  /**
   * The dispatchers whose first attempts ask the crashing executor, this hour and the next: not the
   * crashing keeper, nor the crashing executor itself (a gateway runs its own share in its own
   * process, so that dispatcher would die with its attempt, and the next keeper would ask others).
   */
  const crashingFor = (f: Fn, exportName: string): Set<number> =>
    new Set(
      ids
        .map((_, d) => d)
        .filter(
          (d) =>
            d !== KEEPER_CRASHER &&
            d !== EXEC_CRASHER &&
            executorsOf(d, f, exportName).every((top) => top.includes(EXEC_CRASHER)),
        ),
    )

  /** A job of the enqueuer, its nonce drawn until `accept(keepers)`. */
  const planJob = (init: JobInit, accept: (keepers: number[]) => boolean) =>
    planKeepers(enqueuer, init, keepersOf, accept)

  /** Whether a job of `f`'s greet can have an executor-crashing first keeper and a second that lives. */
  const canPlanCrash = (f: Fn): boolean => {
    const crashing = crashingFor(f, 'greet')
    if (crashing.size === 0) return false
    try {
      planJob(
        { fn: f.fn, export: 'greet', args: ['probe'] },
        (k) => crashing.has(k[0]) && k[1] !== KEEPER_CRASHER,
      )
      return true
    } catch {
      return false
    }
  }

  /** `POST /v1/jobs` with a record as it is, through node `node`. */
  const post = (record: unknown, node = GATEWAY) => postJob(devnet.nodes[node].http, record)

  /** Deploys a function under names until one has dispatchers of every kind a case needs. */
  const deployWhere = async (code: (variant: number) => string, fits: (f: Fn) => boolean): Promise<Fn> => {
    for (let variant = 0; variant < 50; variant++) {
      const { cid } = await net.deploy(code(variant), { key: enqueuer })
      const f = { fn: cid, manifest: await net.manifest(cid) }
      if (fits(f)) return f
    }
    throw new Error('no variant of the function fits')
  }

  before(async () => {
    devnet = await startTestDevnet({
      nodes: NODES,
      faults: { [EXEC_CRASHER]: 'crash', [KEEPER_CRASHER]: 'jobs-crash-on-dispatch' },
    })
    ids = devnet.nodes.map((n) => n.peerId)
    const urls = devnet.nodes.map((n) => n.http)
    net = await connect({ nodes: urls })
    enqueuer = await generateKey()
    covenants = (await net.peers()).map((p) => signedCovenantFromJSON(p.covenant))
    hello = await deployWhere(
      (v) => `// variant ${v}\nexport function greet(name) { return 'Hello, ' + name }`,
      // a crashing first keeper must also be able to have a second that is not the keeper crasher
      // (with some devnets' ids no job id gives that, whatever its nonce)
      (f) => safeFor(f, 'greet').size >= 3 && canPlanCrash(f),
    )
    loop = await deployWhere(
      (v) => `// variant ${v}\nexport function spin() { for (;;) {} }`,
      (f) => safeFor(f, 'spin', 200).size >= 3,
    )
    proberKey = await generateKey()
    prober = createNet({ privateKey: proberKey })
    await prober.start()
    for (const n of devnet.nodes)
      await prober.addAddresses(n.peerId, [n.multiaddrs[0].replace(/\/p2p\/.*$/, '')])
    keyDir = await mkdtemp(join(tmpdir(), 'covenant-jobs-key-'))
    await writeFile(join(keyDir, 'key'), encodeKey(enqueuer), { mode: 0o600 })
  })
  after(async () => {
    await prober?.stop()
    await devnet?.cleanup()
    if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true })
  })

  /** Keepers for a job that only safe dispatchers would run, even if its dispatcher seemed gone. */
  const safely = (f: Fn, exportName: string, fuel?: number) => {
    const ok = safeFor(f, exportName, fuel)
    return (k: number[]) => ok.has(k[0]) && ok.has(k[1])
  }

  // First: before it, no call runs, so the crashing executor is asked by no other case (a gateway
  // replaces an executor that fails or is slow by the next one down the ranking, whoever that is).
  it('completes a job elsewhere when an executor crashes mid-run', async () => {
    const crashing = crashingFor(hello, 'greet')
    const job = planJob(
      { fn: hello.fn, export: 'greet', args: ['Crash'] },
      (k) => crashing.has(k[0]) && k[1] !== KEEPER_CRASHER,
    )
    assert.equal((await post(job.record)).body.id, job.id)
    const out = await net.job(job.id).wait()
    assert.equal(out.value, 'Hello, Crash')
    const signers = out.certificate.receipts.map((r) => index(r.executor))
    assert.ok(!signers.includes(EXEC_CRASHER), 'the crashed executor signed nothing')
    const tried = out.job.attempts.flatMap((a) => a.tried)
    assert.ok(
      tried.some((t) => index(t.peer) === EXEC_CRASHER && t.outcome !== 'agreed'),
      'the crashed executor was asked',
    )
    await waitFor('the crashed executor to exit', async () =>
      devnet.nodes[EXEC_CRASHER].process === undefined ? true : undefined,
    )
    dead.add(EXEC_CRASHER)
  })

  let first: { id: string; info: JobInfo }

  it('enqueues a job and answers with its id at once; later, any node finds its certified result', async () => {
    const job = planJob({ fn: hello.fn, export: 'greet', args: ['Ada'] }, safely(hello, 'greet'))
    const enqueued = await post(job.record)
    assert.equal(enqueued.status, 200)
    assert.equal(enqueued.body.id, job.id)
    // forget it: another client, through another node, finds it later
    const later = await connect({ nodes: [devnet.nodes[3].http, ...devnet.nodes.map((n) => n.http)] })
    const out = await later.job(job.id).wait()
    assert.equal(out.value, 'Hello, Ada')
    assert.equal(out.job.status, 'succeeded')
    assert.ok(out.certificate.receipts.length >= 2)
    assert.equal(
      out.certificate.request.caller,
      ids[keepersOf(job.id)[0]],
      'its dispatcher signed the request',
    )
    assert.equal(out.job.started, 1)
    assert.deepEqual(
      out.job.attempts.map((a) => a.outcome),
      ['succeeded'],
    )
    // every node tells the same state, once the success is committed
    const settled = await waitFor('the success to be committed', async () => {
      const info = await net.job(job.id).status()
      return info.result?.committed === true ? info : undefined
    })
    for (const i of [1, 2, 4]) {
      const other = await connect({ node: devnet.nodes[i].http })
      assert.equal((await other.job(job.id).status()).version, settled.version)
    }
    // a watcher's stream, raw: server-sent events of its state, which end once it has settled
    const events = await fetch(`${devnet.nodes[4].http}${routePath(jobEventsRoute, { id: job.id })}`)
    assert.match(events.headers.get('content-type') ?? '', /^text\/event-stream/)
    const data = (await events.text())
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice('data: '.length)) as JobInfo)
    assert.deepEqual(
      data.map((d) => [d.status, d.version]),
      [['succeeded', settled.version]],
    )
    // an unknown job's stream is an error reply, not an empty stream
    const unknown = createJob(enqueuer, { fn: hello.fn, export: 'greet', args: ['Nobody'] })
    const none = await fetch(`${devnet.nodes[4].http}${routePath(jobEventsRoute, { id: unknown.id })}`)
    assert.equal(none.status, 404)
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'JOB_NOT_FOUND')
    const listed = await waitFor('the job to be listed', async () =>
      (await net.jobs({ enqueuer: keyId(enqueuer) })).find(
        (j) => j.id === job.id && j.status === 'succeeded',
      ),
    )
    assert.equal(listed.export, 'greet')
    first = { id: job.id, info: settled }
  })

  it('refuses a job that is not what its enqueuer signed, and tells a job it does not know from a malformed id', async () => {
    const job = createJob(enqueuer, { fn: hello.fn, export: 'greet', args: ['Eve'] })
    const stranger = await generateKey()
    const { signature: _, ...unsigned } = job.record
    const bad: Array<[unknown, string]> = [
      [{ ...job.record, args: ['Mallory'] }, 'INVALID_SIGNATURE'],
      [{ ...job.record, enqueuer: keyId(stranger) }, 'INVALID_SIGNATURE'],
      [{ ...job.record, fuel: 2001 }, 'JOB_INVALID'],
      [{ ...unsigned, origin: { request: first.id, index: 0 } }, 'JOB_INVALID'],
      ['not a job', 'JOB_INVALID'],
    ]
    for (const [record, code] of bad) assert.equal((await post(record)).body.error?.code, code)
    const res = await fetch(`${devnet.nodes[GATEWAY].http}${enqueueJobRoute.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ job: '%%%' }),
    })
    assert.equal(res.status, 400)
    // never enqueued: not found anywhere; a malformed id is an input error
    await rejectsWith(net.job(job.id).status(), 'JOB_NOT_FOUND')
    const malformed = await fetch(`${devnet.nodes[GATEWAY].http}${routePath(jobRoute, { id: 'not-a-cid' })}`)
    assert.equal(((await malformed.json()) as { error: { code: string } }).error.code, 'INVALID_INPUT')
  })

  it('takes jobs from a run only when the executors signed them', async () => {
    // a real certified run of greet, with a job added to its output afterwards
    const caller = await generateKey()
    const view = createView(covenants)
    const ticket = ticketWhere(
      caller,
      view,
      { fn: hello.fn, export: 'greet', fuel: 2000, memoryMiB: 64, timeoutMs: 5000, k: 3 },
      hello.manifest,
      (ordered) => !ordered.slice(0, 3).includes(ids[EXEC_CRASHER]),
    )
    const run = await net.invoke(hello.fn, 'greet', ['Eve'], { key: caller, ticket })
    const output = {
      ...run.output,
      jobs: [{ fn: hello.fn, export: 'greet', args: ['Mallory'], options: {} }],
    }
    const res = await fetch(`${devnet.nodes[GATEWAY].http}${enqueueRunRoute.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ certificate: certificateToJSON(run.certificate), output }),
    })
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'INVALID_CERTIFICATE')
  })

  it('fails a job whose function loops forever with FUEL_EXHAUSTED, every receipt kept, and goes on serving', async () => {
    const job = planJob({ fn: loop.fn, export: 'spin', fuel: 200, retries: 3 }, safely(loop, 'spin', 200))
    assert.equal((await post(job.record)).body.id, job.id)
    await rejectsWith(net.job(job.id).wait(), 'FUEL_EXHAUSTED')
    const info = await net.job(job.id).status()
    assert.equal(info.status, 'failed')
    assert.equal(info.error?.code, 'FUEL_EXHAUSTED')
    // a failure every executor would repeat is not retried
    assert.equal(info.started, 1)
    const [attempt] = info.attempts
    assert.equal(attempt.outcome, 'failed')
    assert.ok(attempt.receipts.length >= 2, 'the receipts that certify the failure are kept')
    assert.ok(attempt.receipts.every((r) => r.request === attempt.request))
    // the network keeps serving: another job runs
    const next = planJob({ fn: hello.fn, export: 'greet', args: ['Bo'] }, safely(hello, 'greet'))
    assert.equal((await post(next.record)).body.id, next.id)
    assert.equal((await net.job(next.id).wait()).value, 'Hello, Bo')
  })

  it('cancels a waiting job for its enqueuer only; keepers refuse forged states', async () => {
    const job = planJob(
      { fn: hello.fn, export: 'greet', args: ['Later'], runAfter: Date.now() + 600_000 },
      safely(hello, 'greet'),
    )
    assert.equal((await post(job.record)).body.id, job.id)
    const [keeper] = keepersOf(job.id)
    const queued = initialState(job.record)
    const stranger = await generateKey()
    // keepers talk on sessions (one stream for many messages): a state offered there is checked
    // exactly as one offered on a stream of its own
    for (const session of [false, true]) {
      const offer = (state: Parameters<typeof encodeState>[0]) =>
        prober.request(
          ids[keeper],
          JOBS_PROTOCOL,
          { type: 'offer', states: [{ id: job.id, state: encodeState(state) }] },
          { session },
        )
      // a stranger's cancellation, offered as a state, is refused
      const byStranger = { ...cancelJob(queued, signCancel(enqueuer, job.id), Date.now()) }
      byStranger.cancel = signCancel(stranger, job.id)
      const reply1 = (await offer(byStranger)) as { results: Array<{ error?: { code: string } }> }
      assert.equal(reply1.results[0].error?.code, 'JOB_INVALID')
      // a success certified for another job, offered as this one's, is refused
      const other = certificateFromJSON(first.info.result!.certificate)
      const forged = succeed(
        startAttempt(queued, {
          dispatcher: ids[keeper],
          request: other.id,
          now: Date.now(),
          leaseUntil: Date.now(),
        }),
        {
          n: 1,
          now: Date.now(),
          result: { certificate: other, output: first.info.result!.output as never, commits: [] },
          receipts: other.receipts,
        },
      )
      const reply2 = (await offer(forged)) as { results: Array<{ error?: { code: string } }> }
      assert.equal(reply2.results[0].error?.code, 'JOB_INVALID')
      const garbage = await prober
        .request(
          ids[keeper],
          JOBS_PROTOCOL,
          { type: 'offer', states: [{ id: 'nope', state: 1 }] },
          { session },
        )
        .catch((e: CovenantError) => e.code)
      assert.equal(garbage, 'PROTOCOL_ERROR')
    }
    const sessions = prober.libp2p
      .getConnections()
      .filter((c) => c.remotePeer.toString() === ids[keeper])
      .flatMap((c) => c.streams)
      .filter((s) => s.protocol === sessionProtocol(JOBS_PROTOCOL))
    assert.equal(sessions.length, 1, 'the session offers went on a session stream')
    assert.equal((await net.job(job.id).status()).status, 'queued')

    await rejectsWith(net.job(job.id).cancel({ key: stranger }), 'JOB_INVALID')
    assert.equal((await net.job(job.id).status()).status, 'queued')
    const cancelled = await net.job(job.id).cancel({ key: enqueuer })
    assert.equal(cancelled.status, 'cancelled')
    await rejectsWith(net.job(job.id).wait(), 'JOB_CANCELLED')
    // cancelling again changes nothing
    assert.equal((await net.job(job.id).cancel({ key: enqueuer })).version, cancelled.version)
  })

  it('passes on a change to paid alone with its periodic sync, and never charges from another keeper’s word for it', async () => {
    // a job of a key of its own, waiting far ahead: no keeper dispatches it here
    const payer = await generateKey()
    const job = planKeepers(
      payer,
      { fn: hello.fn, export: 'greet', args: ['Paid'], runAfter: Date.now() + 600_000 },
      keepersOf,
      safely(hello, 'greet'),
    )
    const [lead, ...others] = keepersOf(job.id)
    // handed to the lead keeper, which hands it to the others and so knows they hold its state
    assert.equal((await post(job.record, lead)).body.id, job.id)
    const stateAt = async (i: number) => {
      const reply = (await prober.request(ids[i], JOBS_PROTOCOL, {
        type: 'get',
        ids: [job.id],
        docs: false,
      })) as {
        jobs: Array<{ state: Uint8Array }>
      }
      return parseState(dagCbor.decode(reply.jobs[0].state))
    }
    let unheld: unknown[] = []
    await waitFor('every keeper to hold the job', async () => {
      unheld = (
        await Promise.all(
          [lead, ...others].map((i) =>
            stateAt(i).then(
              () => undefined,
              (e: Error) => [i, e.message],
            ),
          ),
        )
      ).filter((e) => e !== undefined)
      return unheld.length === 0 ? true : undefined
    }).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(unheld)}`)
    })
    // a keeper's word (the prober's) that it charged 7, and that the lead keeper charged 5 000 000:
    // offered to the lead keeper alone, in the job's first state (no new version)
    const prober_ = keyId(proberKey)
    const queued = initialState(job.record)
    const claim = {
      ...queued,
      // in keeper order, as a state carries them
      paid: [
        { keeper: ids[lead], amount: 5_000_000 },
        { keeper: prober_, amount: 7 },
      ].sort((x, y) => (x.keeper < y.keeper ? -1 : 1)),
    }
    const reply = (await prober.request(ids[lead], JOBS_PROTOCOL, {
      type: 'offer',
      states: [{ id: job.id, state: encodeState(claim) }],
    })) as { results: Array<{ kept?: boolean }> }
    assert.equal(reply.results[0].kept, true)
    assert.equal((await stateAt(lead)).version, queued.version)
    // the other keepers learn it from the lead's periodic sync, though the version did not change
    await waitFor(
      'the other keepers to hold the claim',
      async () =>
        (await Promise.all(others.map(stateAt))).every((s) =>
          paidOf(s).some((c) => c.keeper === prober_ && c.amount === 7),
        )
          ? true
          : undefined,
      120_000,
    )
    // and no keeper charged the job's enqueuer for it: the lead keeper dispatched nothing
    for (const i of [lead, ...others]) {
      const account = await payeeStatement(devnet.nodes[i].http, ids[i], keyId(payer))
      assert.equal(account.charged, 0, `keeper ${i} charged nothing`)
    }
    assert.equal((await net.job(job.id).cancel({ key: payer })).status, 'cancelled')
  })

  it('runs a waiting job once, by the next keeper, when its dispatcher is killed (SIGKILL)', async () => {
    const runAfter = Date.now() + 4000
    const job = planJob(
      { fn: hello.fn, export: 'greet', args: ['Wait'], runAfter },
      (k) => k[0] !== GATEWAY && k[0] !== KEEPER_CRASHER && k[1] !== KEEPER_CRASHER,
    )
    const [dispatcher, next] = keepersOf(job.id)
    assert.equal((await post(job.record)).body.id, job.id)
    const diedAt = Date.now()
    await devnet.kill(dispatcher, 'SIGKILL')
    dead.add(dispatcher)
    const out = await net.job(job.id).wait()
    assert.equal(out.value, 'Hello, Wait')
    assert.equal(out.job.started, 1, 'one attempt, by the keeper that took over')
    assert.equal(out.job.attempts[0].dispatcher, ids[next])
    // The bound docs/jobs.md states ("Keeper death"), from this devnet's configuration: the death
    // noticed (a crash at worst as a hang is, by the next heartbeat's hello failing), then one scan.
    const delay = out.job.attempts[0].startedAt - Math.max(runAfter, diedAt)
    const bound = FAST_INTERVALS.heartbeatMs + FAST_INTERVALS.helloTimeoutMs + JOBS_SCAN_INTERVAL_MS
    process.stderr.write(`# a waiting job's dispatcher killed: it started ${delay} ms after it was due\n`)
    assert.ok(delay <= bound, `started ${delay} ms after it was due, past the bound of ${bound} ms`)
  })

  it('completes a running job once when its dispatcher dies mid-attempt (SIGKILL)', async () => {
    const job = planJob({ fn: hello.fn, export: 'greet', args: ['Run'] }, (k) => k[0] === KEEPER_CRASHER)
    const next = keepersOf(job.id)[1]
    assert.equal((await post(job.record, next)).body.id, job.id)
    const out = await net.job(job.id).wait()
    assert.equal(out.value, 'Hello, Run')
    await waitFor('the crashing keeper to exit', async () =>
      devnet.nodes[KEEPER_CRASHER].process === undefined ? true : undefined,
    )
    dead.add(KEEPER_CRASHER)
    const outcomes = out.job.attempts.map((a) => [index(a.dispatcher), a.outcome])
    assert.deepEqual(
      outcomes[0],
      [KEEPER_CRASHER, 'abandoned'],
      'the dead dispatcher’s attempt was taken over',
    )
    assert.equal(outcomes.filter(([, o]) => o === 'succeeded').length, 1, 'it succeeded once')
    assert.equal(
      out.certificate.request.caller,
      out.job.attempts.find((a) => a.outcome === 'succeeded')!.dispatcher,
    )
  })

  it('covenant job enqueue, status, wait, list and cancel', async () => {
    const node = devnet.nodes[GATEWAY].http
    const nodes = devnet.nodes
      .filter((_, i) => !dead.has(i))
      .map((n) => n.http)
      .join(',')
    const cli = (args: string[]) =>
      covenant([...args, '--node', node, '--nodes', nodes, '--json'], {
        env: { ...process.env, COVENANT_HOME: keyDir },
      })
    const parse = (out: { stdout: string }) => JSON.parse(out.stdout) as Record<string, unknown>
    const enqueued = parse(await cli(['job', 'enqueue', hello.fn, 'greet', '"Cli"']))
    assert.equal(enqueued.ok, true)
    const id = enqueued.id as string
    const waited = parse(await cli(['job', 'wait', id]))
    assert.deepEqual([waited.ok, waited.value], [true, 'Hello, Cli'])
    const status = parse(await cli(['job', 'status', id]))
    assert.equal((status.job as JobInfo).status, 'succeeded')
    const listed = parse(await cli(['job', 'list', '--mine']))
    assert.ok((listed.jobs as Array<{ id: string }>).some((j) => j.id === id))
    const later = parse(await cli(['job', 'enqueue', hello.fn, 'greet', '"Never"', '--run-after', '10m']))
    const cancelled = parse(await cli(['job', 'cancel', later.id as string]))
    assert.equal((cancelled.job as JobInfo).status, 'cancelled')
    const failed = parse(await cli(['job', 'wait', later.id as string]))
    assert.deepEqual([failed.ok, (failed.error as { code: string }).code], [false, 'JOB_CANCELLED'])
    await assert.rejects(cli(['job', 'list', '--status', 'sleeping']))
  })
})
