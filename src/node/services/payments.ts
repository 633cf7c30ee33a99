/**
 * The payments service: the ledger part's node side. The node is a payee: its ledger
 * (`<data>/ledger.db`) admits each call against its caller's credit (through the exec service's
 * executor), charges the certificates callers hand over, counts their cheques, bills publishers for
 * the blocks it keeps and, on a devnet, mints faucet credit. Callers reach it over
 * `/covenant/pay/1.0.0` — directly, or through any node's `POST /v1/pay`, which relays — and
 * operators read its accounts at `GET /v1/accounts[/:payer]`.
 *
 * Every so often (`billingIntervalMs`) it brings its pins up to date with the blocks it holds
 * (each billed to the publisher who signed its manifest), bills whole storage days, and drops the
 * blocks of publishers past their credit for longer than their covenant's notice period — and
 * refuses their blocks until they pay.
 */

import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Counter, Gauge } from 'prom-client'
import { z } from 'zod'
import { accountRoute, accountsRoute, owedRoute, payRoute } from '../../api/index.ts'
import {
  type CID,
  DAG_CBOR_CODEC,
  decodeManifest,
  type Manifest,
  type ManifestLabel,
  parseCid,
} from '../../content/index.ts'
import type { SignedCovenant } from '../../covenant/index.ts'
import { CovenantError } from '../../errors/index.ts'
import {
  type Certificate,
  type Conflict,
  evidenceFunctions,
  MAX_REPLICAS,
  type View,
  verifyCertificate,
  verifyConflict,
} from '../../exec/index.ts'
import type { PrivateKey } from '../../keys/index.ts'
import {
  DAY_MS,
  MAX_PAY_BYTES,
  MAX_PAY_INVOICES,
  openPayeeLedger,
  openPayerLedger,
  PAY_PROTOCOL,
  type PayeeAccount,
  type PayeeLedger,
  type PayerLedger,
  type PayMessage,
  PayMessageSchema,
  type PayReplyInput,
  PayReplySchema,
  payMessageFromJSON,
  payReplyToJSON,
} from '../../ledger/index.ts'
import { route } from '../http.ts'
import type { NodeComponents, NodeService } from '../service.ts'

/** How a node keeps its payments; every default is written here. */
export const paymentsOptionsSchema = z.strictObject({
  /**
   * keep a ledger: admit calls against callers' credit, charge certificates, bill storage. Off, the
   * node runs everything for free and answers the pay protocol NOT_STARTED @default true
   */
  enabled: z.boolean().default(true),
  /** a storage day (the ledger's `dayMs`): shorter only on a devnet, for tests @default 24 h */
  dayMs: z.number().int().min(1000).max(DAY_MS).default(DAY_MS),
  /** how often pins are brought up to date, storage is billed and unpaid blocks dropped @default 1 h */
  billingIntervalMs: z.number().int().min(100).max(DAY_MS).default(3_600_000),
  /** how often the node pays what it owes as a payer (the executors of its job attempts) @default 1 s */
  payIntervalMs: z.number().int().min(50).max(DAY_MS).default(1000),
})
export type PaymentsOptions = z.input<typeof paymentsOptionsSchema>

/** Devnet faults of this service (node option `fault`, refused outside a devnet). */
export const PAY_FAULT_KINDS = [
  /** a payee dies (SIGKILL) once a cheque raised what it holds, before it answers */
  'pay-crash-after-cheque',
] as const

/**
 * What a payee accepts as a certificate to charge: its receipts must be real and their signers the
 * executors the selection picks in its view; the quorum and skips are the caller's to judge (it
 * asked for q, and paid once its own verifier accepted), so they are taken as broadly as a
 * verifier may.
 */
const PAYEE_TRUST = { minQuorum: 1, maxUnprovenSkips: MAX_REPLICAS, minEligibleFraction: 0 } as const

/** Manifests kept for the ledger's checks, which run synchronously. */
const MANIFESTS_KEPT = 1024

/** The node's payee ledger, with what its synchronous checks need fetched ahead; and its payer ledger. */
export interface NodeLedger {
  readonly payee: PayeeLedger
  /**
   * what this node owes as a payer (`<data>/payer.db`): the executors of the job attempts it
   * dispatches, whose requests it signs (docs/jobs.md, "Who pays for a job")
   */
  readonly payer: PayerLedger
  /**
   * Owes each executor of a run this node's gateway certified for a request it signed (a job's
   * attempt) its charge; the payments service pays them shortly after. Returns what the run cost
   * in all, the node's own receipt included (a keeper that ran its attempt itself is owed it by
   * the enqueuer, though not by itself). Idempotent per certificate: a second call owes nothing
   * more (and returns only the node's own share).
   */
  owe(certificate: Certificate, conflicts: readonly Conflict[]): number
  /** Fetches the manifests checking these certificates needs (their functions', and their evidence's). */
  prepare(certificates: readonly Certificate[]): Promise<void>
  /** publishers whose blocks this node no longer keeps: unpaid past their notice */
  readonly dropped: Set<string>
  /** storage's `refuses`: the blocks of a dropped publisher */
  refuses(cid: CID, bytes: Uint8Array, labels: readonly ManifestLabel[]): string | undefined
  /**
   * After executors refused a request this node signed (a job's attempt) PAYMENT_REQUIRED: settles
   * with each of `payees` now (what is owed, what is pending), then pays each ahead what it still
   * lacks to admit a call costing `need(payee)` ncr there, as the SDK does for a caller
   * (src/client/payments.ts). Resolves true if the same request may be sent again; false before
   * the payments service runs.
   */
  payFor(payees: readonly string[], need: (payee: string) => number | undefined): Promise<boolean>
  /** the payments service hands its settlement over here when it starts */
  providePayFor(pay: NodeLedger['payFor']): void
  close(): void
}

export interface NodeLedgerInit {
  dataDir: string
  key: PrivateKey
  covenant: () => SignedCovenant
  /**
   * every peer this node knows, alive or not: a certificate signed while a peer was up is still
   * owed after it went down
   */
  view: () => View
  manifest: (fn: string) => Promise<Manifest>
  devnet: boolean
  dayMs: number
  /** labels recorded for a block (the block store's `labelsOf`) */
  labelsOf: (cid: CID) => Uint8Array[]
}

/** The publisher a block is billed to: a manifest's own, else the first signed manifest that names it. */
export function publisherOf(
  cid: CID,
  bytes: Uint8Array | undefined,
  labels: readonly Uint8Array[],
): string | undefined {
  const candidates = cid.code === DAG_CBOR_CODEC && bytes !== undefined ? [bytes, ...labels] : labels
  for (const manifest of candidates) {
    try {
      return decodeManifest(manifest).publisher
    } catch {
      // not a manifest (any dag-cbor block may be stored): the next
    }
  }
  return undefined
}

/** Opens `<data>/ledger.db` as this node's payee ledger. */
export function openNodeLedger(init: NodeLedgerInit): NodeLedger {
  const manifests = new Map<string, Manifest>()
  const manifestOf = (fn: string): Manifest | undefined => manifests.get(fn)
  const checkCertificate = (value: unknown): Certificate => {
    const fn = (value as Partial<Certificate> | null)?.request?.fn
    const manifest = typeof fn === 'string' ? manifestOf(fn) : undefined
    // Both refusals below are this node's, not the certificate's: the payer sends it again later.
    if (manifest === undefined)
      throw new CovenantError(
        'BLOCK_NOT_FOUND',
        `the function ${String(fn)} of the certificate cannot be had here now`,
      )
    const view = init.view()
    const receipts = (value as Partial<Certificate>).receipts
    const unknown = Array.isArray(receipts)
      ? receipts
          .map((r: { executor?: unknown }) => r?.executor)
          .find((e) => typeof e === 'string' && !view.peers.has(e))
      : undefined
    if (unknown !== undefined)
      throw new CovenantError(
        'NOT_FOUND',
        `executor ${String(unknown)} of the certificate is not known to this node (yet): nothing charged`,
      )
    return verifyCertificate(value, { ...PAYEE_TRUST, view, manifest, manifests: manifestOf }).certificate
  }
  const payee = openPayeeLedger({
    path: join(init.dataDir, 'ledger.db'),
    key: init.key,
    covenant: init.covenant,
    devnet: init.devnet,
    dayMs: init.dayMs,
    verifyCertificate: checkCertificate,
    verifyConflict: (value) => {
      const fn = (value as { certificate?: Partial<Certificate> } | null)?.certificate?.request?.fn
      const manifest = typeof fn === 'string' ? manifestOf(fn) : undefined
      if (manifest === undefined)
        throw new CovenantError(
          'INVALID_CONFLICT',
          `the function ${String(fn)} of the evidence cannot be had`,
        )
      return verifyConflict(value, { ...PAYEE_TRUST, view: init.view(), manifest, manifests: manifestOf })
        .conflict
    },
  })
  // The payer side records only runs this node's own gateway certified and handed it.
  const checked = new WeakSet<object>()
  const trusted =
    <T>(what: string) =>
    (value: unknown): T => {
      if (typeof value === 'object' && value !== null && checked.has(value)) return value as T
      throw new CovenantError('INVALID_CERTIFICATE', `a node pays only for ${what} its gateway checked`)
    }
  const payer = openPayerLedger({
    path: join(init.dataDir, 'payer.db'),
    key: init.key,
    dayMs: init.dayMs,
    verifyCertificate: trusted<Certificate>('certificates'),
    verifyConflict: trusted<Conflict>('conflict evidence'),
  })
  const dropped = new Set<string>()
  let payForVia: NodeLedger['payFor'] | undefined
  return {
    payee,
    payer,
    dropped,
    payFor: (payees, need) => payForVia?.(payees, need) ?? Promise.resolve(false),
    providePayFor(pay) {
      payForVia = pay
    },
    owe(certificate, conflicts) {
      checked.add(certificate)
      for (const x of conflicts) checked.add(x)
      const view = init.view()
      const covenants = [
        init.covenant(),
        ...certificate.receipts.flatMap((r) => {
          const peer = view.peers.get(r.executor)
          return peer === undefined ? [] : [peer.covenant]
        }),
      ]
      const charges = payer.recordCertified(certificate, { covenants, conflicts })
      return charges.reduce(
        (sum, ch) => (ch.status === 'charged' || ch.status === 'self' ? sum + ch.amount : sum),
        0,
      )
    },
    async prepare(certificates) {
      const fns = new Set(certificates.flatMap((c) => [c.request.fn, ...evidenceFunctions(c)]))
      await Promise.all(
        [...fns].map(async (fn) => {
          if (manifests.has(fn)) return
          try {
            const manifest = await init.manifest(fn)
            if (manifests.size >= MANIFESTS_KEPT) manifests.delete(manifests.keys().next().value as string)
            manifests.set(fn, manifest)
          } catch {
            // the certificate is then refused (INVALID_CERTIFICATE), saying so
          }
        }),
      )
    },
    refuses(cid, bytes, labels) {
      if (dropped.size === 0) return undefined
      const publisher = publisherOf(cid, bytes, [...labels.map((l) => l.bytes), ...init.labelsOf(cid)])
      return publisher !== undefined && dropped.has(publisher)
        ? `keeps no more blocks of ${publisher}: its storage is unpaid past the notice period`
        : undefined
    },
    close() {
      payee.close()
      payer.close()
    },
  }
}

export type PaymentsServiceComponents = Pick<
  NodeComponents,
  'peerId' | 'net' | 'http' | 'logger' | 'metrics' | 'blockStore' | 'ledger' | 'fault'
>

/** The built-in payments service; `createNode` adds it to every node. */
export function paymentsService(options: PaymentsOptions = {}) {
  return (c: PaymentsServiceComponents): NodeService =>
    createPaymentsService(c, paymentsOptionsSchema.parse(options))
}

const RELAY_TIMEOUT_MS = 10_000
/** Certificates a node sends one payee per exchange as a payer (each a few KiB). */
const MAX_PAY_OWN_CERTIFICATES = 16
/** A payee answers these the same however often it is asked: the certificate leaves the outbox. */
const FINAL_CERTIFICATE_ERRORS = new Set(['INVALID_CERTIFICATE', 'INVALID_INPUT', 'INVALID_CONFLICT'])

function createPaymentsService(
  c: PaymentsServiceComponents,
  options: z.output<typeof paymentsOptionsSchema>,
): NodeService {
  const { net, logger, ledger } = c
  const self = c.peerId
  const crashAfterCheque = c.fault === 'pay-crash-after-cheque'
  const registers = [c.metrics.registry]
  const exchanges = new Counter({
    name: 'covenant_pay_exchanges_total',
    help: 'pay exchanges this node answered as a payee, by result (ok or the error code)',
    labelNames: ['result'],
    registers,
  })
  const charged = new Counter({
    name: 'covenant_ledger_charged_ncr_total',
    help: 'nano-credits charged to payers, by kind (exec: certified calls, store: storage invoices)',
    labelNames: ['kind'],
    registers,
  })
  new Gauge({
    name: 'covenant_ledger_dropped_publishers',
    help: 'publishers whose blocks this node dropped and refuses: unpaid past their notice period',
    registers,
    collect() {
      this.set(ledger?.dropped.size ?? 0)
    },
  })

  function payeeLedger(): PayeeLedger {
    if (ledger === undefined)
      throw new CovenantError('NOT_STARTED', `${self} keeps no ledger: its payments are off`)
    return ledger.payee
  }

  /** One exchange with a payer, as its payee: every part answered, none failing the others. */
  async function receive(msg: PayMessage): Promise<PayReplyInput> {
    const payee = payeeLedger()
    const certificates = msg.certificates ?? []
    await ledger!.prepare(certificates)
    const reply: PayReplyInput = { account: payee.account(msg.payer) }
    reply.certificates = certificates.map((certificate) => {
      try {
        if (certificate.request.caller !== msg.payer)
          throw new CovenantError(
            'INVALID_INPUT',
            `the certificate is for a request of ${certificate.request.caller}`,
          )
        const r = payee.recordCertified(certificate)
        if (r.amount > 0) charged.inc({ kind: 'exec' }, r.amount)
        return { id: certificate.id, status: r.status, amount: r.amount }
      } catch (err) {
        return { id: certificate.id, error: shortError(err) }
      }
    })
    if (msg.cheque !== undefined) {
      try {
        if (msg.cheque.payer !== msg.payer)
          throw new CovenantError(
            'INVALID_CHEQUE',
            `the cheque is from ${msg.cheque.payer}, not ${msg.payer}`,
          )
        const { applied, best } = payee.applyCheque(msg.cheque)
        if (applied && crashAfterCheque) {
          logger.fatal({ event: 'pay-crash-fault', payer: msg.payer })
          process.kill(process.pid, 'SIGKILL')
        }
        reply.cheque = { applied, best }
        if (ledger!.dropped.has(msg.payer) && payee.account(msg.payer).overSince === undefined)
          ledger!.dropped.delete(msg.payer)
      } catch (err) {
        reply.cheque = { error: shortError(err) }
      }
    }
    if (msg.faucet !== undefined) {
      try {
        reply.faucet = { deposit: payee.deposit(msg.payer, msg.faucet) }
      } catch (err) {
        reply.faucet = { error: shortError(err) }
      }
    }
    if (msg.invoicesAfter !== undefined)
      reply.invoices = payee.invoices(msg.payer, { after: msg.invoicesAfter, limit: MAX_PAY_INVOICES })
    reply.account = payee.account(msg.payer)
    return reply
  }

  /** Brings the pins up to date with the blocks held, bills storage, and drops unpaid blocks. */
  async function billingRound(): Promise<void> {
    const payee = payeeLedger()
    const pinned = new Map(payee.pinned().map((p) => [p.cid, p.payer]))
    const held = new Set<string>()
    let after: string | undefined
    for (;;) {
      const page = c.blockStore.list({ limit: 256, after })
      if (page.length === 0) break
      for (const info of page) {
        held.add(info.cid)
        if (pinned.has(info.cid)) continue
        const cid = parseCid(info.cid)
        const bytes = cid.code === DAG_CBOR_CODEC ? c.blockStore.get(cid) : undefined
        const publisher = publisherOf(cid, bytes, c.blockStore.labelsOf(cid))
        // A bare block names no publisher: nobody is billed for it.
        if (publisher !== undefined) payee.pin(publisher, info.cid, info.size)
      }
      after = page[page.length - 1].cid
      await nextTurn()
    }
    for (const [cid, payer] of pinned) if (!held.has(cid)) payee.unpin(payer, cid)
    for (const invoice of payee.billStorage()) charged.inc({ kind: 'store' }, invoice.amount)
    const overdue = payee.overdue()
    ledger!.dropped.clear()
    for (const account of overdue) {
      if (!account.droppable) continue
      ledger!.dropped.add(account.payer)
      for (const text of account.blocks) {
        const cid = parseCid(text)
        if (c.blockStore.info(cid)?.pinned === true) continue
        payee.unpin(account.payer, text)
        if (c.blockStore.delete(cid))
          logger.info({ event: 'unpaid-block-dropped', cid: text, publisher: account.payer })
      }
    }
  }

  /**
   * One settlement as a payer: each payee this node owes (a job attempt's executor) gets one
   * cumulative cheque and the certificates it has not confirmed, as the SDK sends a caller's
   * (src/client/payments.ts); what is not confirmed goes again at the next round.
   */
  async function payRound(): Promise<void> {
    const payer = ledger!.payer
    payer.settle()
    await Promise.all(payer.due().map((payee) => payOne(payer, payee)))
  }

  /**
   * One exchange with a payee this node owes: its newest unconfirmed cheque and the certificates it
   * has not confirmed. Resolves with the payee's account as it answered, or undefined.
   */
  async function payOne(payer: PayerLedger, payee: string): Promise<PayeeAccount | undefined> {
    const message: PayMessage = { payer: payer.payer }
    const cheque = payer.pending().find((x) => x.payee === payee)
    if (cheque !== undefined) message.cheque = cheque
    const certificates = payer.undelivered(payee, MAX_PAY_OWN_CERTIFICATES)
    if (certificates.length > 0) message.certificates = certificates
    try {
      const reply = await net.request(payee, PAY_PROTOCOL, message, {
        timeoutMs: RELAY_TIMEOUT_MS,
        maxReplyBytes: MAX_PAY_BYTES,
        schema: PayReplySchema,
      })
      if (reply.cheque !== undefined && 'best' in reply.cheque) payer.acknowledge(reply.cheque.best)
      for (const r of reply.certificates)
        if ('error' in r || r.status === 'price-unknown')
          logger.warn({
            event: 'pay-certificate-refused',
            payee,
            id: r.id,
            code: 'error' in r ? r.error.code : 'PRICE_UNKNOWN',
            message: 'error' in r ? r.error.message : undefined,
          })
      const done = reply.certificates.flatMap((r) =>
        ('status' in r && r.status !== 'price-unknown') ||
        ('error' in r && FINAL_CERTIFICATE_ERRORS.has(r.error.code))
          ? [r.id]
          : [],
      )
      payer.delivered(payee, done)
      return reply.account
    } catch (err) {
      logger.debug({ event: 'pay-failed', payee, code: CovenantError.from(err).code })
      return undefined
    }
  }

  /** {@link NodeLedger.payFor}: settles with the payees, then pays ahead what each lacks. */
  async function payFor(
    payees: readonly string[],
    need: (payee: string) => number | undefined,
  ): Promise<boolean> {
    const payer = ledger!.payer
    payer.settle()
    const accounts = await Promise.all(payees.map((payee) => payOne(payer, payee)))
    const ahead: string[] = []
    for (const [i, payee] of payees.entries()) {
      const lacking = (need(payee) ?? 0) - (accounts[i]?.available ?? 0)
      if (accounts[i] === undefined || lacking <= 0) continue
      payer.prepay(payee, lacking)
      ahead.push(payee)
    }
    await Promise.all(ahead.map((payee) => payOne(payer, payee)))
    return accounts.some((a) => a !== undefined)
  }

  let payTimer: NodeJS.Timeout | undefined
  let paying: Promise<void> | undefined
  const runPayRound = () => {
    if (ledger === undefined || ledger.payer.due().length === 0) return
    paying ??= payRound()
      .catch((err: unknown) => logger.warn({ event: 'pay-round-failed', code: CovenantError.from(err).code }))
      .finally(() => {
        paying = undefined
      })
  }

  let timer: NodeJS.Timeout | undefined
  let round: Promise<void> | undefined
  const runRound = () => {
    round ??= billingRound()
      .catch((err: unknown) => {
        logger.warn({
          event: 'billing-failed',
          code: CovenantError.from(err).code,
          err: (err as Error).message,
        })
      })
      .finally(() => {
        round = undefined
      })
  }

  route(c.http, payRoute, async function pay({ body }) {
    const results = await Promise.all(
      body.payments.map(async ({ payee, ...json }) => {
        try {
          const message = payMessageFromJSON(json)
          const reply =
            payee === self
              ? PayReplySchema.parse(await receive(message))
              : await net.request(payee, PAY_PROTOCOL, message, {
                  timeoutMs: RELAY_TIMEOUT_MS,
                  maxReplyBytes: MAX_PAY_BYTES,
                  schema: PayReplySchema,
                })
          return { payee, reply: payReplyToJSON(reply) }
        } catch (err) {
          return { payee, error: shortError(err) }
        }
      }),
    )
    return { results }
  })

  route(c.http, accountsRoute, async function accounts({ query }) {
    return { accounts: payeeLedger().accounts(query) }
  })

  route(c.http, owedRoute, async function owed() {
    if (ledger === undefined)
      throw new CovenantError('NOT_STARTED', `${self} keeps no ledger: its payments are off`)
    return { payer: ledger.payer.payer, statements: ledger.payer.statements() }
  })

  route(c.http, accountRoute, async function account({ params, query }) {
    const payee = payeeLedger()
    return { account: payee.account(params.payer), history: payee.history(params.payer, query) }
  })

  return {
    name: 'payments',
    async start() {
      await net.handle(PAY_PROTOCOL, {
        schema: PayMessageSchema,
        maxBytes: MAX_PAY_BYTES,
        // a gateway relays many callers' payments: its share is wider than a caller's
        maxPerPeer: 16,
        maxConcurrent: 64,
        readTimeoutMs: 30_000,
        handler: async (msg) => {
          try {
            const reply = await receive(msg)
            exchanges.inc({ result: 'ok' })
            return reply
          } catch (err) {
            exchanges.inc({ result: CovenantError.from(err).code })
            throw err
          }
        },
      })
      if (ledger === undefined) return
      ledger.providePayFor(payFor)
      timer = setInterval(runRound, options.billingIntervalMs)
      timer.unref()
      runRound()
      payTimer = setInterval(runPayRound, options.payIntervalMs)
      payTimer.unref()
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer)
      if (payTimer !== undefined) clearInterval(payTimer)
      await net.unhandle(PAY_PROTOCOL).catch(() => {})
      await round
      await paying
    },
  }
}

/** An error's JSON form with its message cut short: a reply carries many. */
function shortError(err: unknown): { code: string; message: string } {
  const e = CovenantError.from(err)
  return { code: e.code, message: e.code === 'INTERNAL' ? 'internal error' : e.message.slice(0, 512) }
}
