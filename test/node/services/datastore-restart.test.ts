/**
 * A restarted holder counts the namespace's holders it knew before its peer table hears them
 * again: on a devnet of 3 real node processes (k = 3), a holder restarted while the other two are
 * down acknowledges nothing alone on its copy; once they are back it commits as before.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type CovenantClient, connect, generateKey, type PrivateKey } from '../../../src/client/index.ts'
import { createKeyCommit } from '../../../src/datastore/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'
import { converged as storesConverged } from '../../fixtures/stores.ts'

describe('a holder restarted before it hears the other holders', { timeout: 240_000 }, () => {
  let devnet: TestDevnet
  let owner: PrivateKey
  let nets: CovenantClient[]
  let ids: string[]

  before(async () => {
    owner = await generateKey()
    devnet = await startTestDevnet({ nodes: 3 })
    ids = devnet.nodes.map((n) => n.peerId)
    nets = await Promise.all(devnet.nodes.map((n) => connect({ node: n.http })))
  })
  after(async () => {
    await devnet?.cleanup()
  })

  it('answers COMMIT_UNCONFIRMED with the others unreachable (it does not commit alone on its copy), and commits once it hears them again', async () => {
    const ns = (await nets[0].createStore('restarted', { public: true, key: owner })).ns
    const first = await nets[0].store(ns, { key: owner }).commit([{ key: 'a', value: 1 }])
    assert.equal(first.holders.length, 3, 'k = 3')
    await storesConverged({ nets, ids }, ns, [0, 1, 2])

    // the other two holders down, node 0 restarts: its peer table knows no one
    await devnet.kill(1, 'SIGKILL')
    await devnet.kill(2, 'SIGKILL')
    await devnet.restart(0)
    const second = await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'b', value: 2 }] })
    await assert.rejects(
      nets[0].store(ns).send(second),
      (e: CovenantError) =>
        e.code === 'COMMIT_UNCONFIRMED' &&
        (e.details as { k: number; majority: number }).k === 3 &&
        (e.details as { k: number; majority: number }).majority === 2,
    )
    assert.equal((await nets[0].store(ns).get('b')).value, null, 'it applied nothing')

    // the user's case: the holders back and heard, the same commit lands, once, everywhere
    await devnet.restart(1)
    await devnet.restart(2)
    const landed = await waitFor(
      'the commit to be acknowledged',
      async () => {
        try {
          return await nets[0].store(ns).send(second)
        } catch (err) {
          if ((err as CovenantError).code === 'COMMIT_UNCONFIRMED') return undefined
          throw err
        }
      },
      90_000,
    )
    assert.equal(landed.seq, 2)
    await storesConverged({ nets, ids }, ns, [0, 1, 2])
    for (const net of nets) assert.equal((await net.store(ns).get('b')).value, 2)
  })
})
