/**
 * Payments end to end on ONE devnet of six real node processes, each with its own prices:
 * charges equal to covenant price × signed fuel and to the quote; a caller past its credit refused
 * (PAYMENT_REQUIRED) then served once it paid; duplicated, replayed, reordered and forged cheques
 * and certificates over the real pay protocol changing nothing; a payee killed after writing a
 * cheque and before answering losing nothing; storage billed a (short devnet) day at a time, and an
 * unpaid publisher's blocks dropped after the notice period, then taken again once it paid; and
 * `covenant balance` / `covenant call --quote` as a user runs them.
 *
 * Storage days last 2 s here (`payments.dayMs`, devnet only) and billing runs every 500 ms, so
 * days pass within a test. Every node holds every block (replicas 5 of the five that store).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  type CovenantClient,
  connect,
  loadCallerKey,
  type PrivateKey,
  type View,
} from '../../../src/client/index.ts'
import {
  type CovenantConfig,
  type CovenantConfigInput,
  CovenantConfigSchema,
  DEFAULT_COVENANT,
} from '../../../src/covenant/index.ts'
import { outputHash, signReceipt } from '../../../src/exec/index.ts'
import { generateKey, keyId } from '../../../src/keys/index.ts'
import {
  chargeFor,
  type PayMessage,
  payMessageToJSON,
  payReplyFromJSON,
  reconcile,
  signCheque,
} from '../../../src/ledger/index.ts'
import { covenant as runCovenant } from '../../fixtures/cli.ts'
import { ticketWhere } from '../../fixtures/exec-cluster.ts'
import { payeeStatement, startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'

const GATEWAY = 0
const CHEAP = 1
const DEAR = 2
const TINY = 3
/** extends no credit: every call must be paid for first; storage unpaid is dropped after a day */
const STRICT = 4
/** keeps a ledger only (no execution, no storage), and dies once a cheque raised what it holds */
const CRASHY = 5
const DAY_MS = 2000

const PRICES: Record<number, CovenantConfigInput> = {
  [GATEWAY]: { execute: { enabled: true } },
  [CHEAP]: { execute: { enabled: true, basePrice: 5000, pricePerFuel: 200 } },
  [DEAR]: { execute: { enabled: true, basePrice: 20_000, pricePerFuel: 3000 } },
  [TINY]: { execute: { enabled: true, basePrice: 1, pricePerFuel: 1 } },
  [STRICT]: {
    execute: { enabled: true, basePrice: 7000, pricePerFuel: 700 },
    store: { noticeDays: 1 },
    credit: 0,
  },
  [CRASHY]: { execute: { enabled: false }, store: { enabled: false } },
}

const covenants = (): Record<number, CovenantConfig> =>
  Object.fromEntries(
    Object.entries(PRICES).map(([i, c]) => [
      Number(i),
      CovenantConfigSchema.parse({
        ...DEFAULT_COVENANT,
        ...c,
        execute: { ...DEFAULT_COVENANT.execute, ...c.execute },
        store: { ...DEFAULT_COVENANT.store, ...c.store },
      }),
    ]),
  )

const SOURCE = `
export function work(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s }
export function add(a, b) { return a + b }
`

describe('payments on a 6-node devnet', { timeout: 600_000 }, () => {
  let devnet: TestDevnet
  let dir: string
  let fn: string
  let manifest: { tags: string[]; publisher: string }
  let view: View
  const peer = (i: number) => devnet.nodes[i].peerId
  const http = (i: number) => devnet.nodes[i].http
  const priceOf = (executor: string) =>
    covenants()[devnet.nodes.findIndex((n) => n.peerId === executor)].execute

  /** A caller key with its ledger in a directory of its own, and a client that pays from it. */
  async function caller(
    name: string,
    options: { payments?: false; trust?: { maxUnprovenSkips?: number } } = {},
  ): Promise<{ key: PrivateKey; net: CovenantClient; ledgerDir: string }> {
    const ledgerDir = join(dir, name)
    const key = await loadCallerKey(join(ledgerDir, 'key'))
    const net = await connect({
      devnetDir: devnet.dir,
      trust: options.trust,
      payments: options.payments === false ? false : { ledgerDir, dayMs: DAY_MS },
    })
    return { key, net, ledgerDir }
  }

  /** What node `i` says it charged and received of `payer`. */
  const payeeSays = (i: number, payer: string) => payeeStatement(http(i), peer(i), payer)

  async function history(
    i: number,
    payer: string,
  ): Promise<Array<{ ref: string; amount: number; fuel?: number }>> {
    const res = await fetch(`${http(i)}/v1/accounts/${payer}?limit=1000`)
    return ((await res.json()) as { history: Array<{ ref: string; amount: number; fuel?: number }> }).history
  }

  /** Every pair of `payer` agrees, as its ledger and each node state it. */
  async function reconciled(net: CovenantClient, key: PrivateKey) {
    const balance = (await net.balance({ key }))!
    const payerSide = balance.accounts.map((a) => ({
      payer: balance.payer,
      payee: a.payee,
      charged: a.owed,
      paid: a.paid,
      granted: a.granted,
    }))
    const payeeSide = await Promise.all(
      devnet.nodes.map(async (n) => {
        const { overSince: _, ...s } = await payeeSays(n.index, balance.payer)
        return s
      }),
    )
    return reconcile(payerSide, payeeSide)
  }

  /** Sends raw pay messages through the gateway's POST /v1/pay, as a payer's SDK does. */
  async function pay(payee: number, message: PayMessage) {
    const res = await fetch(`${http(GATEWAY)}/v1/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payments: [{ payee: peer(payee), ...payMessageToJSON(message) }] }),
    })
    assert.equal(res.status, 200)
    const [result] = ((await res.json()) as { results: Array<{ reply?: unknown; error?: unknown }> }).results
    assert.ok(result.reply !== undefined, JSON.stringify(result.error))
    return payReplyFromJSON(result.reply)
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-payments-e2e-'))
    devnet = await startTestDevnet({
      nodes: 6,
      covenants: covenants(),
      faults: { [CRASHY]: 'pay-crash-after-cheque' },
      replicas: 5,
      payments: { dayMs: DAY_MS, billingIntervalMs: 500 },
      heartbeatMs: 2000,
      helloTimeoutMs: 10_000,
      repairIntervalMs: 1000,
    })
    const publisher = await generateKey()
    const deployer = await connect({ devnetDir: devnet.dir, payments: false })
    ;({ cid: fn } = await deployer.deploy(SOURCE, { key: publisher, exports: ['add', 'work'] }))
    manifest = { tags: [], publisher: keyId(publisher) }
    view = await deployer.view()
    assert.equal(view.peers.size, 6)
  })
  after(async () => {
    await devnet?.cleanup()
    await rm(dir, { recursive: true, force: true })
  })

  it('charges each executor its covenant’s price × the fuel it signed for, exactly as quoted, and both sides agree', async () => {
    const { key, net } = await caller('exact')
    for (const n of [1000, 20_000, 60_000]) {
      const quoted = await net.quote(fn, 'work', [n], { key })
      assert.equal(quoted.outcome, 'ok')
      const result = await net.invoke(fn, 'work', [n], { key })
      const { history: charges } = (await net.balance({ key, limit: 100 }))!
      for (const receipt of result.certificate.receipts) {
        assert.equal(receipt.fuel, quoted.fuel, 'a run with the same arguments signs the same fuel')
        const charge = charges.find((c) => c.ref === result.certificate.id && c.payee === receipt.executor)
        assert.equal(charge?.amount, chargeFor(priceOf(receipt.executor), receipt.fuel))
        const inQuote = quoted.quote.executors.find((e) => e.peer === receipt.executor)
        if (inQuote !== undefined)
          assert.equal(charge?.amount, inQuote.charge, 'the final charge is the quote')
      }
      assert.ok(quoted.quote.min <= quoted.quote.max)
    }
    await net.settle({ key })
    const report = await reconciled(net, key)
    assert.ok(report.ok, JSON.stringify(report.pairs.filter((p) => !p.ok)))
    // each charge on the executors' side names the same certificate, for the same amount
    const balance = (await net.balance({ key, limit: 100 }))!
    for (const c of balance.history) {
      const index = devnet.nodes.findIndex((n) => n.peerId === c.payee)
      const there = (await history(index, balance.payer)).find((h) => h.ref === c.ref)
      assert.deepEqual([there?.amount, there?.fuel], [c.amount, c.fuel])
    }
    assert.deepEqual(net.payments?.problems, [])
    await net.close()
  })

  it('refuses a caller past its credit with PAYMENT_REQUIRED, and serves it once it has paid', async () => {
    const unpaid = await caller('strict', { payments: false, trust: { maxUnprovenSkips: 0 } })
    const limits = { fn, export: 'add', fuel: 2000, memoryMiB: 64, timeoutMs: 5000, k: 3 }
    // a ticket that puts the node extending no credit first: the call cannot do without it
    const ticket = ticketWhere(unpaid.key, view, limits, manifest, (o) => o[0] === peer(STRICT))
    await assert.rejects(
      unpaid.net.invoke(fn, 'add', [2, 3], { key: unpaid.key, ticket }),
      (err: { code: string; details: { payees: string[] } }) => {
        assert.equal(err.code, 'PAYMENT_REQUIRED')
        assert.deepEqual(err.details.payees, [peer(STRICT)])
        return true
      },
    )
    assert.equal((await payeeSays(STRICT, keyId(unpaid.key))).charged, 0, 'nothing charged for the refusal')
    // the same key with its ledger: it pays what the call may cost, and is served
    const paying = await caller('strict', { trust: { maxUnprovenSkips: 0 } })
    const result = await paying.net.invoke(fn, 'add', [2, 3], { key: paying.key, ticket })
    assert.equal(result.value, 5)
    assert.ok(result.certificate.receipts.some((r) => r.executor === peer(STRICT)))
    await paying.net.settle({ key: paying.key })
    const strict = (await paying.net.balance({ key: paying.key }))!.accounts.find(
      (a) => a.payee === peer(STRICT),
    )!
    assert.ok(strict.paid >= strict.owed && strict.owed > 0, 'paid ahead what the call could cost')
    const there = await payeeSays(STRICT, keyId(paying.key))
    assert.deepEqual([there.charged, there.paid], [strict.owed, strict.paid])
    await paying.net.close()
  })

  it('counts no duplicated, replayed, reordered or forged cheque, and charges no forged certificate', async () => {
    const payerKey = await generateKey()
    const payer = keyId(payerKey)
    const cheque = (cumulative: number, seq: number, to = peer(CHEAP), by = payerKey) =>
      signCheque(by, { payee: to, cumulative, seq, issuedAt: Date.now() })
    const first = cheque(1000, 1)
    const second = cheque(3000, 2)
    assert.equal((await pay(CHEAP, { payer, cheque: second })).account.received, 3000)
    for (const [what, c] of [
      ['duplicated', second],
      ['replayed', second],
      ['reordered (older, arriving late)', first],
    ] as const) {
      const reply = await pay(CHEAP, { payer, cheque: c })
      assert.ok(reply.cheque !== undefined && 'applied' in reply.cheque && !reply.cheque.applied, what)
      assert.equal(reply.account.received, 3000, what)
    }
    const forgeries = [
      ['altered amount', { ...second, cumulative: 9000 }],
      ['made out to another node', cheque(9000, 3, peer(DEAR))],
      ['signed by another key', { ...cheque(9000, 3, peer(CHEAP), await generateKey()), payer }],
    ] as const
    for (const [what, c] of forgeries) {
      const reply = await pay(CHEAP, { payer, cheque: c as typeof second })
      assert.ok(reply.cheque !== undefined && 'error' in reply.cheque, what)
      assert.equal(reply.cheque.error.code, 'INVALID_CHEQUE', what)
      assert.equal(reply.account.received, 3000, what)
    }
    // a certificate charges its executors once; one with altered receipts charges nothing
    const { key, net } = await caller('forged')
    const result = await net.invoke(fn, 'add', [1, 1], { key })
    await net.settle({ key })
    const executor = result.certificate.receipts[0].executor
    const index = devnet.nodes.findIndex((n) => n.peerId === executor)
    const before = await payeeSays(index, keyId(key))
    const again = await pay(index, { payer: keyId(key), certificates: [result.certificate] })
    assert.deepEqual(
      again.certificates.map((c) => ('status' in c ? c.status : c.error.code)),
      ['duplicate'],
    )
    const forged = {
      ...result.certificate,
      receipts: result.certificate.receipts.map((r) => ({ ...r, fuel: r.fuel + 1000 })),
    }
    const refused = await pay(index, { payer: keyId(key), certificates: [forged] })
    assert.deepEqual(
      refused.certificates.map((c) => ('error' in c ? c.error.code : c.status)),
      ['INVALID_CERTIFICATE'],
    )
    // and a certificate of receipts made up on the spot by keys outside the network: the payee
    // cannot tell a stranger from a node it has not met yet, so it charges nothing and says so
    const stranger = await generateKey()
    const madeUp = {
      ...result.certificate,
      receipts: [
        signReceipt(stranger, {
          request: result.certificate.id,
          outputHash: outputHash({ json: '2', logs: [], error: null }),
          fuel: 1_000_000,
          covenantVersion: 1,
          build: result.certificate.receipts[0].build,
        }),
      ],
    }
    const strangers = await pay(index, { payer: keyId(key), certificates: [madeUp] })
    assert.equal('error' in strangers.certificates[0] && strangers.certificates[0].error.code, 'NOT_FOUND')
    assert.deepEqual(await payeeSays(index, keyId(key)), before, 'nothing changed')
    await net.close()
  })

  it('loses no credit when a payee dies after writing a cheque and before answering: the cheque goes again', async () => {
    const { key, net, ledgerDir } = await caller('crash')
    const ledger = (await net.payments!.ledger(key, false))!
    const cheque = ledger.prepay(peer(CRASHY), 5000)
    await net.settle({ key })
    await waitFor('the payee to die', async () =>
      devnet.nodes[CRASHY].process === undefined ? true : undefined,
    )
    assert.deepEqual(
      ledger.pending().map((c) => c.cumulative),
      [5000],
      'not confirmed: still pending',
    )
    await net.close()
    await devnet.restart(CRASHY)
    await devnet.waitConnected()
    assert.equal((await payeeSays(CRASHY, keyId(key))).paid, 5000, 'written before it died')
    // the caller starts again: its ledger sends what is unconfirmed, and the payee confirms it
    const again = await connect({ devnetDir: devnet.dir, payments: { ledgerDir, dayMs: DAY_MS } })
    await again.settle({ key })
    const account = (await again.balance({ key }))!.accounts.find((a) => a.payee === peer(CRASHY))!
    assert.deepEqual([account.paid, account.acked, account.unconfirmed], [5000, 5000, false])
    assert.equal(cheque.cumulative, 5000)
    assert.equal((await payeeSays(CRASHY, keyId(key))).paid, 5000, 'counted once')
    await again.close()
  })

  it('bills a publisher a day at a time for what it keeps, and drops an unpaid publisher’s blocks after the notice period until it pays', async () => {
    const { key, net } = await caller('publisher')
    const { cid, codeCid } = await net.deploy(`export function hi() { return 'hi from ${dir}' }`, {
      key,
      exports: ['hi'],
    })
    const held = async (i: number) => {
      const res = await fetch(`${http(i)}/v1/storage?limit=1000`)
      return ((await res.json()) as { held: Array<{ cid: string }> }).held.map((h) => h.cid)
    }
    // the node that extends no credit: past it from the first day billed, its blocks go a day later
    await waitFor(
      'the unpaid blocks to be dropped',
      async () => {
        const there = await held(STRICT)
        return there.includes(cid) || there.includes(codeCid) ? undefined : true
      },
      60_000,
      250,
    )
    assert.ok((await payeeSays(STRICT, keyId(key))).overSince !== undefined)
    // paying what the holders billed: every holder's invoices fetched, accepted and paid
    await net.settle({ key, all: true })
    await waitFor(
      'the paid publisher’s blocks to be taken again',
      async () => {
        await net.settle({ key, all: true })
        const there = await held(STRICT)
        return there.includes(cid) && there.includes(codeCid) ? true : undefined
      },
      60_000,
      250,
    )
    const { history: charges } = (await net.balance({ key, limit: 1000 }))!
    const stored = charges.filter((c) => c.kind === 'store')
    assert.ok(new Set(stored.map((c) => c.payee)).size >= 4, 'billed by the holders')
    // pair by pair, once no day turns between settling and asking
    await waitFor('both sides to agree', async () => {
      await net.settle({ key, all: true })
      const report = await reconciled(net, key)
      return report.ok ? true : undefined
    })
    assert.deepEqual(
      net.payments?.problems.filter((p) => p.code !== 'PEER_UNREACHABLE'),
      [],
    )
    await net.close()
  })

  it('covenant call --quote, covenant balance --faucet and --certificate, as a user runs them', async () => {
    const env = { ...process.env, COVENANT_HOME: join(dir, 'cli-home') }
    const nodes = ['--node', http(GATEWAY), '--nodes', devnet.nodes.map((n) => n.http).join(',')]
    const run = async (...args: string[]) => (await runCovenant(args, { env })).stdout
    const quoted = JSON.parse(await run('call', fn, 'work', '5000', '--quote', '--json', ...nodes))
    assert.equal(quoted.ok, true)
    assert.ok(quoted.fuel > 0 && quoted.quote.executors.length === 3)
    const funded = JSON.parse(await run('balance', '--faucet', '1000000', '--json', ...nodes))
    assert.equal(funded.faucet.granted, 6 * 1_000_000, 'every devnet node minted')
    const called = JSON.parse(await run('call', fn, 'work', '5000', '--json', ...nodes))
    assert.equal(called.ok, true)
    const balance = JSON.parse(await run('balance', '--json', ...nodes))
    const charges = balance.history.filter((c: { ref: string }) => c.ref === called.certificate.id)
    assert.equal(charges.length, 2)
    for (const c of charges) assert.equal(c.fuel, quoted.fuel, 'the fuel the quote measured')
    assert.ok(
      balance.accounts.every(
        (a: { unconfirmed: boolean; undelivered: number }) => !a.unconfirmed && a.undelivered === 0,
      ),
    )
    const printed = JSON.parse(await run('balance', '--certificate', called.certificate.id))
    assert.deepEqual(printed, called.certificate)
    const table = await run('balance', '--offline')
    assert.match(table, /outstanding in all: -?\d/)
    assert.match(table, new RegExp(called.certificate.id))
  })
})
