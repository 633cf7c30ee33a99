/**
 * A stand-in primary (a holder acting as primary while the namespace's first holder is out of its
 * sight) first pulls what the other live holders have beyond its copy, so it does not judge a
 * commit on a stale one: on a devnet of 3 real node processes (k = 3). LAG runs the devnet fault
 * `store-no-catch-up`: it never catches up on its own (sync rounds and nudges), so its copy stays
 * as stale as the test left it, whatever the machine's speed.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type CovenantClient, connect, generateKey, type PrivateKey } from '../../../src/client/index.ts'
import { createKeyCommit } from '../../../src/datastore/index.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'
import {
  holderOrder,
  localHead,
  plannedNodeKeys,
  converged as storesConverged,
} from '../../fixtures/stores.ts'

const NODES = 3
/** The node that never catches up on its own: second in line for the namespace. */
const LAG = 1

describe('a stand-in primary on a stale copy', { timeout: 240_000 }, () => {
  let devnet: TestDevnet
  let owner: PrivateKey
  let ids: string[]
  let nets: CovenantClient[]
  let name: string

  const order = (n: string): number[] => holderOrder(owner, n, ids)

  before(async () => {
    owner = await generateKey()
    const { dir } = await plannedNodeKeys(NODES, (drawn) => {
      ids = drawn
      const found = Array.from({ length: 100 }, (_, i) => `stand-in-${i}`).find((n) => order(n)[1] === LAG)
      if (found !== undefined) name = found
      return found !== undefined
    })
    devnet = await startTestDevnet({ dir, nodes: NODES, faults: { [LAG]: 'store-no-catch-up' } })
    nets = await Promise.all(devnet.nodes.map((n) => connect({ node: n.http })))
  })
  after(async () => {
    await devnet?.cleanup()
  })

  it('pulls from the other live holders before it judges: a commit that reads the version it lacked lands', async () => {
    const [P, , B] = order(name)
    const ns = (await nets[P].createStore(name, { public: true, key: owner })).ns
    const site = nets[P].store(ns, { key: owner })
    await site.commit([{ key: 'x', value: 1 }])
    await storesConverged({ nets, ids }, ns, [P, LAG, B])

    // LAG frozen, the primary and B take x = 2 without it (a majority of the three)
    const lag = devnet.nodes[LAG].process!
    lag.kill('SIGSTOP')
    let second: Awaited<ReturnType<typeof site.commit>>
    try {
      second = await site.commit([{ key: 'x', value: 2 }])
    } finally {
      lag.kill('SIGCONT')
    }
    assert.equal(second.seq, 2)
    assert.ok(!second.holders.includes(ids[LAG]), 'LAG was left out')
    assert.equal((await localHead({ nets, ids }, LAG, ns))?.seq, 1, 'LAG does not catch up on its own')

    // the primary gone, LAG is first in line among the live holders: it acts as primary
    await devnet.kill(P, 'SIGKILL')
    await waitFor('LAG to see the primary dead', async () =>
      (await nets[LAG].store(ns).info()).holders.includes(ids[P]) ? undefined : true,
    )
    // a commit made on what B holds: it read x at version 2, which LAG's copy lacks
    const commit = await createKeyCommit({
      issuer: owner,
      ns,
      reads: [{ key: 'x', version: 2 }],
      writes: [{ key: 'x', value: 3 }],
    })
    const landed = await nets[LAG].store(ns).send(commit)
    assert.equal(landed.seq, 3)
    assert.equal(landed.holders[0], ids[LAG], 'LAG committed as the stand-in primary')
    assert.deepEqual((await nets[B].store(ns).get('x')).value, 3)
  })
})
