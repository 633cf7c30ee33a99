/**
 * A commit is acknowledged only once a majority of the namespace's k holders took it, so fork
 * resolution never drops it: on ONE devnet of 5 real node processes (k = 3). The node keys are
 * made before the devnet starts, so the test knows every namespace's holders in advance. SPLIT
 * runs the devnet fault `store-primary-seems-dead`: in its commits every namespace's primary
 * seems dead, so where SPLIT is second in line it acts as a second primary, while the true one
 * still commits: two primaries at once, whose views agree on who the k holders are. Nodes 0 and 1
 * store but do not execute, so the jobs case can take two holders down without changing who
 * certifies its run.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  type CommitResult,
  type CovenantClient,
  connect,
  generateKey,
  type PrivateKey,
} from '../../../src/client/index.ts'
import { CovenantConfigSchema } from '../../../src/covenant/index.ts'
import { createKeyCommit, openDatastore } from '../../../src/datastore/index.ts'
import { DEVNET_COVENANT } from '../../../src/devnet/index.ts'
import { CovenantError } from '../../../src/errors/index.ts'
import { DATASTORE_FILE } from '../../../src/node/services/datastore.ts'
import { fundFromEveryFaucet, keepersOf, planJob, postJob } from '../../fixtures/jobs.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'
import { holderOrder, plannedNodeKeys, converged as storesConverged } from '../../fixtures/stores.ts'

const NODES = 5
/**
 * Nodes that store but do not execute: the jobs case takes two of them down, so the executors a
 * run is certified by are the same in every view, down or back.
 */
const STORE_ONLY = [0, 1]
/** Adds 1 to the counter of namespace ns. */
const ADD_ONE = `export async function add(ns, ctx) {
  const n = await ctx.store.get(ns, 'count')
  ctx.store.put(ns, 'count', (typeof n === 'number' ? n : 0) + 1)
  return (typeof n === 'number' ? n : 0) + 1
}
`
/** The node with the split view. */
const SPLIT = 4

describe('quorum commits on a 5-node devnet', { timeout: 300_000 }, () => {
  let devnet: TestDevnet
  let owner: PrivateKey
  let ids: string[]
  let nets: CovenantClient[]
  /** three namespaces SPLIT does not hold (it is last in line), and one where it is second */
  let names: { plain: string; fork: string; jobs: string; split: string }
  const index = (id: string) => ids.indexOf(id)

  /** Every node, closest to the namespace `name` of the owner first. */
  const order = (name: string): number[] => holderOrder(owner, name, ids)

  /** Waits until each of `holders` holds `ns` itself at the same head; returns that head. */
  const converged = (ns: string, holders: number[]) => storesConverged({ nets, ids }, ns, holders)

  /** Asserts that each of `holders` has every acknowledged entry at its seq. */
  const keptEverywhere = async (ns: string, holders: number[], acked: CommitResult[]) => {
    for (const i of holders) {
      const { entries } = await nets[i].store(ns).history({ limit: 1000 })
      const bySeq = new Map(entries.map((e) => [e.seq, e.cid]))
      for (const a of acked)
        assert.equal(bySeq.get(a.seq), a.cid, `node ${i} holds the entry acknowledged at seq ${a.seq}`)
    }
  }

  /** Sends the same commit again until it is acknowledged: what the error's hint tells a caller. */
  const sendUntilAcked = (via: number, commit: Awaited<ReturnType<typeof createKeyCommit>>) =>
    waitFor(
      `the commit through node ${via} to be acknowledged`,
      async () => {
        try {
          return await nets[via].store(commit.ns).send(commit)
        } catch (err) {
          if ((err as CovenantError).code === 'COMMIT_UNCONFIRMED') return undefined
          throw err
        }
      },
      90_000,
    )

  before(async () => {
    owner = await generateKey()
    const { dir } = await plannedNodeKeys(NODES, (drawn) => {
      ids = drawn
      const candidates = Array.from({ length: 200 }, (_, i) => `ns-${i}`)
      const [plain, fork] = candidates.filter((n) => order(n)[NODES - 1] === SPLIT)
      const jobs = candidates.find((n) => {
        const o = order(n)
        return (
          n !== plain &&
          n !== fork &&
          o[NODES - 1] === SPLIT &&
          STORE_ONLY.includes(o[1]) &&
          STORE_ONLY.includes(o[2])
        )
      })
      const split = candidates.find((n) => order(n)[1] === SPLIT)
      if (plain === undefined || fork === undefined || jobs === undefined || split === undefined) return false
      names = { plain, fork, jobs, split }
      return true
    })
    const storeOnly = CovenantConfigSchema.parse({
      ...DEVNET_COVENANT,
      execute: { ...DEVNET_COVENANT.execute, enabled: false },
    })
    devnet = await startTestDevnet({
      dir,
      nodes: NODES,
      faults: { [SPLIT]: 'store-primary-seems-dead' },
      covenants: Object.fromEntries(STORE_ONLY.map((i) => [i, storeOnly])),
    })
    assert.deepEqual(
      devnet.nodes.map((n) => n.peerId),
      ids,
    )
    nets = await Promise.all(devnet.nodes.map((n) => connect({ node: n.http })))
  })
  after(async () => {
    await devnet?.cleanup()
  })

  it('commits with one holder down; with two down it acknowledges nothing (COMMIT_UNCONFIRMED, a stand-in does not count); healed, the same commit lands and nothing is lost', async () => {
    const [P, A, B, S] = order(names.plain)
    const ns = (await nets[P].createStore(names.plain, { public: true, key: owner })).ns
    const site = nets[P].store(ns, { key: owner })
    const acked = [await site.commit([{ key: 'a', value: 1 }])]
    assert.deepEqual(acked[0].holders.map(index), [P, A, B])

    await devnet.kill(B, 'SIGKILL')
    acked.push(await site.commit([{ key: 'b', value: 2 }]))
    assert.deepEqual(
      acked[1].holders.map(index).filter((i) => i !== S),
      [P, A],
      'the primary and the live holder: a majority of the three',
    )

    await devnet.kill(A, 'SIGKILL')
    // the primary sees both dead, so the stand-in S is a live holder it offers the entry to:
    // S takes it, yet S is not one of the k holders, and a majority of those is out of reach
    await waitFor('the primary to see both holders dead', async () => {
      const holders = (await nets[P].store(ns).info()).holders.map(index)
      return holders.includes(A) || holders.includes(B) ? undefined : true
    })
    const third = await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'c', value: 3 }] })
    await assert.rejects(
      nets[P].store(ns).send(third),
      (e: CovenantError) =>
        e.code === 'COMMIT_UNCONFIRMED' && (e.details as { majority: number; k: number }).majority === 2,
    )
    assert.equal((await nets[P].store(ns).get('c')).value, null, 'the primary did not apply it')

    await devnet.restart(A)
    await devnet.restart(B)
    const landed = await sendUntilAcked(P, third)
    acked.push(landed)
    assert.equal(landed.seq, 3)
    await converged(ns, [P, A, B])
    await keptEverywhere(ns, [P, A, B], acked)
    assert.equal((await nets[A].store(ns).get('c')).value, 3)
  })

  it('a fork: the branch a majority holds wins over a longer one that only one holder has', async () => {
    const [P, A, B] = order(names.fork)
    const ns = (await nets[P].createStore(names.fork, { public: true, key: owner })).ns
    const site = nets[P].store(ns, { key: owner })
    const acked = [await site.commit([{ key: 'x', value: 0 }])]
    await converged(ns, [P, A, B])
    // B down, the others acknowledge one more entry
    await devnet.kill(B)
    acked.push(await site.commit([{ key: 'x', value: 1 }]))
    // meanwhile B's own copy grows three entries past the first, that no other holder took
    // (what a primary that acknowledged alone would have left)
    const copy = openDatastore({
      path: join(devnet.nodes[B].dataDir, DATASTORE_FILE),
      verifyRun: () => {
        throw new CovenantError('INVALID_CERTIFICATE', 'no function entries here')
      },
    })
    try {
      for (const value of ['y1', 'y2', 'y3'])
        copy.commit(await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'y', value }] }))
      assert.equal(copy.head(ns).seq, 4)
    } finally {
      copy.close()
    }
    await devnet.restart(B)
    const head = await converged(ns, [P, A, B])
    assert.equal(head.cid, acked[1].cid, 'the majority’s branch, shorter, won')
    await keptEverywhere(ns, [P, A, B], acked)
    assert.equal((await nets[B].store(ns).get('y')).value, null)
    // and the namespace takes commits again
    acked.push(await site.commit([{ key: 'x', value: 2 }]))
    await converged(ns, [P, A, B])
    await keptEverywhere(ns, [P, A, B], acked)
  })

  it('two primaries at once: each acknowledges only what a majority took, and after sync every acknowledged entry is on every holder', async () => {
    const [P, second, H] = order(names.split)
    assert.equal(second, SPLIT)
    const ns = (await nets[P].createStore(names.split, { public: true, key: owner })).ns
    await converged(ns, [P, SPLIT, H])
    const write = (key: string) => createKeyCommit({ issuer: owner, ns, writes: [{ key, value: key }] })

    // the deterministic part: each primary acknowledges a commit of its own, one after the other
    const first = await sendUntilAcked(P, await write('p-0'))
    assert.equal(index(first.holders[0]), P)
    const second_ = await sendUntilAcked(SPLIT, await write('s-0'))
    assert.equal(index(second_.holders[0]), SPLIT, 'the node with the split view committed as a primary')
    assert.ok(second_.seq > first.seq, 'it did not commit over the entry the other acknowledged')
    const acked: CommitResult[] = [first, second_]

    // the third holder frozen, each primary reaches no other of the k holders (a stand-in may
    // take the entry; it does not count): neither acknowledges, whatever each took or left
    const third = devnet.nodes[H].process!
    third.kill('SIGSTOP')
    const alone = [
      { via: P, commit: await write('p-alone') },
      { via: SPLIT, commit: await write('s-alone') },
    ]
    let frozen: PromiseSettledResult<CommitResult>[]
    try {
      frozen = await Promise.allSettled(alone.map(({ via, commit }) => nets[via].store(ns).send(commit)))
    } finally {
      third.kill('SIGCONT')
    }
    for (const o of frozen)
      assert.equal(
        o.status === 'rejected' ? (o.reason as CovenantError).code : `acknowledged at ${o.value.seq}`,
        'COMMIT_UNCONFIRMED',
      )

    // then both at once, several commits each
    const commits = await Promise.all(
      [P, SPLIT].flatMap((via) =>
        Array.from({ length: 6 }, async (_, i) => ({ via, commit: await write(`${via}-${i}`) })),
      ),
    )
    commits.push(...alone)
    const outcomes = await Promise.allSettled(
      commits.map(({ via, commit }) => nets[via].store(ns).send(commit)),
    )
    for (const [i, o] of outcomes.entries()) {
      if (o.status === 'fulfilled') acked.push(o.value)
      else
        assert.equal(
          (o.reason as CovenantError).code,
          'COMMIT_UNCONFIRMED',
          `commit ${i} was refused only for want of a majority`,
        )
    }
    // no two acknowledged commits at one seq
    assert.equal(new Set(acked.map((a) => a.seq)).size, acked.length, JSON.stringify(acked.map((a) => a.seq)))

    // the refused ones are sent again until they land (or turn out to have landed): nothing is lost
    for (const [i, o] of outcomes.entries())
      if (o.status === 'rejected') acked.push(await sendUntilAcked(P, commits[i].commit))
    const head = await converged(ns, [P, SPLIT, H])
    await keptEverywhere(ns, [P, SPLIT, H], acked)
    const { entries } = await nets[H].store(ns).history({ limit: 1000 })
    assert.equal(entries.length, head.seq)
    assert.equal(new Set(entries.map((e) => e.id)).size, 2 + commits.length, 'each commit once')
    assert.equal(entries.length, 2 + commits.length)
  })

  it('a job whose writes too few holders can take is deferred, not failed (with no retries left), and its effect lands once when they are back', async () => {
    const [P, A, B] = order(names.jobs)
    const everyone = await connect({ nodes: devnet.nodes.map((n) => n.http) })
    await fundFromEveryFaucet(everyone, owner, NODES)
    const fn = (await everyone.deploy(ADD_ONE, { key: owner })).cid
    const ns = (await nets[P].createStore(names.jobs, { public: true, key: owner })).ns
    const grant = await everyone.grant({
      namespace: ns,
      audience: { fn },
      prefix: 'count',
      expiresAt: Date.now() + 86_400_000,
      key: owner,
    })
    await nets[P].store(ns, { key: owner }).keepGrants([grant])
    await converged(ns, [P, A, B])

    await devnet.kill(A, 'SIGKILL')
    await devnet.kill(B, 'SIGKILL')
    const live = await connect({
      nodes: devnet.nodes.filter((_, i) => i !== A && i !== B).map((n) => n.http),
    })
    // dispatched by a node other than SPLIT (whose commits would go to a stand-in primary that
    // lacks the namespace's grant), with A and B down and back
    const job = planJob(
      owner,
      { fn, export: 'add', args: [ns], stores: [ns], retries: 0 },
      (jobId) => [...keepersOf(jobId, ids, new Set([A, B])), ...keepersOf(jobId, ids)],
      (k) => k[0] !== SPLIT && k[3] !== SPLIT,
    )
    const { id } = job
    assert.equal((await postJob(devnet.nodes[P].http, job.record)).body.id, id)
    const unconfirmed = (a: { outcome: string; error: { code: string } | null }) =>
      a.error?.code === 'COMMIT_UNCONFIRMED'
    const seen = await waitFor(
      'an attempt whose commit too few holders took',
      async () => {
        const job = await live.job(id).status()
        return job.status === 'failed' || job.attempts.some(unconfirmed) ? job : undefined
      },
      120_000,
    )
    assert.notEqual(seen.status, 'failed', JSON.stringify(seen.error))
    assert.deepEqual(
      seen.attempts.filter(unconfirmed).map((a) => a.outcome),
      seen.attempts.filter(unconfirmed).map(() => 'deferred'),
    )

    await devnet.restart(A)
    await devnet.restart(B)
    // (asked again while the job moves to the keepers that came back)
    const done = await waitFor(
      'the job to settle',
      async () => {
        const job = await everyone.job(id).status()
        return job.status === 'succeeded' || job.status === 'failed' ? job : undefined
      },
      120_000,
    )
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error))
    assert.equal(done.failures, 0)
    await converged(ns, [P, A, B])
    for (const i of [P, A, B]) {
      const { entries } = await nets[i].store(ns).history({ limit: 1000 })
      assert.deepEqual(
        entries.filter((e) => e.kind === 'function').map((e) => e.id),
        [id],
        `node ${i}: one entry, under the job’s id`,
      )
      assert.equal((await nets[i].store(ns).get('count')).value, 1)
    }
  })
})
