/**
 * One entry per seq, end to end (the rule itself: test/datastore/promises.test.ts): on a devnet
 * of 3 real node processes (k = 3, every node holds every namespace). STALL runs the devnet fault
 * `store-stall-after-check`: as primary, once its check round succeeded it never asks the holders
 * to apply, and keeps its offer fresh while it lives. SPLIT runs `store-primary-seems-dead`, so
 * where STALL is the primary and SPLIT second in line, SPLIT commits as a second primary. The
 * node keys are made before the devnet starts, so the test picks such a namespace in advance.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type CovenantClient, connect, generateKey, type PrivateKey } from '../../../src/client/index.ts'
import { createKeyCommit } from '../../../src/datastore/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'
import {
  holderOrder,
  localHead,
  plannedNodeKeys,
  converged as storesConverged,
} from '../../fixtures/stores.ts'

const NODES = 3
/** The primary that checks an entry and never applies it. */
const STALL = 0
/** The node with the split view: STALL seems dead to it, so it commits as a second primary. */
const SPLIT = 1
/** The third holder: it checked STALL's entry, so it promised STALL that seq. */
const H = 2

describe('one entry per seq on a 3-node devnet', { timeout: 300_000 }, () => {
  let devnet: TestDevnet
  let owner: PrivateKey
  let ids: string[]
  let nets: CovenantClient[]
  let name: string

  /** Node `i`'s count of entries offered to it, by outcome (its metric). */
  const appends = async (i: number, outcome: string): Promise<number> => {
    const text = await (await fetch(`${devnet.nodes[i].http}/metrics`)).text()
    const m = new RegExp(`^covenant_store_appends_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text)
    return m === null ? 0 : Number(m[1])
  }

  before(async () => {
    owner = await generateKey()
    const { dir } = await plannedNodeKeys(NODES, (drawn) => {
      ids = drawn
      const found = Array.from({ length: 200 }, (_, i) => `ns-${i}`).find((n) =>
        holderOrder(owner, n, ids).every((x, i) => x === [STALL, SPLIT, H][i]),
      )
      if (found === undefined) return false
      name = found
      return true
    })
    devnet = await startTestDevnet({
      dir,
      nodes: NODES,
      faults: { [STALL]: 'store-stall-after-check', [SPLIT]: 'store-primary-seems-dead' },
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

  it('a holder that checked one primary’s entry refuses another primary’s at that seq (ENTRY_PROMISED), until that primary is dead in its view; then the other lands, once', async () => {
    const ns = (await nets[H].createStore(name, { public: true, key: owner })).ns
    const all = [STALL, SPLIT, H]
    await storesConverged({ nets, ids }, ns, all)
    const write = (value: string) => createKeyCommit({ issuer: owner, ns, writes: [{ key: 'k', value }] })

    // STALL's entry at seq 1: H checks it (SPLIT, whose view lacks STALL, refuses), and it is
    // never applied; STALL's caller waits until STALL dies
    const stalled = Promise.allSettled([nets[STALL].store(ns).send(await write('stalled'))])
    await waitFor('H to check the stalled primary’s entry', async () =>
      (await appends(H, 'checked')) > 0 ? true : undefined,
    )

    // SPLIT's different entry at seq 1: H refuses it, so SPLIT has no majority and applies nothing
    const other = await write('other')
    await assert.rejects(nets[SPLIT].store(ns).send(other), (e: CovenantError) => {
      assert.equal(e.code, 'COMMIT_UNCONFIRMED')
      assert.deepEqual(e.details, { seq: 1, others: 0, k: 3, majority: 2 })
      return true
    })
    assert.equal(await appends(H, 'ENTRY_PROMISED'), 1, 'H refused it for its promise')
    for (const i of all)
      assert.equal((await localHead({ nets, ids }, i, ns))?.seq, 0, `node ${i} applied nothing`)

    // STALL dies: once H sees it dead, its promise lapses and SPLIT's entry lands at seq 1
    await devnet.kill(STALL, 'SIGKILL')
    await waitFor('H to see the stalled primary dead', async () =>
      (await nets[H].store(ns).info()).holders.includes(ids[STALL]) ? undefined : true,
    )
    const landed = await nets[SPLIT].store(ns).send(other)
    assert.equal(landed.seq, 1)
    assert.equal(landed.duplicate, false)
    assert.deepEqual(landed.holders.map((id) => ids.indexOf(id)).sort(), [SPLIT, H])
    assert.equal(
      (await nets[SPLIT].store(ns).send(other)).duplicate,
      true,
      'sent again, it is not applied twice',
    )
    assert.equal((await stalled)[0].status, 'rejected', 'the stalled commit was never acknowledged')

    // STALL comes back and catches up: every holder has SPLIT's entry at seq 1, once, and STALL's never
    await devnet.restart(STALL)
    const head = await storesConverged({ nets, ids }, ns, all)
    assert.equal(head.cid, landed.cid)
    for (const i of all) {
      const { entries } = await nets[i].store(ns).history({ limit: 1000 })
      assert.deepEqual(
        entries.map((e) => [e.seq, e.cid, e.id]),
        [[1, landed.cid, other.id]],
        `node ${i}`,
      )
      assert.equal((await nets[i].store(ns).get('k')).value, 'other')
    }
  })
})
