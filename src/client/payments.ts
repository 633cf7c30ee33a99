/**
 * The caller's side of payments, in the SDK. Each caller key has a payer ledger (`openCallerLedger`:
 * a SQLite file beside the key in Node; none in a browser, whose calls run on credit). Every
 * certificate the client has checked is recorded there — each executor in it owed its covenant's
 * price × the fuel it signed for — and a settlement loop sends each payee, through the gateway's
 * `POST /v1/pay`, one cumulative cheque for all it is owed with the certificates it has not yet
 * confirmed, and fetches the invoices of the blocks the caller published. The ledger writes each
 * cheque and each certificate to send before anything goes out, so a crash loses nothing: a ledger
 * opened again sends what is still unconfirmed. A lost, repeated or reordered exchange changes
 * nothing either (see the pay protocol).
 */
import type { PayResultsSchema } from '../api/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { Certificate, Conflict, SignedRequest, View } from '../exec/index.ts'
import { paidWithin } from '../jobs/index.ts'
import { keyId, type PrivateKey } from '../keys/index.ts'
import {
  type ChargeRecord,
  certificateSize,
  chargeFor,
  MAX_PAY_BYTES,
  MAX_PAY_CERTIFICATES,
  type PayeeAccount,
  type PayerAccount,
  type PayerLedger,
  type PayMessage,
  type PayMessageJSON,
  type PayReply,
  payMessageToJSON,
  payReplyFromJSON,
} from '../ledger/index.ts'
import { openCallerLedger } from './node-helpers.ts'

export interface PaymentsOptions {
  /**
   * where payer ledgers are kept, one per key: `<dir>/<key id>.ledger.db` @default beside the caller
   * key file for that key; in memory for a key handed to the SDK
   */
  ledgerDir?: string
  /**
   * a call is settled this long after it ends, so calls close together share one exchange
   * @default {@link SETTLE_DELAY_MS}
   */
  settleDelayMs?: number
  /** a storage day as the holders count it; only a devnet shortens it @default 24 h */
  dayMs?: number
}

/** Something settlement could not do, kept for the caller to look at (`payments.problems`). */
export interface PaymentProblem {
  at: number
  payee?: string
  code: string
  message: string
}

/** What one round of settlement found: how each account it exchanged with stands at its payee. */
export interface SettleReport {
  accounts: Map<string, PayeeAccount>
}

/** A caller's balances as its own ledger keeps them, and its charges, each with its certificate id. */
export interface Balance {
  payer: string
  accounts: PayerAccount[]
  history: Array<ChargeRecord & { payee: string }>
}

/** What the faucets of a devnet granted. */
export interface FaucetResult {
  /** total credit minted for the caller, ncr */
  granted: number
  /** nodes that minted */
  from: string[]
  /** nodes that did not, and why (not a devnet node, its limit reached, unreachable) */
  refused: Array<{ peer: string; code: string; message: string }>
}

type PayResults = ReturnType<typeof PayResultsSchema.parse>
type Payment = PayMessageJSON & { payee: string }

/** What payments need of the client: the pay route and the view. */
export interface PaymentsDeps {
  post(payments: Payment[]): Promise<PayResults>
  view(options?: { fresh?: boolean }): Promise<View>
}

/** Certificate errors a payee will answer the same way however often it is asked: the certificate leaves the outbox. */
const FINAL_ERRORS = new Set(['INVALID_CERTIFICATE', 'INVALID_INPUT', 'INVALID_CONFLICT'])
/** Rounds one settlement runs while payees still have certificates to take. */
const MAX_ROUNDS = 64
const PROBLEMS_KEPT = 100
/**
 * How long after a call its settlement waits by default. An exchange costs every payee in it a
 * cheque to check and a reply, and the caller a round trip, whatever it carries: at 25 ms a caller
 * making one call after another settled after nearly every call, and that work (about a quarter
 * of all the CPU a one-key certified write cost the network and the caller) competed with the next
 * call. At 250 ms the calls of a quarter of a second share one exchange; what a payee extends on
 * credit meanwhile is that many calls' price (a caller past its credit settles at once, see
 * `payFor`).
 */
export const SETTLE_DELAY_MS = 250

/** The payments of one client, for every caller key it signs with. */
export class CallerPayments {
  readonly problems: PaymentProblem[] = []
  private readonly deps: PaymentsDeps
  private readonly options: PaymentsOptions
  private readonly ledgers = new Map<string, Promise<PayerLedger | undefined>>()
  /** certificates and conflicts this client checked itself: its ledgers record only these */
  private readonly checked = new WeakSet<object>()
  private readonly running = new Map<string, Promise<SettleReport>>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  /** certificates being recorded after their call returned: what reads the ledger waits for them */
  private readonly recording = new Set<Promise<void>>()
  private closed = false

  constructor(deps: PaymentsDeps, options: PaymentsOptions = {}) {
    this.deps = deps
    this.options = options
  }

  /** The payer ledger of `key` (opened once; undefined where none can be kept, as in a browser). */
  ledger(key: PrivateKey, fromKeyFile: boolean): Promise<PayerLedger | undefined> {
    const id = keyId(key)
    let pending = this.ledgers.get(id)
    if (pending === undefined) {
      const trusted =
        <T>(what: string) =>
        (value: unknown): T => {
          if (typeof value === 'object' && value !== null && this.checked.has(value)) return value as T
          throw new CovenantError('INVALID_CERTIFICATE', `the SDK records only ${what} it checked itself`)
        }
      pending = openCallerLedger({
        key,
        dir: this.options.ledgerDir,
        fromKeyFile,
        dayMs: this.options.dayMs,
        verifyCertificate: trusted<Certificate>('certificates'),
        verifyConflict: trusted<Conflict>('conflict evidence'),
      })
      this.ledgers.set(id, pending)
      // what an earlier run signed or was charged for and did not hear back about goes out again
      pending.then(
        (ledger) => ledger !== undefined && ledger.due().length > 0 && this.schedule(ledger),
        () => {},
      )
    }
    return pending
  }

  /**
   * Records a certificate after its call has returned, off the call's path: settling, balances and
   * closing wait for every such record first, so nothing reads the ledger without it.
   */
  recordLater(
    key: PrivateKey,
    fromKeyFile: boolean,
    certificate: Certificate,
    conflicts: readonly Conflict[],
  ): void {
    const pending = this.record(key, fromKeyFile, certificate, conflicts).finally(() =>
      this.recording.delete(pending),
    )
    this.recording.add(pending)
  }

  /** Waits for the certificates being recorded (record never rejects: it keeps problems). */
  private async recorded(): Promise<void> {
    if (this.recording.size > 0) await Promise.allSettled([...this.recording])
  }

  /**
   * Records a certificate this client checked (with the conflicts it checked): the caller owes each
   * executor in it, and it goes to them with the next settlement.
   */
  async record(
    key: PrivateKey,
    fromKeyFile: boolean,
    certificate: Certificate,
    conflicts: readonly Conflict[],
  ): Promise<void> {
    let ledger: PayerLedger | undefined
    try {
      ledger = await this.ledger(key, fromKeyFile)
    } catch (err) {
      // the call's value stands whatever befalls its accounting
      this.problem(undefined, err)
      return
    }
    if (ledger === undefined) return
    this.checked.add(certificate)
    for (const c of conflicts) this.checked.add(c)
    const covenantsIn = (view: View) =>
      certificate.receipts.flatMap((r) => {
        const peer = view.peers.get(r.executor)
        return peer === undefined ? [] : [peer.covenant]
      })
    try {
      try {
        ledger.recordCertified(certificate, { covenants: covenantsIn(await this.deps.view()), conflicts })
      } catch (err) {
        // an executor's covenant changed since the view was built: learn the new one
        if (!(err instanceof CovenantError) || err.code !== 'PRICE_UNKNOWN') throw err
        ledger.recordCertified(certificate, {
          covenants: covenantsIn(await this.deps.view({ fresh: true })),
          conflicts,
        })
      }
    } catch (err) {
      this.problem(undefined, err)
      return
    }
    this.schedule(ledger)
  }

  /**
   * After PAYMENT_REQUIRED from `payees` for `request`: settles with them (what is owed, what is
   * pending), then pays ahead whatever each still lacks to admit this call — at most the call's
   * own price there. Resolves true if the call may be tried again.
   */
  async payFor(
    key: PrivateKey,
    fromKeyFile: boolean,
    request: SignedRequest,
    payees: string[],
  ): Promise<boolean> {
    const ledger = await this.ledger(key, fromKeyFile)
    if (ledger === undefined || payees.length === 0) return false
    const view = await this.deps.view()
    const { accounts } = await this.settle(ledger, payees)
    let prepaid = false
    for (const payee of payees) {
      const account = accounts.get(payee)
      const covenant = view.peers.get(payee)?.covenant
      if (account === undefined || covenant === undefined) continue
      const lacking = chargeFor(covenant.config.execute, request.fuel) - account.available
      if (lacking > 0) {
        ledger.prepay(payee, lacking)
        prepaid = true
      }
    }
    if (prepaid) await this.settle(ledger)
    return true
  }

  /**
   * Records what the keepers of a job this key enqueued charged it, from the job's `paid`: each
   * keeper's total for the attempts it dispatched, by every state of the job the keepers saw (a
   * state that lost included). A total past the budget the key signed is not recorded (kept as a
   * problem): the enqueuer never owes more. Each keeper's charge only grows, so reading the job
   * again changes nothing.
   */
  async recordJob(
    key: PrivateKey,
    fromKeyFile: boolean,
    job: {
      id: string
      enqueuer: string
      budget: number
      charges: ReadonlyArray<{ keeper: string; amount: number }>
      paid: ReadonlyArray<{ keeper: string; amount: number }>
    },
  ): Promise<void> {
    if (job.paid.length === 0 && job.charges.length === 0) return
    try {
      const ledger = await this.ledger(key, fromKeyFile)
      if (ledger === undefined || job.enqueuer !== ledger.payer) return
      const paid = paidWithin(job, job.budget, `job ${job.id}`)
      let added = 0
      for (const c of paid)
        if (c.keeper !== ledger.payer) added += ledger.recordJobCharge(c.keeper, `job:${job.id}`, c.amount)
      if (added > 0) this.schedule(ledger)
    } catch (err) {
      this.problem(undefined, err)
    }
  }

  /** Notes blocks the caller published, which holders may bill it for. */
  async publish(
    key: PrivateKey,
    fromKeyFile: boolean,
    blocks: ReadonlyArray<{ cid: string; bytes: number }>,
  ) {
    const ledger = await this.ledger(key, fromKeyFile)
    for (const b of blocks) ledger?.publish(b.cid, b.bytes)
  }

  /**
   * Settles now: cheques for what is owed, pending cheques and undelivered certificates to their
   * payees, invoices fetched and accepted; with `also`, those payees are asked how the account
   * stands even if nothing is due to them. Runs after any settlement still running.
   */
  settle(ledger: PayerLedger, also: readonly string[] = []): Promise<SettleReport> {
    const timer = this.timers.get(ledger.payer)
    if (timer !== undefined) {
      clearTimeout(timer)
      this.timers.delete(ledger.payer)
    }
    const previous = this.running.get(ledger.payer) ?? Promise.resolve(undefined)
    const next = previous.then(
      () => this.exchange(ledger, also),
      () => this.exchange(ledger, also),
    )
    this.running.set(ledger.payer, next)
    const forget = () => {
      if (this.running.get(ledger.payer) === next) this.running.delete(ledger.payer)
    }
    next.then(forget, forget)
    return next
  }

  /** Asks every node of the view's faucet (devnet nodes only mint) for `amount` each, and counts the deposits. */
  async faucet(key: PrivateKey, fromKeyFile: boolean, amount: number): Promise<FaucetResult> {
    const ledger = await this.ledger(key, fromKeyFile)
    if (ledger === undefined)
      throw new CovenantError(
        'INVALID_INPUT',
        'this SDK keeps no payer ledger here (a browser): nothing to credit',
      )
    const payer = ledger.payer
    const peers = [...(await this.deps.view()).peers.keys()].filter((p) => p !== payer)
    const result: FaucetResult = { granted: 0, from: [], refused: [] }
    const { results } = await this.deps.post(peers.map((payee) => ({ payee, payer, faucet: amount })))
    for (const r of results) {
      const refuse = (e: { code: string; message: string }) => result.refused.push({ peer: r.payee, ...e })
      if ('error' in r) {
        refuse(r.error)
        continue
      }
      try {
        const reply = payReplyFromJSON(r.reply)
        if (reply.faucet === undefined || 'error' in reply.faucet) {
          refuse(reply.faucet?.error ?? { code: 'PROTOCOL_ERROR', message: 'no deposit in the reply' })
          continue
        }
        ledger.applyDeposit(reply.faucet.deposit)
        result.granted += reply.faucet.deposit.amount
        result.from.push(r.payee)
      } catch (err) {
        refuse(CovenantError.from(err).toJSON())
      }
    }
    return result
  }

  /** Settles with every node of the view: each is asked for its invoices, each confirms what it holds. */
  async sync(key: PrivateKey, fromKeyFile: boolean): Promise<SettleReport | undefined> {
    const ledger = await this.ledger(key, fromKeyFile)
    if (ledger === undefined) return undefined
    const peers = [...(await this.deps.view()).peers.keys()].filter((p) => p !== ledger.payer)
    return this.settle(ledger, peers)
  }

  async balance(
    key: PrivateKey,
    fromKeyFile: boolean,
    opts: { limit?: number } = {},
  ): Promise<Balance | undefined> {
    await this.recorded()
    const ledger = await this.ledger(key, fromKeyFile)
    if (ledger === undefined) return undefined
    return {
      payer: ledger.payer,
      accounts: ledger.accounts(),
      history: ledger.history({ limit: opts.limit }),
    }
  }

  /** Waits for every settlement scheduled or running, then closes the ledgers. */
  async close(): Promise<void> {
    if (this.closed) return
    await this.recorded()
    this.closed = true
    const ledgers = (await Promise.all(this.ledgers.values())).filter((l) => l !== undefined)
    await Promise.allSettled(ledgers.filter((l) => this.timers.has(l.payer)).map((l) => this.settle(l)))
    await Promise.allSettled(this.running.values())
    for (const l of ledgers) l.close()
  }

  private schedule(ledger: PayerLedger): void {
    if (this.closed || this.timers.has(ledger.payer)) return
    const timer = setTimeout(() => {
      this.timers.delete(ledger.payer)
      this.settle(ledger).catch((err: unknown) => this.problem(undefined, err))
    }, this.options.settleDelayMs ?? SETTLE_DELAY_MS)
    // a pending settlement does not keep a process alive: `settle()` or `close()` waits for it
    ;(timer as { unref?: () => void }).unref?.()
    this.timers.set(ledger.payer, timer)
  }

  private problem(payee: string | undefined, err: unknown): void {
    const e = CovenantError.from(err)
    if (this.problems.length >= PROBLEMS_KEPT) this.problems.shift()
    this.problems.push({
      at: Date.now(),
      ...(payee === undefined ? {} : { payee }),
      code: e.code,
      message: e.message,
    })
  }

  private async exchange(ledger: PayerLedger, also: readonly string[]): Promise<SettleReport> {
    await this.recorded()
    const accounts = new Map<string, PayeeAccount>()
    const view = await this.deps.view()
    let ask = new Set(also)
    for (let round = 0; round < MAX_ROUNDS; round++) {
      ledger.settle()
      const payees = new Set([...ledger.due(), ...ask])
      ask = new Set()
      if (payees.size === 0) break
      const pending = new Map(ledger.pending().map((c) => [c.payee, c]))
      const messages = [...payees].map((payee) => {
        const message: PayMessage = { payer: ledger.payer, invoicesAfter: ledger.account(payee).invoiceSeq }
        const cheque = pending.get(payee)
        if (cheque !== undefined) message.cheque = cheque
        const certificates = pack(ledger.undelivered(payee, MAX_PAY_CERTIFICATES))
        if (certificates.length > 0) message.certificates = certificates
        return { payee, message }
      })
      let progress = false
      for (const group of groups(messages)) {
        let results: PayResults['results']
        try {
          ;({ results } = await this.deps.post(
            group.map((m) => ({ payee: m.payee, ...payMessageToJSON(m.message) })),
          ))
        } catch (err) {
          this.problem(undefined, err)
          continue
        }
        for (const [i, r] of results.entries()) {
          const sent = group[i]
          if (sent === undefined || r.payee !== sent.payee) continue
          if ('error' in r) {
            this.problem(r.payee, CovenantError.fromJSON(r.error))
            continue
          }
          try {
            const reply = payReplyFromJSON(r.reply)
            if (this.take(ledger, view, sent.payee, sent.message, reply)) progress = true
            accounts.set(sent.payee, reply.account)
          } catch (err) {
            this.problem(sent.payee, err)
          }
        }
      }
      // another round only while payees took certificates and more wait: never for a payee that
      // answers nothing new (it is tried again at the next settlement)
      if (!progress) break
    }
    return { accounts }
  }

  /** Takes in one payee's reply; true if another round has something new to send it. */
  private take(ledger: PayerLedger, view: View, payee: string, sent: PayMessage, reply: PayReply): boolean {
    if (reply.cheque !== undefined) {
      if ('best' in reply.cheque) ledger.acknowledge(reply.cheque.best)
      else this.problem(payee, CovenantError.fromJSON(reply.cheque.error))
    }
    const done: string[] = []
    for (const r of reply.certificates) {
      if ('status' in r) {
        if (r.status !== 'price-unknown') done.push(r.id)
        else this.problem(payee, new CovenantError('PRICE_UNKNOWN', `${payee} could not price ${r.id}`))
        continue
      }
      const e = CovenantError.fromJSON(r.error)
      this.problem(payee, e)
      if (FINAL_ERRORS.has(e.code)) done.push(r.id)
    }
    const sentIds = new Set((sent.certificates ?? []).map((c) => c.id))
    const delivered = done.filter((id) => sentIds.has(id))
    ledger.delivered(payee, delivered)
    let billed = false
    for (const invoice of reply.invoices) {
      try {
        const covenant = view.peers.get(payee)?.covenant
        const covenants = covenant === undefined ? [] : [covenant]
        if (ledger.acceptInvoice(invoice, { covenants }).status === 'charged') billed = true
      } catch (err) {
        this.problem(payee, err)
      }
    }
    // another round pays what was billed and sends the certificates that did not fit
    // counted, not read: reading one would decode and check a stored certificate to learn only that it is there
    return billed || (delivered.length > 0 && ledger.account(payee).undelivered > 0)
  }
}

/** As many of `certificates` as fit half a message (at least one). */
function pack(certificates: Certificate[]): Certificate[] {
  let size = 0
  const out: Certificate[] = []
  for (const c of certificates) {
    size += certificateSize(c)
    if (out.length > 0 && size > MAX_PAY_BYTES / 2) break
    out.push(c)
  }
  return out
}

/** Messages in groups of at most 64 and about MAX_PAY_BYTES each: one HTTP request per group. */
function groups<T extends { message: PayMessage }>(messages: T[]): T[][] {
  const out: T[][] = []
  let current: T[] = []
  let size = 0
  for (const m of messages) {
    const own = (m.message.certificates ?? []).reduce((n, c) => n + certificateSize(c), 1024)
    if (current.length > 0 && (current.length >= 64 || size + own > MAX_PAY_BYTES)) {
      out.push(current)
      current = []
      size = 0
    }
    current.push(m)
    size += own
  }
  if (current.length > 0) out.push(current)
  return out
}
