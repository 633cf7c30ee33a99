/**
 * Payments under faults, on a devnet of seven real node processes: three callers make
 * `PAYMENT_FAULT_CALLS` calls (1 000 by default) through executors that lie (`wrong-result`), sign
 * badly (`bad-signature`) or die mid-call (`crash`, restarted whenever it is down), while an honest
 * executor is killed (SIGKILL) and restarted mid-run and every caller stops and starts again
 * halfway. Afterwards every pair (caller, node) reconciles exactly: what the caller's ledger says
 * it was charged and paid is what the node's says, each charge is the node's price × the fuel it
 * signed for, and the executors that lied or failed were paid nothing. Before that, a failed
 * quorum shows where the outputs differ and costs nothing.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CovenantClient, connect, loadCallerKey } from '../../../src/client/index.ts'
import { type CovenantConfig, CovenantConfigSchema, DEFAULT_COVENANT } from '../../../src/covenant/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import { keyId } from '../../../src/keys/index.ts'
import { chargeFor, type PairStatement, reconcile } from '../../../src/ledger/index.ts'
import { covenant as runCovenant } from '../../fixtures/cli.ts'
import { ticketWhere } from '../../fixtures/exec-cluster.ts'
import { payeeStatement, startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'

const CALLS = Number(process.env.PAYMENT_FAULT_CALLS ?? 1000)
const CONCURRENCY = 8
const HONEST = [0, 1, 2, 3]
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
  let publisher: string
  const peer = (i: number) => devnet.nodes[i].peerId
  const http = (i: number) => devnet.nodes[i].http
  const indexOf = (id: string) => devnet.nodes.findIndex((n) => n.peerId === id)

  /** What node `i` says it charged and received of `payer`. */
  const payeeSays = async (i: number, payer: string): Promise<PairStatement> => {
    const { overSince: _, ...statement } = await payeeStatement(http(i), peer(i), payer)
    return statement
  }

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
    publisher = keyId(key)
  })
  after(async () => {
    await devnet?.cleanup()
    await rm(dir, { recursive: true, force: true })
  })

  it('shows where the outputs of a failed quorum differ, and charges nobody for it', async () => {
    const keyFile = join(dir, 'diverged.key')
    const key = await loadCallerKey(keyFile)
    const net = await connect({ devnetDir: devnet.dir, payments: { ledgerDir: dir } })
    // every node up in the view, so that the ticket picks the selection the gateway will make
    const view = await waitFor('all seven nodes alive in the view', async () => {
      const v = await net.view({ fresh: true })
      return [...v.peers.values()].filter((p) => p.alive).length === 7 ? v : undefined
    })
    const limits = { fn, export: 'add', fuel: 2000, memoryMiB: 64, timeoutMs: 5000, k: 2 }
    const manifest = { tags: [], publisher }
    // k = 2, q = 2 with no unproven skip: the gateway asks the first four, and a ticket that puts
    // the three faulty nodes there leaves one honest executor to disagree with the liar
    const ticket = ticketWhere(key, view, limits, manifest, (o) => {
      const chosen = o.slice(0, 4).map(indexOf)
      return [LIAR, BADSIG, CRASH].every((i) => chosen.includes(i))
    })
    const options = { key, ticket, replicas: 2, quorum: 2, trust: { maxUnprovenSkips: 0 } }
    /** the honest output and the liar's: which came first (and so leads the report) is the network's */
    const outputsDiffer = (d: {
      groups: Array<{ executors: string[] }>
      differences: Array<{ path: string; expected: string; actual: string }>
    }) => {
      assert.deepEqual(
        d.groups.map((g) => g.executors.length),
        [1, 1],
      )
      const executors = d.groups.flatMap((g) => g.executors).map(indexOf)
      assert.ok(executors.includes(LIAR) && executors.some((i) => HONEST.includes(i)), String(executors))
      assert.equal(d.differences.length, 1)
      // the honest output is { sum: 5 }, the liar's { forged: true }: each lacks the other's first key
      const { path, expected, actual } = d.differences[0]
      assert.deepEqual(
        { path, expected, actual },
        path === '$.value.sum'
          ? { path, expected: '5', actual: '(absent)' }
          : { path: '$.value.forged', expected: 'true', actual: '(absent)' },
      )
    }
    await assert.rejects(net.invoke(fn, 'add', [2, 3], options), (err: CovenantError) => {
      assert.equal(err.code, 'NO_QUORUM')
      outputsDiffer((err.details as { divergence: Parameters<typeof outputsDiffer>[0] }).divergence)
      return true
    })
    for (const n of devnet.nodes)
      if (n.index !== CRASH) assert.equal((await payeeSays(n.index, keyId(key))).charged, 0)
    assert.deepEqual((await net.balance({ key }))?.accounts, [])
    // the command prints the same for a person, once the crashing executor is back to crash again
    await waitFor('the crashing executor to die', async () =>
      devnet.nodes[CRASH].process === undefined ? true : undefined,
    )
    await devnet.restart(CRASH)
    await devnet.waitConnected()
    await waitFor('the gateway to see every node alive', async () => {
      const v = await net.view({ fresh: true })
      return [...v.peers.values()].filter((p) => p.alive).length === 7 ? v : undefined
    })
    await writeFile(
      `${keyFile}.ticket`,
      JSON.stringify({ caller: keyId(key), epoch: ticket.epoch, nonce: ticket.nonce }),
    )
    const failed = await runCovenant(
      [
        'call',
        fn,
        'add',
        '2',
        '3',
        '--replicas',
        '2',
        '--quorum',
        '2',
        '--max-unproven-skips',
        '0',
        '--key',
        keyFile,
        '--node',
        http(0),
        '--nodes',
        devnet.nodes.map((x) => x.http).join(','),
      ],
      { env: { ...process.env, COVENANT_HOME: dir } },
    ).then(
      () => assert.fail('the call should fail'),
      (err: { stderr: string }) => err.stderr,
    )
    assert.match(failed, /error NO_QUORUM/)
    assert.match(failed, /the executors signed different outputs/)
    assert.match(
      failed,
      /differs first at \$\.value\.(sum: \(absent\) where output \w+… has 5|forged: \(absent\) where output \w+… has true)\n/,
    )
    await net.close()
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
