/**
 * Settlement under faults: 1,000 certified calls between two callers and five executors, with the
 * messages that carry cheques and certificates lost, duplicated, reordered and forged, replies
 * lost, and both sides restarted between writing and confirming. Afterwards, once the wiring's
 * retries have delivered what is pending, every pair reconciles, and every charge is the price of
 * the covenant version its receipt names times the fuel it signed for.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type SignedCovenant, signCovenant } from '../../src/covenant/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import type { Certificate, Conflict } from '../../src/exec/index.ts'
import {
  type Cheque,
  chargeFor,
  openPayeeLedger,
  openPayerLedger,
  type PayeeLedger,
  type PayerLedger,
  priceSheet,
  reconcile,
  signCheque,
} from '../../src/ledger/index.ts'
import {
  Clock,
  certifiedRun,
  makeParty,
  networkOf,
  type Party,
  pricedCovenant,
  tempDir,
} from '../fixtures/ledger.ts'

const CALLS = 1000
const FUEL_LIMIT = 2000

/** A small deterministic PRNG (mulberry32), so a failure replays exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Executor extends Party {
  ledger: PayeeLedger
  path: string
}

interface Caller extends Party {
  ledger: PayerLedger
  path: string
  /** the wiring's outbox: certificates each payee has not yet confirmed, by certificate id */
  outbox: Map<string, Map<string, { certificate: Certificate; conflicts: Conflict[] }>>
}

/** One message from a caller's wiring to an executor: a cheque and the certificates that go with it. */
interface Message {
  from: Caller
  to: Executor
  cheque?: Cheque
  certificates: Array<{ certificate: Certificate; conflicts: Conflict[] }>
}

describe('settlement under faults', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    dir = await tempDir()
  })
  after(() => dir.remove())

  it(`reconciles every pair after ${CALLS} calls with lost, duplicated, reordered and forged messages and restarts`, async () => {
    const random = prng(11)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
    const clock = new Clock()
    const covenants = new Map<string, SignedCovenant>()
    const parties = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        makeParty(pricedCovenant({ basePrice: 1000 * i, pricePerFuel: 100 * i, credit: 3_000_000 })),
      ),
    )
    // every ledger checks certificates against the same view: the five executors
    const network = networkOf(parties)
    const payeeOpts = { now: clock.now, exposureMs: 60_000, ...network.verifiers }

    const executors: Executor[] = []
    for (const [i, party] of parties.entries()) {
      covenants.set(party.peer, party.covenant)
      const path = dir.file(`executor-${i}.db`)
      const ledger = openPayeeLedger({
        path,
        key: party.key,
        covenant: () => covenants.get(party.peer)!,
        ...payeeOpts,
      })
      executors.push({ ...party, ledger, path })
    }
    const callers: Caller[] = []
    for (let i = 0; i < 2; i++) {
      const party = await makeParty()
      const path = dir.file(`caller-${i}.db`)
      callers.push({
        ...party,
        path,
        ledger: openPayerLedger({ path, key: party.key, now: clock.now, ...network.verifiers }),
        outbox: new Map(),
      })
    }
    // every price sheet ever in force, to compute the expected charges apart from the ledgers
    const sheets = new Map<string, ReturnType<typeof priceSheet>>()
    const remember = (c: SignedCovenant) => sheets.set(`${c.peer} ${c.version}`, priceSheet(c))
    for (const c of covenants.values()) remember(c)
    const expected = new Map<string, number>()
    const pairKey = (payer: string, payee: string) => `${payer} ${payee}`

    const counts = {
      lost: 0,
      duplicated: 0,
      reordered: 0,
      forged: 0,
      replayed: 0,
      refused: 0,
      prepaid: 0,
      crashes: 0,
    }
    const held: Message[] = []
    const sentCheques: Cheque[] = []

    function deliver(m: Message, reliable = false): void {
      for (const c of m.certificates) {
        const outcome = m.to.ledger.recordCertified(c.certificate, { conflicts: c.conflicts })
        assert.notEqual(outcome.status, 'stale')
        assert.notEqual(outcome.status, 'price-unknown')
        m.from.outbox.get(m.to.peer)?.delete(c.certificate.id)
      }
      if (m.cheque === undefined) return
      const { best } = m.to.ledger.applyCheque(m.cheque)
      if (!reliable && random() < 0.1) {
        counts.lost++ // the reply is lost: the cheque stays pending and goes again
        return
      }
      m.from.ledger.acknowledge(best)
    }

    function send(m: Message): void {
      const r = random()
      if (r < 0.1) counts.lost++
      else if (r < 0.15) {
        counts.duplicated++
        deliver(m)
        deliver(m)
      } else if (r < 0.25) {
        counts.reordered++
        held.push(m)
      } else deliver(m)
    }

    /** What the caller's wiring sends an executor: its pending cheque and unconfirmed certificates. */
    function messageTo(caller: Caller, executor: Executor): Message | undefined {
      const cheque = caller.ledger.pending().find((c) => c.payee === executor.peer)
      const certificates = [...(caller.outbox.get(executor.peer)?.values() ?? [])]
      if (cheque === undefined && certificates.length === 0) return undefined
      return { from: caller, to: executor, cheque, certificates }
    }

    function flush(caller: Caller, executor: Executor): void {
      const m = messageTo(caller, executor)
      if (m !== undefined) deliver(m, true)
    }

    function attack(executor: Executor): void {
      // forged: a real cheque with its amount raised, and one signed by the wrong key
      const real = pick(sentCheques.filter((c) => c.payee === executor.peer)) ?? undefined
      const before = executor.ledger.accounts().map((a) => [a.payer, a.received])
      const forgeries: unknown[] = [
        signCheque(executor.key, { payee: pick(callers).peer, cumulative: 1, seq: 1, issuedAt: 0 }),
      ]
      if (real !== undefined) {
        forgeries.push({ ...real, cumulative: real.cumulative + 1_000_000 })
        const other = executors.find((e) => e !== executor)!
        forgeries.push({ ...real, payee: other.peer })
      }
      for (const f of forgeries) {
        assert.throws(
          () => executor.ledger.applyCheque(f),
          (err: CovenantError) => err.code === 'INVALID_CHEQUE',
        )
        counts.forged++
      }
      // replayed: an old cheque again
      if (real !== undefined) {
        executor.ledger.applyCheque(real)
        counts.replayed++
      }
      assert.deepEqual(
        executor.ledger.accounts().map((a) => [a.payer, a.received]),
        before,
        'no forged or replayed cheque changed a balance',
      )
    }

    for (let call = 0; call < CALLS; call++) {
      clock.advance(1000)
      if (call === CALLS / 2) {
        // an operator changes its prices mid-run: receipts name the version that priced them
        const e = executors[0]
        const v2 = signCovenant(
          e.key,
          pricedCovenant({ basePrice: 7777, pricePerFuel: 333, credit: 3_000_000 }),
          2,
          clock.t,
        )
        covenants.set(e.peer, v2)
        remember(v2)
      }
      const caller = pick(callers)
      const chosen = [...executors].sort(() => random() - 0.5).slice(0, 3)
      const fuel = Math.floor(random() * (FUEL_LIMIT + 1))
      const scenario = random()
      const liars = scenario < 0.1 ? [2] : []
      const run = certifiedRun(
        network,
        caller.key,
        chosen.map((e) => ({ key: e.key, covenant: covenants.get(e.peer)! })),
        { fuel, fuelLimit: FUEL_LIMIT, now: clock.t, nonce: `call-${call}-nonce`, liars },
      )

      // each executor admits the call before running it; a refusal is paid, then served
      for (const [i, e] of chosen.entries()) {
        const call = { id: run.id, ...run.certificate.request }
        let admission: ReturnType<PayeeLedger['admit']>
        try {
          admission = e.ledger.admit(call)
        } catch (err) {
          assert.equal((err as CovenantError).code, 'PAYMENT_REQUIRED')
          counts.refused++
          flush(caller, e)
          try {
            admission = e.ledger.admit(call)
          } catch (again) {
            const { payUpTo } = (again as CovenantError).details as { payUpTo: number }
            const paid = caller.ledger.account(e.peer).paid
            caller.ledger.prepay(e.peer, Math.max(1, payUpTo - paid))
            counts.prepaid++
            flush(caller, e)
            admission = e.ledger.admit(call)
          }
        }
        admission.signed(run.receipts[i])
      }

      // 5% of quorums fail: receipts were signed, no certificate exists, nobody is charged
      if (scenario > 0.95) continue

      const charges = caller.ledger.recordCertified(run.certificate, {
        covenants: chosen.map((e) => covenants.get(e.peer)!),
        conflicts: run.conflicts,
      })
      for (const r of run.certificate.receipts) {
        const key = pairKey(caller.peer, r.executor)
        const price = sheets.get(`${r.executor} ${r.covenantVersion}`)!
        expected.set(key, (expected.get(key) ?? 0) + chargeFor(price, r.fuel))
      }
      assert.equal(charges.filter((c) => c.status === 'charged').length, run.certificate.receipts.length)
      for (const r of run.certificate.receipts) {
        const box = caller.outbox.get(r.executor) ?? new Map()
        box.set(run.id, { certificate: run.certificate, conflicts: run.conflicts })
        caller.outbox.set(r.executor, box)
      }

      const cheques = caller.ledger.settle()
      sentCheques.push(...cheques)
      const fault = random()
      if (fault < 0.03) {
        // the caller dies after writing its cheques, before sending or hearing back
        counts.crashes++
        caller.ledger.close()
        caller.ledger = openPayerLedger({
          path: caller.path,
          key: caller.key,
          now: clock.now,
          ...network.verifiers,
        })
      } else {
        for (const cheque of cheques) {
          const e = executors.find((x) => x.peer === cheque.payee)!
          const m = messageTo(caller, e)
          if (m !== undefined) send(m)
        }
      }
      if (fault > 0.97) {
        // an executor dies between recording and confirming; its calls in flight are written off
        counts.crashes++
        const e = pick(executors)
        e.ledger.close()
        e.ledger = openPayeeLedger({
          path: e.path,
          key: e.key,
          covenant: () => covenants.get(e.peer)!,
          ...payeeOpts,
        })
      }
      // late messages arrive in their own order
      while (held.length > 0 && random() < 0.3) deliver(held.splice(Math.floor(random() * held.length), 1)[0])
      if (random() < 0.05) attack(pick(executors))
    }

    // the wiring's retries: what was held arrives, then every pending cheque and certificate is resent
    for (const m of held.splice(0)) deliver(m, true)
    for (const caller of callers) for (const e of executors) flush(caller, e)
    for (const caller of callers) assert.deepEqual(caller.ledger.pending(), [], 'every cheque confirmed')

    const payerSide = callers.flatMap((c) => c.ledger.statements())
    const payeeSide = executors.flatMap((e) => callers.map((c) => e.ledger.statement(c.peer)))
    const report = reconcile(payerSide, payeeSide)
    assert.deepEqual(
      report.pairs.filter((p) => !p.ok),
      [],
      'every pair reconciles',
    )
    assert.equal(report.pairs.length, callers.length * executors.length)
    for (const s of payerSide)
      assert.equal(s.charged, expected.get(pairKey(s.payer, s.payee)) ?? 0, 'exact charges')
    for (const [key, amount] of expected) assert.ok(amount > 0, key)
    // every kind of fault happened
    for (const [fault, n] of Object.entries(counts)) assert.ok(n > 0, `${fault}: ${n}`)

    for (const c of callers) c.ledger.close()
    for (const e of executors) e.ledger.close()
  })
})
