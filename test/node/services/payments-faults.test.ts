/**
 * Payments under faults, on a devnet of seven real node processes: three callers make
 * `PAYMENT_FAULT_CALLS` calls (1 000 by default) through executors that lie (`wrong-result`), sign
 * badly (`bad-signature`) or die mid-call (`crash`, restarted whenever it is down), while an honest
 * executor is killed (SIGKILL) and restarted mid-run and every caller stops and starts again
 * halfway. Afterwards every pair (caller, node) reconciles exactly: what the caller's ledger says
 * it was charged and paid is what the node's says, each charge is the node's price × the fuel it
 * signed for, and the executors that lied or failed were paid nothing. (Where the outputs of a
 * failed quorum differ is shown on the exec devnet, test/node/services/exec.test.ts.)
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CovenantClient, connect, loadCallerKey } from '../../../src/client/index.ts'
import { type CovenantConfig, CovenantConfigSchema, DEFAULT_COVENANT } from '../../../src/covenant/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import { keyId } from '../../../src/keys/index.ts'
import { chargeFor, type PairStatement, reconcile } from '../../../src/ledger/index.ts'
import { payeeStatement, startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'

const CALLS = Number(process.env.PAYMENT_FAULT_CALLS ?? 1000)
const CONCURRENCY = 8
const LIAR = 4
const BADSIG = 5
const CRASH = 6
/** an honest executor killed and restarted mid-run */
const KILLED = 2

const price = (i: number) => ({ basePrice: 1000 * (i + 1), pricePerFuel: 10 * (i + 1) })
const covenants = (): Record<number, CovenantConfig> =>
  Object.fromEntries(
    Array.from({ length: 7 }, (_, i) => [
      i,
      CovenantConfigSchema.parse({
        ...DEFAULT_COVENANT,
        execute: { ...DEFAULT_COVENANT.execute, enabled: true, ...price(i) },
      }),
    ]),
  )

const SOURCE = `
export function work(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s }
export function add(a, b) { return { sum: a + b } }
`

describe('payments under faults', { timeout: 900_000 }, () => {
  let devnet: TestDevnet
  let dir: string
  let fn: string
  const peer = (i: number) => devnet.nodes[i].peerId
  const http = (i: number) => devnet.nodes[i].http
  const indexOf = (id: string) => devnet.nodes.findIndex((n) => n.peerId === id)

  /** What node `i` says it charged and received of `payer`. */
  /**
   * What node `i` says of its account with `payer`. The crashing executor can still be asked a
   * call after the run (a gateway asks an abandoned executor again until the request's deadline),
   * and die of it mid-answer (ci17: ECONNRESET): it is started again, and asked again.
   */
  const payeeSays = (i: number, payer: string): Promise<PairStatement> =>
    waitFor(`node ${i}'s account with ${payer}`, async () => {
      if (i === CRASH && devnet.nodes[i].process === undefined) await devnet.restart(i)
      const { overSince: _, ...statement } = await payeeStatement(http(i), peer(i), payer)
      return statement
    })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-payments-faults-'))
    devnet = await startTestDevnet({
      nodes: 7,
      covenants: covenants(),
      faults: { [LIAR]: 'wrong-result', [BADSIG]: 'bad-signature', [CRASH]: 'crash' },
      heartbeatMs: 2000,
      helloTimeoutMs: 10_000,
      repairIntervalMs: 5000,
    })
    const deployer = await connect({ devnetDir: devnet.dir, payments: false })
    const key = await loadCallerKey(join(dir, 'publisher.key'))
    ;({ cid: fn } = await deployer.deploy(SOURCE, { key, exports: ['add', 'work'] }))
  })
  after(async () => {
    await devnet?.cleanup()
    await rm(dir, { recursive: true, force: true })
  })

  it(`reconciles every pair after ${CALLS} calls through lying, failing and restarted executors and restarted callers`, async () => {
    const callers = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => ({ name, key: await loadCallerKey(join(dir, name, 'key')) })),
    )
    const open = () =>
      Promise.all(
        callers.map((c) => connect({ devnetDir: devnet.dir, payments: { ledgerDir: join(dir, c.name) } })),
      )
    let clients: CovenantClient[] = await open()
    let next = 0
    const outcomes = new Map<string, number>()
    const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1)
    let crashRestarts = 0
    const background: Array<Promise<unknown>> = []

    const one = async (i: number) => {
      if (i === Math.floor(CALLS * 0.15))
        background.push(devnet.kill(KILLED, 'SIGKILL').then(() => devnet.restart(KILLED)))
      // the crashing executor comes back whenever it has died, to crash again
      if (devnet.nodes[CRASH].process === undefined && crashRestarts < 5) {
        crashRestarts++
        background.push(devnet.restart(CRASH).catch(() => {}))
      }
      const c = i % callers.length
      const work = i % 2 === 0
      try {
        await clients[c].invoke(fn, work ? 'work' : 'add', work ? [(i % 50) * 500] : [i, 1], {
          key: callers[c].key,
        })
        count('ok')
      } catch (err) {
        count((err as CovenantError).code)
      }
    }
    const run = async (until: number) => {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < until) await one(next++)
        }),
      )
    }
    await run(Math.floor(CALLS / 2))
    // every caller stops (settling what it can) and starts again from its ledger
    await Promise.all(clients.map((c) => c.close()))
    clients = await open()
    await run(CALLS)
    await Promise.all(background)
    // the crashing executor only dies on a call: up, it answers for its accounts like any node
    if (devnet.nodes[CRASH].process === undefined) await devnet.restart(CRASH)
    await devnet.waitConnected()
    assert.ok((outcomes.get('ok') ?? 0) >= CALLS * 0.8, JSON.stringify([...outcomes]))

    for (const [c, caller] of callers.entries()) {
      const net = clients[c]
      const ledger = (await net.payments!.ledger(caller.key, false))!
      await waitFor('everything sent and confirmed', async () => {
        await net.settle({ key: caller.key })
        return ledger.due().length === 0 ? true : undefined
      })
      const payer = keyId(caller.key)
      const payeeSide = await Promise.all(devnet.nodes.map((n) => payeeSays(n.index, payer)))
      const report = reconcile(ledger.statements(), payeeSide)
      assert.ok(
        report.ok,
        JSON.stringify([
          report.pairs.filter((p) => !p.ok).map((p) => [indexOf(p.payee), p.differences]),
          net.payments?.problems.map((p) => [p.payee && indexOf(p.payee), p.code, p.message]),
        ]),
      )
      for (const i of [LIAR, BADSIG, CRASH])
        assert.equal(payeeSide[i].charged, 0, `node ${i} was paid nothing: it lied or failed`)
      assert.ok(payeeSide.some((s) => s.charged > 0))
      // each charge is that node's price × the fuel its receipt signed for
      for (const charge of ledger.history({ limit: 1000 }))
        assert.equal(charge.amount, chargeFor(price(indexOf(charge.payee)), charge.fuel ?? -1))
    }
    await Promise.all(clients.map((c) => c.close()))
  })
})
