/**
 * Who pays for a job, on ONE devnet of 5 real node processes with payments on (docs/jobs.md, "Who
 * pays for a job"). Every node extends 5 000 000 ncr of credit to strangers: less than one attempt
 * of a default job may cost (3 executors × 2 010 000 ncr), so a new key cannot enqueue one until
 * it has paid ahead. The keepers dispatch attempts on the credit the executors extend them and
 * pay the executors; they charge the enqueuer what each attempt cost, within the job's budget,
 * once per job, as the job's state (which they agree on) says.
 *
 * KEEPER_CRASHER dies (SIGKILL) right after it dispatched its first attempt
 * (`jobs-crash-on-dispatch`); its case comes first, so it dispatches nothing else.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { owedRoute } from '../../../src/api/index.ts'
import {
  type CovenantClient,
  connect,
  generateKey,
  type JobInfo,
  keyId,
  type PrivateKey,
} from '../../../src/client/index.ts'
import { DEVNET_COVENANT } from '../../../src/devnet/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import { type PairStatement, reconcile } from '../../../src/ledger/index.ts'
import { keepersOf, planJob, postJob } from '../../fixtures/jobs.ts'
import { payeeStatement, startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'

const NODES = 5
const KEEPER_CRASHER = 4
const CREDIT = 5_000_000
const BASE_PRICE = DEVNET_COVENANT.execute.basePrice
const PRICE_PER_FUEL = DEVNET_COVENANT.execute.pricePerFuel

const SOURCE = `
export function hello(name) { return 'hello ' + name }
/** Fails every time, as a function may while what it depends on is not there yet: retried. */
export function notYet() { throw new Error('not yet') }
`

describe('who pays for a job, on a 5-node devnet', { timeout: 900_000 }, () => {
  let devnet: TestDevnet
  let ids: string[]
  let net: CovenantClient
  let fn: string
  const dead = new Set<number>()
  const keepers = (id: string) => keepersOf(id, ids, dead)
  const alive = () => devnet.nodes.filter((_, i) => !dead.has(i))

  const rejectsWith = (p: Promise<unknown>, code: string) =>
    assert.rejects(p, (e: CovenantError) => e.code === code, code)

  const chargedOf = (info: Pick<JobInfo, 'paid'>) => info.paid.reduce((n, c) => n + c.amount, 0)

  /** A key with faucet credit at every node: it may enqueue. */
  const funded = async (): Promise<PrivateKey> => {
    const key = await generateKey()
    const { from } = await net.faucet(undefined, { key })
    assert.equal(from.length, alive().length, 'every live node minted')
    return key
  }

  /** The enqueuer's ledger (this client's) and the live keepers' accounts of it agree, pair by pair. */
  const enqueuerReconciles = async (key: PrivateKey) => {
    const payer = keyId(key)
    return waitFor('the enqueuer and its keepers to reconcile', async () => {
      await net.settle({ key })
      const mine = (await net.balance({ key }))!.accounts
      const live = new Set(alive().map((n) => n.peerId))
      const payerSide: PairStatement[] = mine
        .filter((a) => live.has(a.payee))
        .map((a) => ({ payer, payee: a.payee, charged: a.owed, paid: a.paid, granted: a.granted }))
      const payeeSide = await Promise.all(alive().map((n) => payeeStatement(n.http, n.peerId, payer)))
      const r = reconcile(payerSide, payeeSide)
      return r.ok ? { payerSide, payeeSide } : undefined
    })
  }

  /** Every live keeper's payer ledger and its live executors' accounts of it agree: executors are paid. */
  const keepersPaidExecutors = () =>
    waitFor(
      'keepers and executors to reconcile',
      async () => {
        const live = alive()
        const liveIds = new Set(live.map((n) => n.peerId))
        const owed = await Promise.all(
          live.map(async (n) => {
            const res = await fetch(`${n.http}${owedRoute.path}`)
            return (await res.json()) as { payer: string; statements: PairStatement[] }
          }),
        )
        const payerSide = owed.flatMap((o) => o.statements).filter((s) => liveIds.has(s.payee))
        const payeeSide = await Promise.all(
          payerSide.map((s) =>
            payeeStatement(live.find((n) => n.peerId === s.payee)!.http, s.payee, s.payer),
          ),
        )
        const paidOff = payerSide.every((s) => s.paid + s.granted >= s.charged)
        return reconcile(payerSide, payeeSide).ok && paidOff ? payerSide : undefined
      },
      60_000,
    )

  before(async () => {
    const covenant = { ...DEVNET_COVENANT, credit: CREDIT }
    devnet = await startTestDevnet({
      nodes: NODES,
      covenants: Object.fromEntries(ids0(NODES).map((i) => [i, covenant])),
      faults: { [KEEPER_CRASHER]: 'jobs-crash-on-dispatch' },
    })
    ids = devnet.nodes.map((n) => n.peerId)
    net = await connect({ nodes: devnet.nodes.map((n) => n.http) })
    fn = (await net.deploy(SOURCE, { key: await generateKey() })).cid
  })
  after(() => devnet?.cleanup())

  it('charges the enqueuer once when a keeper takes over from a dispatcher that died (SIGKILL) mid-attempt', async () => {
    const payer = await funded()
    const job = planJob(
      payer,
      { fn, export: 'hello', args: ['again'] },
      keepers,
      (k) => k[0] === KEEPER_CRASHER && k[1] !== KEEPER_CRASHER,
    )
    const next = keepers(job.id)[1]
    assert.equal((await postJob(devnet.nodes[next].http, job.record)).body.id, job.id)
    const out = await net.job(job.id, { key: payer }).wait()
    assert.equal(out.value, 'hello again')
    await waitFor('the crashing keeper to exit', async () =>
      devnet.nodes[KEEPER_CRASHER].process === undefined ? true : undefined,
    )
    dead.add(KEEPER_CRASHER)
    const info = await net.job(job.id, { key: payer }).status()
    const [first, second] = info.attempts
    assert.deepEqual([first.dispatcher, first.outcome, first.charged], [ids[KEEPER_CRASHER], 'abandoned', 0])
    assert.deepEqual([second.dispatcher, second.outcome], [ids[next], 'succeeded'])
    // the successful attempt is charged once, by the keeper that dispatched it, at what its
    // executors' receipts cost
    const cost = second.receipts.reduce((n, r) => n + BASE_PRICE + PRICE_PER_FUEL * r.fuel, 0)
    assert.ok(second.charged > 0 && second.charged <= cost)
    assert.deepEqual(info.charges, [{ keeper: ids[next], amount: second.charged }])
    assert.deepEqual(info.paid, info.charges)
    // reading the job again, through another node, records nothing more
    await net.job(job.id, { key: payer }).status()
    const { payeeSide } = await enqueuerReconciles(payer)
    const charged = payeeSide.filter((s) => s.charged > 0)
    assert.deepEqual(
      charged.map((s) => [s.payee, s.charged]),
      [[ids[next], second.charged]],
      'one keeper charged, once',
    )
    const history = (await net.balance({ key: payer }))!.history.filter((h) => h.ref === `job:${job.id}`)
    assert.deepEqual(
      history.map((h) => [h.payee, h.kind, h.amount]),
      [[ids[next], 'job', second.charged]],
    )
    await keepersPaidExecutors()
  })

  it('refuses a job at enqueue with PAYMENT_REQUIRED when its enqueuer cannot pay for an attempt, or its budget cannot', async () => {
    const broke = await generateKey()
    // a stranger's credit (5 000 000 ncr) is less than an attempt may cost (3 × 2 010 000 ncr)
    await rejectsWith(net.enqueue(fn, 'hello', ['broke'], { key: broke }), 'PAYMENT_REQUIRED')
    // a budget below three executors' base price buys no attempt, whatever the account holds
    const rich = await funded()
    await rejectsWith(
      net.enqueue(fn, 'hello', ['cheap'], { key: rich, budget: 3 * BASE_PRICE - 1 }),
      'PAYMENT_REQUIRED',
    )
    // paid ahead (the faucet, on a devnet), the same enqueuer's job is taken and runs
    await net.faucet(undefined, { key: broke })
    const { id } = await net.enqueue(fn, 'hello', ['broke'], { key: broke })
    const out = await net.job(id).wait()
    assert.equal(out.value, 'hello broke')
    assert.ok(chargedOf(out.job) > 0)
    const { payeeSide } = await enqueuerReconciles(broke)
    assert.equal(
      payeeSide.reduce((n, s) => n + s.charged, 0),
      chargedOf(out.job),
      'the keepers charged what the job’s state says, no more',
    )
    // nothing was held for the refused jobs: no keeper charged the key that could not pay
    assert.equal(
      (await enqueuerReconciles(rich)).payeeSide.reduce((n, s) => n + s.charged, 0),
      0,
    )
  })

  it('pays the executors of every attempt of a job that retries, and charges its enqueuer no more than its budget', async () => {
    const payer = await funded()
    const budget = 55_500
    const { id } = await net.enqueue(fn, 'notYet', [], { key: payer, retries: 6, budget })
    await rejectsWith(net.job(id).wait(), 'PAYMENT_REQUIRED')
    const info = await net.job(id).status()
    assert.equal(info.status, 'failed')
    assert.match(info.error?.message ?? '', /budget of 55500 ncr is spent/)
    assert.equal(chargedOf(info), budget, 'charged its whole budget, and no more')
    const attempts = info.attempts
    assert.ok(attempts.length >= 2, 'it retried')
    assert.equal(
      attempts.reduce((n, a) => n + a.charged, 0),
      budget,
    )
    for (const a of attempts) assert.equal(a.outcome, 'failed')
    // what each attempt's executors cost: the last one's is more than was left of the budget
    const costs = attempts.map((a) =>
      a.receipts.reduce((n, r) => n + BASE_PRICE + PRICE_PER_FUEL * r.fuel, 0),
    )
    for (const [i, a] of attempts.entries()) assert.ok(a.charged <= costs[i])
    assert.ok(costs.reduce((n, c) => n + c, 0) > budget, 'the executors did more work than the budget pays')
    assert.ok(
      attempts.slice(0, -1).every((a, i) => a.charged === costs[i]),
      'every attempt but the last charged in full',
    )
    // the executors are paid for every attempt by the keeper that dispatched it (each receipt in a
    // certificate: the attempt refused for want of budget asked no executor, and is paid to none)
    const dispatchers = new Set(attempts.map((a) => a.dispatcher))
    assert.equal(dispatchers.size, 1)
    const [dispatcher] = dispatchers
    const paid = await keepersPaidExecutors()
    const owedByDispatcher = new Map(
      paid.filter((s) => s.payer === dispatcher).map((s) => [s.payee, s.charged]),
    )
    for (const a of attempts)
      for (const r of a.receipts)
        if (r.executor !== dispatcher) assert.ok((owedByDispatcher.get(r.executor) ?? 0) > 0, r.executor)
    await enqueuerReconciles(payer)
  })

  it('pays its executors ahead when they refuse its attempts until paid: each job still takes one attempt', async () => {
    const payer = await funded()
    // Six jobs due together, all dispatched by one keeper. Their first attempts use its first
    // ticket, so they ask the same executors, and an executor admits at most two attempts of a
    // stranger (CREDIT) before it is paid: the others are refused PAYMENT_REQUIRED. The keeper's
    // want of credit is not the jobs' failure.
    const runAfter = Date.now() + 3000
    const first = planJob(
      payer,
      { fn, export: 'hello', args: ['burst 0'], runAfter },
      keepers,
      (k) => k[0] !== KEEPER_CRASHER,
    )
    const dispatcher = keepers(first.id)[0]
    const jobs = [first]
    for (let i = 1; i < 6; i++)
      jobs.push(
        planJob(
          payer,
          { fn, export: 'hello', args: [`burst ${i}`], runAfter },
          keepers,
          (k) => k[0] === dispatcher,
        ),
      )
    for (const job of jobs)
      assert.equal((await postJob(devnet.nodes[dispatcher].http, job.record)).body.id, job.id)
    const outs = await Promise.all(jobs.map((job) => net.job(job.id, { key: payer }).wait()))
    for (const [i, out] of outs.entries()) {
      assert.equal(out.value, `hello burst ${i}`)
      assert.deepEqual(
        out.job.attempts.map((a) => [a.dispatcher, a.outcome]),
        [[ids[dispatcher], 'succeeded']],
        'one attempt, by its dispatcher',
      )
    }
    await keepersPaidExecutors()
    await enqueuerReconciles(payer)
  })
})

function ids0(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
}
