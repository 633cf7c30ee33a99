/**
 * Jobs whose functions write, on ONE devnet of 5 real node processes (keepers k = 3): a counter
 * in a namespace whose owner grants `count` to one function, which adds 1 to it. A job may run
 * more than once; its writes commit once, under the job's id (docs/jobs.md). Node CRASHER dies
 * (SIGKILL) right after an attempt it dispatched had its writes committed, before it recorded the
 * success (`jobs-crash-after-commit`); its case comes first, so it dispatches nothing else.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { z } from 'zod'
import {
  type AccountsReplySchema,
  accountsRoute,
  type ListJobsReply,
  listJobsRoute,
  type OwedReplySchema,
  owedRoute,
} from '../../../src/api/index.ts'
import {
  type CovenantClient,
  connect,
  createFunctionCommit,
  generateKey,
  keyId,
  type PrivateKey,
} from '../../../src/client/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import { createJob } from '../../../src/jobs/index.ts'
import { reconcile } from '../../../src/ledger/index.ts'
import { fundFromEveryFaucet, keepersOf, planJob, postJob } from '../../fixtures/jobs.ts'
import { payeeStatement, startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'

type OwedReply = z.infer<typeof OwedReplySchema>
type AccountsReply = z.infer<typeof AccountsReplySchema>
const getJson = async <T>(url: string): Promise<T> => {
  const res = await fetch(url)
  assert.equal(res.status, 200, url)
  return (await res.json()) as T
}

const NODES = 5
const CRASHER = 4
const COUNTED = 1000

const COUNTER = `
/** Adds 1 to the counter of namespace ns; returns the new count. */
export async function add(ns, ctx) {
  const n = await ctx.store.get(ns, 'count')
  const next = (typeof n === 'number' ? n : 0) + 1
  ctx.store.put(ns, 'count', next)
  return next
}
/** Enqueues a job of add on ns (fn is this function's CID); writes nothing itself. */
export function addLater(ns, fn, ctx) {
  ctx.enqueue(fn, 'add', [ns])
  return 'enqueued'
}
`

// The counter's case is long: its 1,000 increments are certified one after another (each reads
// the last), about 1–2 per second on a loaded 2-core machine.
describe('jobs that write, on a 5-node devnet', { timeout: 3_600_000 }, () => {
  let devnet: TestDevnet
  let ids: string[]
  let net: CovenantClient
  let owner: PrivateKey
  let fn: string
  let ns: string
  const dead = new Set<number>()
  const keepers = (id: string) => keepersOf(id, ids, dead)
  const live = () => devnet.nodes.filter((_, i) => !dead.has(i)).map((n) => n.http)

  const rejectsWith = (p: Promise<unknown>, code: string) =>
    assert.rejects(p, (e: CovenantError) => e.code === code, code)

  const count = async () => (await net.store(ns).get('count')).value
  /** The namespace's function entries after seq `after`, oldest first. */
  const entriesAfter = async (after: number) => {
    const out: Array<{ seq: number; id: string; kind: string }> = []
    for (let from: number | null = after; from !== null; ) {
      const page = await net.store(ns).history({ after: from, limit: 1000 })
      out.push(...page.entries)
      from = page.next
    }
    return out
  }

  before(async () => {
    // Payments on (the default): each keeper pays the executors of the attempts it dispatches.
    devnet = await startTestDevnet({ nodes: NODES, faults: { [CRASHER]: 'jobs-crash-after-commit' } })
    ids = devnet.nodes.map((n) => n.peerId)
    net = await connect({ nodes: devnet.nodes.map((n) => n.http) })
    owner = await generateKey()
    // the owner enqueues every job here and pays for each
    await fundFromEveryFaucet(net, owner, NODES)
    fn = (await net.deploy(COUNTER, { key: owner })).cid
    ns = (await net.createStore('counter', { public: true, key: owner })).ns
    const grant = await net.grant({
      namespace: ns,
      audience: { fn },
      prefix: 'count',
      expiresAt: Date.now() + 86_400_000,
      key: owner,
    })
    await net.store(ns, { key: owner }).keepGrants([grant])
  })
  after(() => devnet?.cleanup())

  it('completes a job once when its dispatcher dies after its writes committed: the next attempt’s writes are duplicates, and the first run is the result', async () => {
    const job = planJob(
      owner,
      { fn, export: 'add', args: [ns], stores: [ns] },
      keepers,
      (k) => k[0] === CRASHER && k[1] !== CRASHER,
    )
    const next = keepers(job.id)[1]
    assert.equal((await postJob(devnet.nodes[next].http, job.record)).body.id, job.id)
    const out = await net.job(job.id).wait()
    await waitFor('the crashing keeper to exit', async () =>
      devnet.nodes[CRASHER].process === undefined ? true : undefined,
    )
    dead.add(CRASHER)
    assert.equal(out.value, 1)
    assert.equal(await count(), 1, 'added once')
    const [first, second] = out.job.attempts
    assert.deepEqual([first.dispatcher, first.outcome], [ids[CRASHER], 'abandoned'])
    assert.deepEqual([second.dispatcher, second.outcome], [ids[next], 'succeeded'])
    // the result is the run whose writes took effect: the dead dispatcher's
    assert.equal(out.certificate.request.caller, ids[CRASHER])
    assert.deepEqual(
      out.job.result?.commits.map((c) => [c.ns, c.duplicate]),
      [[ns, true]],
    )
    const entries = await entriesAfter(0)
    assert.deepEqual(
      entries.filter((e) => e.kind === 'function').map((e) => e.id),
      [job.id],
      'one entry, under the job’s id',
    )
  })

  it('commits a job’s writes under its id, once; a run that is not the job’s cannot take its id', async () => {
    const job = planJob(owner, { fn, export: 'add', args: [ns], stores: [ns] }, keepers, () => true)
    assert.equal((await postJob(devnet.nodes[0].http, job.record)).body.id, job.id)
    const out = await net.job(job.id).wait()
    assert.equal(out.value, 2)
    const [commit] = out.job.result!.commits
    assert.equal(commit.duplicate, false)
    const store = net.store(ns)
    // the same run's writes sent again: the job's entry, nothing new
    const again = await store.send(
      createFunctionCommit({
        request: job.id,
        effects: out.output.store![0],
        certificate: out.certificate,
        output: out.output,
        job: job.record,
      }),
    )
    assert.deepEqual([again.duplicate, again.seq], [true, commit.seq])
    // another job's record with this job's certified run: it is not a run of that job
    const other = createJob(owner, { fn, export: 'add', args: [ns], stores: [ns] })
    await rejectsWith(
      store.send(
        createFunctionCommit({
          request: other.id,
          effects: out.output.store![0],
          certificate: out.certificate,
          output: out.output,
          job: other.record,
        }),
      ),
      'JOB_INVALID',
    )
    // a caller's own run of add, offered under a job's id without its record
    const stranger = await generateKey()
    const direct = await net.invoke(fn, 'add', [ns], { stores: [ns], key: stranger })
    assert.equal(direct.value, 3)
    await rejectsWith(
      store.send(
        createFunctionCommit({
          request: other.id,
          effects: direct.output.store![0],
          certificate: direct.certificate,
          output: direct.output,
        }),
      ),
      'INVALID_CERTIFICATE',
    )
    assert.equal(await count(), 3)
  })

  it('hands the jobs a function enqueues to their keepers with its run, and runs them; a job’s own jobs too', async () => {
    const run = await net.invoke(fn, 'addLater', [ns, fn], { stores: [ns], key: owner })
    assert.equal(run.value, 'enqueued')
    assert.ok(run.jobs !== undefined && 'jobs' in run.jobs, 'handed over')
    const [child] = run.jobs.jobs
    const out = await net.job(child.id).wait()
    assert.equal(out.value, 4)
    assert.equal(out.job.origin?.request, run.certificate.id)
    // handing the same run's jobs again changes nothing
    const settled = await waitFor('the job to settle', async () => {
      const info = await net.job(child.id).status()
      return info.result?.committed === true ? info : undefined
    })
    const again = await net.enqueueRun(run.certificate, run.output)
    assert.deepEqual(
      again.jobs.map((j) => j.id),
      [child.id],
    )
    assert.equal((await net.job(child.id).status()).version, settled.version)
    // a job that enqueues: its job is created once it succeeded, and runs
    const parent = await net.enqueue(fn, 'addLater', [ns, fn], { stores: [ns], key: owner })
    const done = await net.job(parent.id).wait()
    assert.equal(done.value, 'enqueued')
    const created = await waitFor('its job to be created', async () => {
      const info = await net.job(parent.id).status()
      return info.result?.committed === true ? info : undefined
    })
    assert.equal(created.status, 'succeeded')
    // its enqueuer is the owner, who enqueued the job that enqueued it and pays for it, not the
    // keeper that signed that job's run
    const grandchild = await waitFor('the job it enqueued to run', async () => {
      const jobs = await net.jobs({ enqueuer: keyId(owner), status: 'succeeded', limit: 1000 })
      for (const j of jobs.filter((j) => j.export === 'add' && j.id !== child.id)) {
        const info = await net.job(j.id).status()
        if (info.origin?.request === done.certificate.id) return info
      }
      return undefined
    })
    const byKeeper = await net.jobs({ enqueuer: done.certificate.request.caller, limit: 1000 })
    assert.equal(byKeeper.length, 0)
    const grown = await net.job(grandchild.id).wait()
    assert.equal(grown.value, 5)
    assert.equal(grown.job.origin?.request, done.certificate.id)
    assert.ok(
      grown.job.paid.some((c) => c.amount > 0),
      'the owner is charged for it',
    )
    assert.equal(await count(), 5)
  })

  it('hands over the jobs of a run the SDK made itself (direct), as a gateway would, and they run', async () => {
    const start = (await count()) as number
    // A key of its own: this client keeps its own payer ledger (in memory, for a key handed to it),
    // and a key's cheques are cumulative, so one key paying through two ledgers would leave the
    // owner's ledger (net's) short of what its executors and keepers were paid and charged.
    const caller = await generateKey()
    const direct = await connect({ nodes: live(), direct: true })
    try {
      const run = await direct.invoke(fn, 'addLater', [ns, fn], { stores: [ns], key: caller })
      assert.equal(run.value, 'enqueued')
      assert.ok(run.jobs !== undefined && 'jobs' in run.jobs, JSON.stringify(run.jobs))
      const [child] = run.jobs.jobs
      assert.equal((await net.job(child.id).wait()).value, start + 1)
      assert.equal(await count(), start + 1)
    } finally {
      await direct.close()
    }
  })

  it(`${COUNTED} jobs that each add 1 to one counter end with it ${COUNTED} higher, one entry per job`, async (t) => {
    const start = (await count()) as number
    const { head } = await net.store(ns).info()
    const nodes = live()
    const clients = await Promise.all(nodes.map((node) => connect({ node, nodes })))
    const jobIds = new Set<string>()
    let next = 0
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < COUNTED) {
          const i = next++
          const { id } = await clients[i % clients.length].enqueue(fn, 'add', [ns], {
            stores: [ns],
            key: owner,
          })
          jobIds.add(id)
        }
      }),
    )
    assert.equal(jobIds.size, COUNTED)
    // every keeper's own count: nothing queued or running anywhere
    await waitFor(
      'every job to settle',
      async () => {
        const pages = await Promise.all(
          nodes.map(
            async (node) =>
              (await (await fetch(`${node}${listJobsRoute.path}?limit=1`)).json()) as ListJobsReply,
          ),
        )
        return pages.every((p) => (p.counts.queued ?? 0) + (p.counts.running ?? 0) === 0) ? true : undefined
      },
      3_000_000,
      2000,
    )
    // the jobs that failed first, with their errors, so a miscount says why
    const failed = await net.jobs({ status: 'failed', enqueuer: keyId(owner) })
    assert.deepEqual(
      failed.map((j) => [j.id, j.error?.code, j.error?.message]),
      [],
    )
    assert.equal(await count(), start + COUNTED)
    const entries = (await entriesAfter(head.seq)).filter((e) => e.kind === 'function')
    assert.equal(entries.length, COUNTED)
    assert.deepEqual(new Set(entries.map((e) => e.id)), jobIds, 'one entry per job, under its id')
    // every keeper paid the executors of its attempts exactly what they charged it
    let differences: unknown
    await waitFor(
      'the keepers’ and executors’ ledgers to reconcile',
      async () => {
        const alive = devnet.nodes.filter((_, i) => !dead.has(i))
        const owed = await Promise.all(alive.map((n) => getJson<OwedReply>(`${n.http}${owedRoute.path}`)))
        const liveIds = new Set(alive.map((n) => n.peerId))
        const payees = await Promise.all(
          alive.map(async (n) => {
            const { accounts } = await getJson<AccountsReply>(`${n.http}${accountsRoute.path}?limit=1000`)
            return accounts
              .filter((a) => liveIds.has(a.payer))
              .map((a) => ({
                payer: a.payer,
                payee: n.peerId,
                charged: a.charged,
                paid: a.received,
                granted: a.granted,
              }))
          }),
        )
        // the dead keeper's own accounts cannot be read: the pairs of live nodes are compared
        const payers = owed.flatMap((o) => o.statements).filter((s) => liveIds.has(s.payee))
        const r = reconcile(payers, payees.flat())
        const paidOff = payers.every((s) => s.paid === s.charged - s.granted)
        differences = {
          pairs: r.pairs.filter((p) => p.differences.length > 0),
          unpaid: payers.filter((s) => s.paid !== s.charged - s.granted),
        }
        return r.ok && paidOff && payers.length > 0 ? true : undefined
      },
      120_000,
      500,
    ).catch(async (err: Error) => {
      const refused = (
        await Promise.all(
          devnet.nodes.map(async (n) =>
            (
              await readFile(join(n.dataDir, 'node.log'), 'utf8').catch(() => '')
            )
              .split('\n')
              .filter((l) => l.includes('pay-certificate-refused') || l.includes('job-attempt-unpaid'))
              .slice(0, 5),
          ),
        )
      ).flat()
      throw new Error(`${err.message}\n${JSON.stringify(differences, null, 1)}\n${refused.join('\n')}`)
    })
    // and the owner paid the keepers for its jobs what their states say, each job once: its
    // ledger records each job's charges as it reads the job, and the two sides reconcile
    const ownerJobs = new Set<string>()
    for (const node of nodes)
      for (let after = ''; ; ) {
        const page = await getJson<ListJobsReply>(
          `${node}${listJobsRoute.path}?enqueuer=${keyId(owner)}&limit=1000${after === '' ? '' : `&after=${after}`}`,
        )
        for (const j of page.jobs) ownerJobs.add(j.id)
        if (page.next === null) break
        after = page.next
      }
    assert.ok(ownerJobs.size >= COUNTED)
    // each keeper's charges by the states the owner read (the SDK records those): a keeper whose
    // payee side says more charged from a state the owner never read
    const readAll = async () => {
      const pending = [...ownerJobs]
      const byKeeper = new Map<string, number>()
      const byJob = new Map<string, Map<string, number>>()
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let id = pending.pop(); id !== undefined; id = pending.pop()) {
            const info = await net.job(id, { key: owner }).status()
            const mine = new Map<string, number>()
            for (const c of info.paid) {
              byKeeper.set(c.keeper, (byKeeper.get(c.keeper) ?? 0) + c.amount)
              mine.set(c.keeper, c.amount)
            }
            byJob.set(id, mine)
          }
        }),
      )
      return { byKeeper, byJob }
    }
    const firstRead = await readAll()
    assert.ok([...firstRead.byKeeper.values()].some((n) => n > 0))
    const liveIds = new Set(devnet.nodes.filter((_, i) => !dead.has(i)).map((n) => n.peerId))
    // A read may come before a job's last state reached the keeper that answered it, or be
    // answered by a keeper whose state lost to another's (a keeper that did not answer in time is
    // left out): the SDK records each keeper's total as it reads, and the totals only grow, so the
    // jobs are read again until the two sides agree.
    let ownerDifferences: Array<{ differences: string[] }> = []
    let lastRead = firstRead
    let reads = 1
    await waitFor(
      'the owner and the keepers to reconcile',
      async () => {
        if (ownerDifferences.some((p) => p.differences.some((d) => d.startsWith('charged')))) {
          lastRead = await readAll()
          reads++
        }
        await net.settle({ key: owner })
        const payer = keyId(owner)
        const mine = (await net.balance({ key: owner }))!.accounts
          .filter((a) => liveIds.has(a.payee))
          .map((a) => ({ payer, payee: a.payee, charged: a.owed, paid: a.paid, granted: a.granted }))
        const theirs = await Promise.all(
          devnet.nodes.filter((_, i) => !dead.has(i)).map((n) => payeeStatement(n.http, n.peerId, payer)),
        )
        const r = reconcile(mine, theirs)
        ownerDifferences = r.pairs.filter((p) => p.differences.length > 0)
        return r.ok ? true : undefined
      },
      300_000,
      500,
    ).catch(async (err: Error) => {
      // what the job states said then and say now, by keeper, and the jobs whose charges changed;
      // and any charge a keeper could not make (it charges only as it keeps a new state)
      const again = lastRead
      const chargeFailed = (
        await Promise.all(
          devnet.nodes.map(async (n) =>
            (
              await readFile(join(n.dataDir, 'node.log'), 'utf8').catch(() => '')
            )
              .split('\n')
              .filter((l) => l.includes('job-charge-failed'))
              .slice(0, 5),
          ),
        )
      ).flat()
      const changedJobs = [...again.byJob]
        .filter(([id, now]) => {
          const then = firstRead.byJob.get(id)
          return [...now].some(([k, n]) => then?.get(k) !== n)
        })
        .slice(0, 10)
        .map(([id, now]) => ({ id, first: [...(firstRead.byJob.get(id) ?? [])], last: [...now] }))
      throw new Error(
        `${err.message}\n${JSON.stringify(
          {
            pairs: ownerDifferences,
            chargedByKeeperThen: [...firstRead.byKeeper],
            chargedByKeeperNow: [...again.byKeeper],
            reads,
            changedJobs,
            problems: net.payments?.problems.slice(-10),
            chargeFailed,
          },
          null,
          1,
        )}`,
      )
    })
    if (reads > 1) t.diagnostic(`the owner read the jobs ${reads} times before the two sides agreed`)
  })
})
