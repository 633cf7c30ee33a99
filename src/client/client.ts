/**
 * The HTTP client of a gateway node. Uses only global fetch, so it runs in a browser too. Every
 * request is built from its route's spec in `src/api` and every reply is parsed with the route's
 * schema: a node that answers something else gets a PROTOCOL_ERROR, never a value taken on trust.
 * Certificates are checked against a view of the network the client builds itself, from several
 * nodes or from pinned covenants (network-view.ts), never from the gateway's word alone unless the
 * gateway is the only node it was given.
 */
import type { z } from 'zod'
import {
  blockHoldersRoute,
  type CallEvent,
  type CommitOutcome,
  callsRoute,
  type DeployReply,
  deployRoute,
  ErrorBodySchema,
  type FunctionInfo,
  getBlockRoute,
  getFunctionRoute,
  type InspectReply,
  type InvokeReply,
  InvokeReplySchema,
  inspectRoute,
  invokeRoute,
  type JobSummary,
  type ListJobsReply,
  listJobsRoute,
  type NodeInfo,
  nodeRoute,
  type PeerInfo,
  type PutBlockReply,
  payRoute,
  peersRoute,
  putBlockRoute,
  quoteRoute,
  type RouteSpec,
  routePath,
  type StorageReply,
  storageRoute,
} from '../api/index.ts'
import { type DelegateWriteInit, delegateWrite, type WriteGrant } from '../caps/index.ts'
import {
  type CID,
  cidForBytes,
  createManifest,
  decodeManifest,
  type Manifest,
  parseCid,
  verifyBlock,
} from '../content/index.ts'
import { type SignedCovenant, signedCovenantFromJSON } from '../covenant/index.ts'
import { commitRunWrites, signVouch, type Vouch } from '../datastore/index.ts'
import { bytesFieldsFromJSON, toBase64 } from '../encoding/index.ts'
import { CovenantError, isErrorCode, parseOrThrow } from '../errors/index.ts'
import {
  type Attempt,
  type Certificate,
  type Conflict,
  certificateFromJSON,
  certificateToJSON,
  conflictFromJSON,
  createRequest,
  createView,
  DEFAULT_QUORUM,
  type InvokeResult as ExecInvokeResult,
  evidenceFunctions,
  type Output,
  type OutputLike,
  type OutputRef,
  rankExecutors,
  readStoredOutput,
  requestToJSON,
  type SelectionManifest,
  type SignedRequest,
  type Ticket,
  type Trust,
  type TrustInput,
  trustOf,
  type VerifiedCertificate,
  type View,
  verifyCertificate,
  verifyConflict,
  verifyReceipt,
} from '../exec/index.ts'
import { keyId, type PrivateKey } from '../keys/index.ts'
import { type Quote, quote } from '../ledger/index.ts'
import { readEventStream } from './event-stream.ts'
import { type EnqueueOptions, enqueueJob, enqueueRun, JobHandle, type JobsInit } from './jobs.ts'
import { viewFromPeerLists } from './network-view.ts'
import {
  bundleFunctionFile,
  type DirectCaller,
  inspectHere,
  loadCallerKey,
  openDirect,
} from './node-helpers.ts'
import {
  type Balance,
  CallerPayments,
  type FaucetResult,
  type PaymentsOptions,
  type SettleReport,
} from './payments.ts'
import {
  type CommitResult,
  type CreatedStore,
  type CreateStoreOptions,
  createStore,
  NamespaceHandle,
  revokeGrant,
} from './store.ts'

export type { CallEvent, CommitOutcome, FunctionInfo, InspectReply, NodeInfo, PeerInfo, StorageReply }

/** What `putBlock` resolves with. */
export type PutBlockResult = PutBlockReply

export interface DeployResult extends DeployReply {
  exports: string[]
}

export interface DeployOptions {
  tags?: string[]
  name?: string
  /** the publisher key; default: the caller key file (Node only) */
  key?: PrivateKey
  /** export names; default: read from the module (with esbuild in Node; by the node's inspect route in a browser) */
  exports?: string[]
}

/** What `deploy` takes: bundled JavaScript, or (in Node) a function file to bundle with its npm imports. */
export type DeploySource = string | { file: string | URL }

export interface InvokeOptions {
  /** executors asked (k) @default 3 */
  replicas?: number
  /** matching receipts needed (q); at least `trust.minQuorum` @default 2 */
  quorum?: number
  /** fuel limit in sandbox ticks, one of LIMIT_TIERS.fuel @default 2000 */
  fuel?: number
  /** memory limit, one of LIMIT_TIERS.memoryMiB @default 64 */
  memoryMiB?: number
  /** wall-clock limit per executor, one of LIMIT_TIERS.timeoutMs @default 5000 */
  timeoutMs?: number
  /**
   * the largest output, in MiB, one of LIMIT_TIERS.outputMiB; above 1 MiB the executors store it
   * in the content network and the client reads it from there, checked against the certificate
   * @default 1
   */
  outputMiB?: number
  /** the caller key that signs the request; default: the caller key file (Node only) */
  key?: PrivateKey
  /** request nonce @default random */
  nonce?: string
  /** the caller's ticket for this hour @default minted on first use and kept in memory */
  ticket?: Ticket
  /** what this call's certificate must meet, over the client's `trust` */
  trust?: TrustInput
  /**
   * the namespaces the function reads: the request fixes each at the head a holder reports now,
   * so every executor reads the same thing (a read of any other ends the call with STORE_NOT_FIXED)
   */
  stores?: string[]
  /** namespace versions to read at, as they are (`{ [ns]: seq }`); wins over `stores` for a namespace in both */
  reads?: Record<string, number>
}

export interface ClientOptions {
  /** per-request timeout @default 60000 */
  timeoutMs?: number
  /** the nodes whose peer lists make the view (see network-view.ts) @default [url] */
  viewFrom?: readonly string[]
  /** covenants the caller pins: the view is exactly these, and no node is asked */
  covenants?: readonly SignedCovenant[]
  /** what certificates must meet (see TrustSchema) */
  trust?: TrustInput
  /** a view older than this is rebuilt in the background @default 30000 */
  viewTtlMs?: number
  /**
   * Node only: call the executors from this process over libp2p (direct.ts) instead of through
   * the gateway — ranked over this client's own view, their receipts checked as they come — and
   * through the gateway only when none of them can be reached. Starts a libp2p host on the first
   * call; {@link CovenantClient.close} stops it. A browser always calls through its gateway.
   * @default false
   */
  direct?: boolean
  /**
   * Send each call to a node this client builds its view from that the selection picks to execute
   * it, when there is one, instead of always to `url`: that node runs it itself, so a k = 1 call
   * makes no hop past HTTP and a k = 3 call one fewer. The answer is checked here all the same
   * (the gateway is never trusted). Works over HTTP, so in a browser too.
   * @default false
   */
  executingGateway?: boolean
  /**
   * how the caller pays (see payments.ts): its ledgers' place, the settling delay; `false` keeps no
   * ledger and pays nothing (calls then run on the executors' credit) @default on
   */
  payments?: PaymentsOptions | false
}

/** What `quote` resolves with: the fuel a dry run used and what the selected executors charge for it. */
export interface QuoteResult {
  fuel: number
  /** `ok`, or the code the dry run failed with */
  outcome: string
  quote: Quote
}

/**
 * What `invoke` resolves with: the value the certificate's output hash commits to, the certificate
 * and conflicts (each checked here, not taken from the gateway on trust), `tried`, the executors
 * the gateway asked and what came of each (as the gateway tells it), and `commits`, what the
 * holders of each namespace the run wrote did with its writes (as the gateway tells it: read the
 * namespace to see them), and `jobs`, the jobs the run enqueued (`ctx.enqueue`) as the gateway
 * handed them to their keepers once the writes committed (`{ error }` if it could not: hand them
 * with {@link CovenantClient.enqueueRun}); absent when it enqueued none.
 */
export interface InvokeResult extends ExecInvokeResult {
  commits: CommitOutcome[]
  jobs?: InvokeReply['jobs']
}

/** What `faucet` asks each devnet node for: 0.1 cr, a tenth of what a node mints for one caller. */
const DEFAULT_FAUCET_AMOUNT = 100_000_000

/** Room past the request's deadline for the gateway's answer to arrive. */
const INVOKE_REPLY_MARGIN_MS = 5_000

/** A route whose reply is JSON, read with its schema. */
type JsonRoute = RouteSpec & { reply: z.ZodType }

interface CallInit {
  params?: Record<string, string>
  /** the query string, without `?` */
  query?: string
  body?: BodyInit
  type?: string
  timeoutMs?: number
  /** instead of the timeout */
  signal?: AbortSignal
}

/** A view the client holds, where its peers listen (as its nodes list them), and when it was built. */
interface HeldView {
  view: View
  addrs: ReadonlyMap<string, readonly string[]>
  /** the URL of each node of `viewFrom` that answered, by its peer id */
  urls: ReadonlyMap<string, string>
  at: number
}

const MANIFESTS_KEPT = 256

export class CovenantClient {
  /** base URL of the node, without a trailing slash */
  readonly url: string
  /** the nodes the view is built from (empty when covenants are pinned) */
  readonly viewFrom: readonly string[]
  private readonly timeoutMs: number
  private readonly options: ClientOptions
  private held: Promise<HeldView> | undefined
  private rebuilding: Promise<HeldView> | undefined
  private readonly manifests = new Map<string, Promise<Manifest>>()
  private direct: Promise<DirectCaller> | undefined
  /** clients of the other nodes of `viewFrom`, used as gateways (`executingGateway`) */
  private readonly gateways = new Map<string, CovenantClient>()
  /** the caller's payments: undefined with `payments: false` */
  readonly payments: CallerPayments | undefined

  constructor(url: string, options: ClientOptions = {}) {
    this.url = url.replace(/\/+$/, '')
    this.timeoutMs = options.timeoutMs ?? 60_000
    this.options = options
    trustOf(options.trust ?? {})
    this.payments =
      options.payments === false
        ? undefined
        : new CallerPayments(
            {
              post: (payments) => this.json(payRoute, { body: { payments } }),
              view: (o) => this.view(o),
            },
            options.payments,
          )
    this.viewFrom =
      options.covenants !== undefined
        ? []
        : (options.viewFrom ?? [this.url]).map((u) => u.replace(/\/+$/, ''))
  }

  /** Builds the view afresh: pinned covenants, or the peer lists of `viewFrom` (NODE_UNREACHABLE if none answers). */
  private async buildView(): Promise<HeldView> {
    if (this.options.covenants !== undefined)
      return { view: createView(this.options.covenants), addrs: new Map(), urls: new Map(), at: Date.now() }
    const lists = await Promise.all(
      this.viewFrom.map((url) =>
        (url === this.url ? this : new CovenantClient(url, { timeoutMs: this.timeoutMs })).peers().then(
          (peers) => peers,
          () => undefined,
        ),
      ),
    )
    if (lists.every((l) => l === undefined))
      throw new CovenantError(
        'NODE_UNREACHABLE',
        `none of ${this.viewFrom.join(', ')} answered for its peers`,
      )
    const urls = new Map<string, string>()
    for (const [i, list] of lists.entries()) {
      const self = list?.find((p) => p.self)
      if (self !== undefined && !urls.has(self.id)) urls.set(self.id, this.viewFrom[i])
    }
    return { view: viewFromPeerLists(lists), addrs: addressesIn(lists), urls, at: Date.now() }
  }

  private rebuild(): Promise<HeldView> {
    this.rebuilding ??= this.buildView().finally(() => {
      this.rebuilding = undefined
    })
    const next = this.rebuilding
    next.then(
      (held) => {
        this.held = Promise.resolve(held)
      },
      () => {},
    )
    return next
  }

  /**
   * The view certificates are checked against. Built on first use; once older than `viewTtlMs` it
   * is rebuilt in the background while the current one keeps serving. `fresh` waits for a new one.
   */
  async view(options: { fresh?: boolean } = {}): Promise<View> {
    if (options.fresh === true || this.held === undefined) {
      const next = this.rebuild()
      if (this.held === undefined) {
        this.held = next
        // a first build that failed is tried again next time, not kept
        next.catch(() => {
          if (this.held === next) this.held = undefined
        })
      }
      return (await next).view
    }
    return (await this.heldView()).view
  }

  /** The view held now (rebuilt in the background once stale), with its peers' addresses. */
  private async heldView(): Promise<HeldView> {
    if (this.held === undefined) await this.view()
    const held = await this.held!
    if (Date.now() - held.at > (this.options.viewTtlMs ?? 30_000)) this.rebuild().catch(() => {})
    return held
  }

  /** A function's manifest, fetched by its CID (hash-checked here) and decoded once. */
  async manifest(fn: string | CID): Promise<Manifest> {
    const text = typeof fn === 'string' ? parseCid(fn).toString() : fn.toString()
    let pending = this.manifests.get(text)
    if (pending === undefined) {
      pending = this.getBlock(text).then(decodeManifest)
      pending.catch(() => this.manifests.delete(text))
      if (this.manifests.size >= MANIFESTS_KEPT)
        this.manifests.delete(this.manifests.keys().next().value as string)
      this.manifests.set(text, pending)
    }
    return pending
  }

  /**
   * Checks a certificate (and the output it is claimed for) against this client's view and the
   * function's manifest; if it fails, once more against a freshly built view (peers come and go).
   * Throws INVALID_CERTIFICATE.
   */
  async verify(
    certificate: unknown,
    options: { output?: OutputLike; trust?: TrustInput } = {},
  ): Promise<VerifiedCertificate> {
    const fn = (certificate as Partial<Certificate> | null)?.request?.fn
    let manifest: Manifest
    try {
      manifest = await this.manifest(String(fn))
    } catch (err) {
      throw new CovenantError(
        'INVALID_CERTIFICATE',
        `the certificate's function ${String(fn)} cannot be had`,
        {
          cause: err,
        },
      )
    }
    const trust = { ...this.options.trust, ...options.trust }
    // Skips may carry evidence about other functions' requests: their manifests, fetched ahead.
    const others = new Map<string, SelectionManifest>()
    let needed: string[] = []
    try {
      needed = evidenceFunctions(certificate as Certificate)
    } catch {
      // a malformed certificate: verifyCertificate says what is wrong with it
    }
    for (const other of needed) {
      const m = await this.manifest(other).catch(() => undefined)
      if (m !== undefined) others.set(other, m)
    }
    const check = (view: View) =>
      verifyCertificate(certificate, {
        ...trust,
        view,
        manifest,
        output: options.output,
        manifests: (f) => others.get(f),
      })
    try {
      return check(await this.view())
    } catch (err) {
      if (!(err instanceof CovenantError) || err.code !== 'INVALID_CERTIFICATE' || this.viewFrom.length === 0)
        throw err
      return check(await this.view({ fresh: true }))
    }
  }

  private async call(spec: RouteSpec, init: CallInit = {}): Promise<Response> {
    const path = routePath(spec, init.params) + (init.query ? `?${init.query}` : '')
    let res: Response
    try {
      res = await fetch(`${this.url}${path}`, {
        method: spec.method,
        body: init.body,
        headers: init.type === undefined ? undefined : { 'content-type': init.type },
        signal: init.signal ?? AbortSignal.timeout(init.timeoutMs ?? this.timeoutMs),
      })
    } catch (err) {
      throw new CovenantError('NODE_UNREACHABLE', `${this.url} did not answer: ${(err as Error).message}`, {
        cause: err,
      })
    }
    if (res.ok) return res
    const parsed = ErrorBodySchema.safeParse(await readJson(res))
    if (parsed.success) throw CovenantError.fromJSON(parsed.data.error)
    throw new CovenantError(
      'PROTOCOL_ERROR',
      `${this.url}${path} answered ${res.status} without an error body`,
    )
  }

  /** Calls a JSON route and parses its reply with the route's schema (PROTOCOL_ERROR if it does not fit). */
  private async json<S extends JsonRoute>(
    spec: S,
    init: Omit<CallInit, 'body' | 'type'> & { body?: unknown } = {},
  ): Promise<z.output<S['reply']>> {
    const res = await this.call(spec, {
      ...init,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      type: init.body === undefined ? undefined : 'application/json',
    })
    return parseOrThrow<S['reply']>(
      spec.reply,
      await readJson(res),
      'PROTOCOL_ERROR',
      `${this.url} sent a malformed reply`,
    )
  }

  /** The node's id, addresses and signed covenant (its signature is checked here). */
  async node(): Promise<NodeInfo & { signedCovenant: SignedCovenant }> {
    const info = await this.json(nodeRoute)
    const signedCovenant = signedCovenantFromJSON(info.covenant)
    if (signedCovenant.peer !== info.peerId)
      throw new CovenantError('INVALID_SIGNATURE', 'the node presents a covenant signed by another key')
    return { ...info, signedCovenant }
  }

  /** The node's peer table, itself first. Covenants can be checked with signedCovenantFromJSON. */
  async peers(): Promise<PeerInfo[]> {
    return (await this.json(peersRoute)).peers
  }

  /**
   * Stores a block on the network, without tags: a block's tags come only from the signed
   * manifest that names it, so content to be tagged is deployed with {@link deploy}.
   */
  async putBlock(bytes: Uint8Array): Promise<PutBlockResult> {
    const res = await this.call(putBlockRoute, {
      body: bytes as Uint8Array<ArrayBuffer>,
      type: 'application/octet-stream',
    })
    const result = parseOrThrow(
      putBlockRoute.reply,
      await readJson(res),
      'PROTOCOL_ERROR',
      `${this.url} sent a malformed reply`,
    )
    if (result.cid !== cidForBytes(bytes).toString())
      throw new CovenantError('HASH_MISMATCH', `the node named the block ${result.cid}`)
    return result
  }

  /** Fetches a block and checks it against its CID here, whatever the node did. */
  async getBlock(cid: string | CID): Promise<Uint8Array> {
    const parsed = typeof cid === 'string' ? parseCid(cid) : cid
    const res = await this.call(getBlockRoute, { params: { cid: parsed.toString() } })
    const bytes = new Uint8Array(await res.arrayBuffer())
    if (!verifyBlock(parsed, bytes))
      throw new CovenantError('HASH_MISMATCH', `the node sent bytes that do not hash to ${parsed}`)
    return bytes
  }

  /** The peers that hold a block, closest first. */
  async holders(cid: string | CID): Promise<string[]> {
    const text = typeof cid === 'string' ? parseCid(cid).toString() : cid.toString()
    return (await this.json(blockHoldersRoute, { params: { cid: text } })).holders
  }

  /**
   * Deploys a function: `{ file }` is bundled with its npm imports first (Node only, as
   * `covenant deploy` does); a string must be one self-contained ES module, and one that imports
   * another module is refused here with INVALID_CODE (in a browser, by the node). Signs a manifest
   * for the code with the caller's key and stores both. The same code, exports, tags, name and
   * key always give the same CID.
   */
  async deploy(what: DeploySource, options: DeployOptions = {}): Promise<DeployResult> {
    const source = typeof what === 'string' ? what : await bundleFunctionFile(what.file)
    const code = new TextEncoder().encode(source)
    const inspected = await inspectHere(source)
    const exports = options.exports ?? inspected?.exports ?? (await this.inspect(source)).exports
    const key = options.key ?? (await loadCallerKey())
    const { bytes } = createManifest(key, {
      code: cidForBytes(code),
      size: code.length,
      exports,
      tags: options.tags,
      name: options.name,
    })
    const result = await this.json(deployRoute, { body: { code: source, manifest: toBase64(bytes) } })
    // the blocks this key published: holders bill it for them, and for nothing else
    await this.payments?.publish(key, options.key === undefined, [
      { cid: result.cid, bytes: bytes.length },
      { cid: result.codeCid, bytes: code.length },
    ])
    return { ...result, exports }
  }

  /**
   * Runs `exportName` of the function `fn` on the network: signs a request with the caller key,
   * sends it to this node's `POST /v1/invoke`, and checks what comes back itself (the gateway is
   * not trusted): the certificate must be for the very request signed here, commit to the output
   * returned, and verify against this client's view of the network — its signers must be the
   * executors the selection rule picks (see {@link verify}). Throws INVALID_CERTIFICATE if not. The
   * value is the output's JSON text parsed here, so it is what the function returned, key order
   * included. A function failure the quorum agreed on (FUEL_EXHAUSTED, USER_ERROR, …) is thrown
   * with that code and the certificate (JSON) in `details.certificate`.
   *
   * A function that reads datastores names them in `stores` (or fixes versions in `reads`). Its
   * writes are committed by the gateway, which hands the certificate to each namespace's holders:
   * if they refuse (WRITE_CONFLICT when what it read changed since: call again), that code is
   * thrown, with `details.value`, `details.output`, `details.commits` and `details.certificate`.
   */
  async invoke(
    fn: string | CID,
    exportName: string,
    args: unknown[] = [],
    options: InvokeOptions = {},
  ): Promise<InvokeResult> {
    const trust = trustOf({ ...this.options.trust, ...options.trust })
    const q = options.quorum ?? DEFAULT_QUORUM
    if (q < trust.minQuorum)
      throw new CovenantError(
        'INVALID_REQUEST',
        `quorum ${q} is below the ${trust.minQuorum} this client accepts; lower trust.minQuorum to ask for it`,
      )
    const { key, request, id } = await this.signRequest(fn, exportName, args, options)
    const fromKeyFile = options.key === undefined
    let result: InvokeResult
    try {
      result = await this.certified(request, id, trust)
    } catch (err) {
      // Past its credit with some executors: pay them what is owed (and ahead, what this call
      // lacks), then ask again with the same request, which no executor runs twice.
      const payees = (err as CovenantError).details as { payees?: unknown } | undefined
      if (
        !(err instanceof CovenantError && err.code === 'PAYMENT_REQUIRED') ||
        !Array.isArray(payees?.payees) ||
        this.payments === undefined ||
        !(await this.payments.payFor(key, fromKeyFile, request, payees.payees.map(String)))
      )
        throw err
      result = await this.certified(request, id, trust)
    }
    // The caller owes the certificate's executors whether the function returned or failed; the
    // record is written just after the call returns (settling and balances wait for it).
    this.payments?.recordLater(key, fromKeyFile, result.certificate, result.conflicts)
    const error = result.output.error
    if (error !== null) {
      throw new CovenantError(isErrorCode(error.code) ? error.code : 'USER_ERROR', error.message, {
        details: {
          certificate: certificateToJSON(result.certificate),
          logs: result.output.logs,
          agreed: true,
        },
      })
    }
    for (const outcome of result.commits)
      if ('error' in outcome)
        throw CovenantError.fromJSON({
          ...outcome.error,
          details: {
            ns: outcome.ns,
            reason: outcome.error.details,
            value: result.value,
            output: result.output,
            commits: result.commits,
            certificate: certificateToJSON(result.certificate),
          },
        })
    return result
  }

  /** Sends a signed request to the gateway and checks what comes back (see {@link invoke}). */
  private async certified(request: SignedRequest, id: string, trust: Trust): Promise<InvokeResult> {
    // The view and the manifest are needed to check the answer: fetched while the call runs.
    const ready = Promise.all([this.heldView(), this.manifest(request.fn)])
    ready.catch(() => {})
    const answer =
      (this.options.direct === true ? await this.invokeDirect(request, id, trust, ready) : undefined) ??
      (await (await this.gatewayFor(request, ready)).invokeThroughGateway(request, trust))
    const { certificate, output } = answer
    if (certificate.id !== id)
      throw new CovenantError(
        'INVALID_CERTIFICATE',
        `the certificate is for ${certificate.id}, not the request ${id}`,
      )
    const [{ view }, manifest] = await ready
    const verified = await this.verify(certificate, { output, trust })
    const value = output.ref === undefined ? verified.value : await this.readOutput(output.ref)
    const conflicts: Conflict[] = []
    for (const c of answer.conflicts) {
      try {
        const conflict = answer.fromGateway ? conflictFromJSON(c) : (c as Conflict)
        if (conflict.receipt.request === id)
          conflicts.push(verifyConflict(conflict, { ...trust, view, manifest }).conflict)
      } catch {
        // evidence that does not verify is the gateway's noise, not a fact about an executor
      }
    }
    // A gateway committed the run's writes before it answered; a run made from here is committed
    // from here, through this client's node, the same way.
    const commits =
      answer.commits ??
      (await commitRunWrites({ id, certificate, output }, (commit) => this.store(commit.ns).send(commit)))
    // The jobs it enqueued go with its writes, once those are committed (`invoke` throws a refused
    // commit): a gateway handed them over before it answered; a run made from here hands them
    // over from here.
    const jobs =
      answer.fromGateway || (output.jobs?.length ?? 0) === 0 || commits.some((o) => 'error' in o)
        ? answer.jobs
        : await this.enqueueRun(certificate, output).catch((err: unknown) => ({
            error: CovenantError.from(err).toJSON(),
          }))
    return {
      value,
      output,
      certificate,
      conflicts,
      tried: answer.tried,
      commits,
      ...(jobs === undefined ? {} : { jobs }),
    }
  }

  /**
   * The node to send `request` to: this client's own, or with `executingGateway` the best-ranked
   * of the first k executors the selection picks over this client's view that is a node of
   * `viewFrom` (so it runs the call itself).
   */
  private async gatewayFor(
    request: SignedRequest,
    ready: Promise<[HeldView, Manifest]>,
  ): Promise<CovenantClient> {
    if (this.options.executingGateway !== true) return this
    let held: HeldView
    let manifest: Manifest
    try {
      ;[held, manifest] = await ready
    } catch {
      return this
    }
    for (const peer of rankExecutors(held.view, request, manifest).ordered.slice(0, request.k)) {
      const url = held.urls.get(peer)
      if (url === undefined) continue
      if (url === this.url) return this
      let gateway = this.gateways.get(url)
      if (gateway === undefined) {
        gateway = new CovenantClient(url, { timeoutMs: this.timeoutMs })
        this.gateways.set(url, gateway)
      }
      return gateway
    }
    return this
  }

  /** Sends the signed request to the gateway's `POST /v1/invoke` and reads its answer. */
  private async invokeThroughGateway(request: SignedRequest, trust: Trust): Promise<Answer> {
    const waitMs = Math.max(this.timeoutMs, request.deadline - Date.now() + INVOKE_REPLY_MARGIN_MS)
    const res = await this.call(invokeRoute, {
      body: JSON.stringify({ request: requestToJSON(request), trust }),
      type: 'application/json',
      timeoutMs: waitMs,
    })
    const parsed = InvokeReplySchema.safeParse(await readJson(res))
    if (!parsed.success) {
      // A certificate or output that does not even parse is one that does not verify.
      const bad = parsed.error.issues.find((i) => i.path[0] === 'certificate' || i.path[0] === 'output')
      if (bad !== undefined)
        throw new CovenantError('INVALID_CERTIFICATE', `the gateway sent a malformed ${String(bad.path[0])}`)
      throw new CovenantError('PROTOCOL_ERROR', `${this.url} sent a malformed invoke reply`)
    }
    const reply = parsed.data
    return {
      certificate: certificateFromJSON(reply.certificate),
      output: reply.output,
      conflicts: reply.conflicts,
      tried: reply.tried,
      commits: reply.commits,
      jobs: reply.jobs,
      fromGateway: true,
    }
  }

  /**
   * Runs the quorum protocol from here (direct.ts); `undefined` when no executor could be reached
   * (the request then goes through the gateway: an executor that ran it answers it again from its
   * kept reply).
   */
  private async invokeDirect(
    request: SignedRequest,
    id: string,
    trust: Trust,
    ready: Promise<[HeldView, Manifest]>,
  ): Promise<Answer | undefined> {
    this.direct ??= openDirect()
    const direct = await this.direct
    const [held, manifest] = await ready
    try {
      const result = await direct.invoke({ request, id, manifest, view: held.view, addrs: held.addrs, trust })
      return { ...result, fromGateway: false }
    } catch (err) {
      const tried = (CovenantError.from(err).details as { tried?: Attempt[] } | undefined)?.tried
      const unreachable =
        CovenantError.from(err).code === 'NO_QUORUM' &&
        tried !== undefined &&
        tried.every((a) => a.error?.code === 'PEER_UNREACHABLE')
      if (unreachable) return undefined
      throw err
    }
  }

  /**
   * The value of an output stored in the content network (exec's stored-output.ts): its blocks
   * fetched once, each checked against its CID and the whole against the reference the certificate
   * signs. A node that sends bytes other than those named is passed over for the next node this
   * client knows (its gateway first, then the nodes of its view).
   */
  async readOutput(ref: OutputRef): Promise<unknown> {
    const sources = [this.url, ...this.viewFrom.filter((u) => u !== this.url)]
    const text = await readStoredOutput(ref, async (cid) => {
      let last: unknown
      for (const url of sources) {
        try {
          return await (url === this.url
            ? this
            : new CovenantClient(url, { timeoutMs: this.timeoutMs })
          ).getBlock(cid)
        } catch (err) {
          last = err
        }
      }
      throw CovenantError.from(last)
    })
    try {
      return JSON.parse(text)
    } catch (err) {
      throw new CovenantError('INVALID_OUTPUT', `the stored output ${ref.cid} is not JSON text`, {
        cause: err,
      })
    }
  }

  /** Signs the request `invoke` and `quote` send, the datastore versions it reads fixed. */
  private async signRequest(
    fn: string | CID,
    exportName: string,
    args: unknown[],
    options: Omit<InvokeOptions, 'trust'>,
  ): Promise<{ key: PrivateKey; request: SignedRequest; id: string }> {
    const [key, reads] = await Promise.all([options.key ?? loadCallerKey(), this.readsFor(options)])
    const { request, id } = createRequest(key, {
      fn: typeof fn === 'string' ? fn : fn.toString(),
      export: exportName,
      args,
      fuel: options.fuel,
      memoryMiB: options.memoryMiB,
      timeoutMs: options.timeoutMs,
      outputMiB: options.outputMiB,
      k: options.replicas,
      q: options.quorum ?? DEFAULT_QUORUM,
      nonce: options.nonce,
      ticket: options.ticket,
      reads,
    })
    return { key, request, id }
  }

  /** The namespace versions a call fixes: `reads` as given, the others of `stores` at their holders' head. */
  private async readsFor(options: Omit<InvokeOptions, 'trust'>): Promise<Record<string, number> | undefined> {
    const stores = (options.stores ?? []).filter((ns) => options.reads?.[ns] === undefined)
    if (stores.length === 0) return options.reads
    const heads = await Promise.all(stores.map((ns) => this.store(ns).info()))
    return { ...Object.fromEntries(stores.map((ns, i) => [ns, heads[i].head.seq])), ...options.reads }
  }

  // ── payments (./payments.ts) ────────────────────────────────────────────────────────────────

  /**
   * Prices a call before making it: the gateway runs it once (a dry run, uncertified, held against
   * the caller's credit like a call) and returns the fuel it used, its signed receipt for it, and
   * each selected executor's charge for that fuel. The receipt's signature is checked here, and
   * every executor the client knows is priced at the covenant its own view holds. A certified run
   * whose receipts sign for the same fuel is charged exactly what is quoted.
   */
  async quote(
    fn: string | CID,
    exportName: string,
    args: unknown[] = [],
    options: Omit<InvokeOptions, 'trust'> & { trust?: TrustInput } = {},
  ): Promise<QuoteResult> {
    const trust = trustOf({ ...this.options.trust, ...options.trust })
    const { request, id } = await this.signRequest(fn, exportName, args, options)
    const reply = await this.json(quoteRoute, {
      body: { request: requestToJSON(request), trust },
      timeoutMs: Math.max(this.timeoutMs, request.deadline - Date.now() + INVOKE_REPLY_MARGIN_MS),
    })
    const receipt = verifyReceipt(bytesFieldsFromJSON(reply.receipt, ['signature']))
    if (receipt.request !== id || receipt.fuel !== reply.fuel)
      throw new CovenantError('PROTOCOL_ERROR', `${this.url} quoted fuel its receipt does not sign for`)
    const view = await this.view()
    const executors = reply.quote.executors.map((e) => {
      const covenant = view.peers.get(e.peer)?.covenant
      if (covenant === undefined)
        throw new CovenantError(
          'PROTOCOL_ERROR',
          `${this.url} quoted ${e.peer}, which is not in this client's view`,
        )
      return { peer: e.peer, covenant }
    })
    return {
      fuel: reply.fuel,
      outcome: reply.outcome,
      quote: quote({ fuel: reply.fuel, q: request.q, executors }),
    }
  }

  /**
   * Settles now: a cheque to each payee for what is owed and the certificates it has not confirmed
   * (which happens by itself shortly after each call); with `all`, every node of the view is also
   * asked for its invoices (the storage of blocks the caller published).
   */
  async settle(options: { key?: PrivateKey; all?: boolean } = {}): Promise<SettleReport | undefined> {
    if (this.payments === undefined) return undefined
    const key = options.key ?? (await loadCallerKey())
    if (options.all === true) return this.payments.sync(key, options.key === undefined)
    const ledger = await this.payments.ledger(key, options.key === undefined)
    return ledger === undefined ? undefined : this.payments.settle(ledger)
  }

  /** The caller's balances with each payee, as its own ledger keeps them, and its charges. */
  async balance(options: { key?: PrivateKey; limit?: number } = {}): Promise<Balance | undefined> {
    const key = options.key ?? (await loadCallerKey())
    return this.payments?.balance(key, options.key === undefined, options)
  }

  /** A devnet's faucet: every node of the view mints `amount` ncr for the caller (once it is spent, none more). */
  async faucet(amount = DEFAULT_FAUCET_AMOUNT, options: { key?: PrivateKey } = {}): Promise<FaucetResult> {
    if (this.payments === undefined)
      throw new CovenantError('INVALID_INPUT', 'this client keeps no ledger (payments: false)')
    const key = options.key ?? (await loadCallerKey())
    return this.payments.faucet(key, options.key === undefined, amount)
  }

  /** Sends what is left to settle, closes the caller's ledgers, and stops the libp2p host of `direct` calls. */
  async close(): Promise<void> {
    const direct = this.direct
    this.direct = undefined
    await Promise.all([
      this.payments?.close(),
      (async () => (await direct?.catch(() => undefined))?.close())(),
    ])
  }

  // ── For the dashboard (and any caller): inspecting code, storage, the live calls feed ──

  /** Reads a module's exports and imports on the node (a browser has no bundler); resolves nothing. */
  async inspect(code: string, options: { typescript?: boolean } = {}): Promise<InspectReply> {
    return this.json(inspectRoute, { body: { code, typescript: options.typescript === true } })
  }

  /** What the node stores (a page of blocks, each with why), against its covenant's limit, and its repair queue. */
  async storage(options: { limit?: number; after?: string } = {}): Promise<StorageReply> {
    const query = new URLSearchParams()
    if (options.limit !== undefined) query.set('limit', String(options.limit))
    if (options.after !== undefined) query.set('after', options.after)
    return this.json(storageRoute, { query: query.toString() })
  }

  /**
   * The calls this node executes or gatewayes, as they end (the last `backlog` first): never
   * their arguments or outputs. Runs until `signal` aborts or the node ends the stream.
   */
  async *calls(options: { backlog?: number; signal?: AbortSignal } = {}): AsyncGenerator<CallEvent> {
    // no timeout: the stream lasts until the caller's signal aborts
    const signal = options.signal ?? new AbortController().signal
    try {
      const res = await this.call(callsRoute, { query: `backlog=${options.backlog ?? 50}`, signal })
      yield* readEventStream(res, callsRoute.event, this.url)
    } catch (err) {
      if (!options.signal?.aborted) throw err
    }
  }

  // ── end of the dashboard's calls ──

  async getFunction(cid: string | CID): Promise<FunctionInfo> {
    const text = typeof cid === 'string' ? parseCid(cid).toString() : cid.toString()
    return this.json(getFunctionRoute, { params: { cid: text } })
  }

  // ── datastores (./store.ts) ───────────────────────────────────────────────────────────────

  /**
   * Creates the namespace `name` owned by the caller's key (or `options.key`) on its holders:
   * private unless `public`, with the write policy given (default k ≥ 3, q ≥ 2).
   */
  async createStore(name: string, options: CreateStoreOptions = {}): Promise<CreatedStore> {
    const { key, ...init } = options
    return createStore((spec, i) => this.json(spec, i), key ?? (await loadCallerKey()), name, init)
  }

  /** A handle on the namespace `ns`; with `key`, its reads and commits are signed with that key. */
  store(ns: string, options: { key?: PrivateKey } = {}): NamespaceHandle {
    return new NamespaceHandle(ns, {
      call: (spec, i) => this.json(spec, i),
      key: options.key,
      callerKey: () => loadCallerKey(),
    })
  }

  /**
   * Grants `store/write` on keys under `prefix` of `namespace` to a key or a function, until
   * `expiresAt`, signed by the caller's key (or `key`). Nothing goes to the network: the grant is
   * handed to the writer, who offers it with its commits.
   */
  async grant(init: Omit<DelegateWriteInit, 'issuer'> & { key?: PrivateKey }): Promise<WriteGrant> {
    const { key, ...rest } = init
    return delegateWrite({ ...rest, issuer: key ?? (await loadCallerKey()) })
  }

  // ── jobs (./jobs.ts) ──────────────────────────────────────────────────────────────────────

  private jobsInit(): JobsInit {
    return {
      call: (spec, i) => this.json(spec, i),
      raw: (spec, i) => this.call(spec, i),
      callerKey: () => loadCallerKey(),
      verify: (certificate, options) => this.verify(certificate, options),
      events: (res, schema) => readEventStream(res, schema, this.url),
      charged: async (info) => {
        const enqueuer = this.enqueuers.get(info.enqueuer)
        if (enqueuer !== undefined && this.payments !== undefined)
          await this.payments.recordJob(enqueuer.key, enqueuer.fromKeyFile, info)
      },
    }
  }

  /**
   * The keys this client enqueued jobs with (or was handed in {@link job}), by key id: it records
   * their jobs' charges when it reads their state.
   */
  private readonly enqueuers = new Map<string, { key: PrivateKey; fromKeyFile: boolean }>()

  private async enqueuerKey(key: PrivateKey | undefined): Promise<PrivateKey> {
    const k = key ?? (await loadCallerKey())
    if (this.enqueuers.size < 1024) this.enqueuers.set(keyId(k), { key: k, fromKeyFile: key === undefined })
    return k
  }

  /**
   * Enqueues a run of `exportName` of the function `fn` on `args`, signed with the caller's key
   * (or `options.key`): resolves with the job id as soon as its keepers hold it. The network runs
   * it once `runAfterMs` has passed, retries it onto freshly chosen executors, and keeps the
   * result for anyone who asks with {@link job}.
   */
  async enqueue(fn: string | CID, exportName: string, args: unknown[] = [], options: EnqueueOptions = {}) {
    const key = await this.enqueuerKey(options.key)
    return enqueueJob(this.jobsInit(), typeof fn === 'string' ? fn : fn.toString(), exportName, args, {
      ...options,
      key,
    })
  }

  /** Hands the jobs a certified run enqueued (`ctx.enqueue`) to their keepers; a no-op for jobs already there. */
  enqueueRun(certificate: Certificate, output: InvokeResult['output']) {
    return enqueueRun(this.jobsInit(), certificate, output)
  }

  /**
   * A handle on the job `id`: `status()`, `events()`, `wait()`, `cancel()`. With the enqueuer's
   * `key` (a job enqueued through another client), reading its state records its charges in that
   * key's ledger, as for the jobs this client enqueued.
   */
  job(id: string, options: { key?: PrivateKey } = {}): JobHandle {
    if (options.key !== undefined && this.enqueuers.size < 1024)
      this.enqueuers.set(keyId(options.key), { key: options.key, fromKeyFile: false })
    return new JobHandle(id, this.jobsInit())
  }

  /**
   * The jobs the nodes of this client's view keep (or this node alone, with pinned covenants),
   * each once as the node with its newest state holds it, in id order.
   */
  async jobs(
    options: { status?: JobSummary['status']; enqueuer?: string; limit?: number } = {},
  ): Promise<JobSummary[]> {
    const query = new URLSearchParams()
    if (options.status !== undefined) query.set('status', options.status)
    if (options.enqueuer !== undefined) query.set('enqueuer', options.enqueuer)
    query.set('limit', String(options.limit ?? 100))
    const nodes = this.viewFrom.length === 0 ? [this.url] : this.viewFrom
    const pages = await Promise.all(
      nodes.map((url) =>
        (url === this.url ? this : new CovenantClient(url, { timeoutMs: this.timeoutMs }))
          .json(listJobsRoute, { query: query.toString() })
          .then(
            (page: ListJobsReply) => page.jobs,
            () => [] as JobSummary[],
          ),
      ),
    )
    const best = new Map<string, JobSummary>()
    for (const job of pages.flat()) {
      const held = best.get(job.id)
      if (held === undefined || job.version > held.version) best.set(job.id, job)
    }
    return [...best.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, options.limit ?? 100)
  }

  /**
   * Signs the caller's (or `key`'s) vouch for `executor` until `expiresAt`; a namespace keeps it
   * with `store(ns).keepVouch(vouch)` for a write policy whose `vouchedBy` names the signer.
   */
  async vouch(init: { executor: string; expiresAt: number; key?: PrivateKey }): Promise<Vouch> {
    const { key, ...vouch } = init
    return signVouch(key ?? (await loadCallerKey()), vouch)
  }

  /** Revokes (a delegation of) `grant` on `ns`, signed by the caller's key (or `key`), on every holder. */
  async revoke(
    ns: string,
    init: { grant: WriteGrant; delegation?: string; effectiveAt?: number; key?: PrivateKey },
  ): Promise<CommitResult> {
    const { key, ...rest } = init
    return revokeGrant(this.store(ns), key ?? (await loadCallerKey()), rest)
  }
}

/** What a call brought back, through the gateway or directly, before the client checks it. */
interface Answer {
  certificate: Certificate
  output: Output
  /** conflict evidence: JSON from a gateway, objects from `invoke` here */
  conflicts: unknown[]
  tried: Attempt[]
  /** what the gateway's commits of the run's writes came to; none when the run was made here */
  commits?: CommitOutcome[]
  /** what became of the jobs the run enqueued, as the gateway tells it */
  jobs?: InvokeReply['jobs']
  fromGateway: boolean
}

/** Where each peer listens, as any of the nodes asked lists it (hints: Noise checks the peer's key). */
function addressesIn(lists: ReadonlyArray<readonly PeerInfo[] | undefined>): Map<string, string[]> {
  const addrs = new Map<string, string[]>()
  for (const list of lists)
    for (const entry of list ?? []) {
      const known = addrs.get(entry.id) ?? []
      for (const a of entry.addrs) if (!known.includes(a) && known.length < 16) known.push(a)
      addrs.set(entry.id, known)
    }
  return addrs
}

/** The body as JSON, or undefined when it is not JSON. */
async function readJson(res: Response): Promise<unknown> {
  try {
    return await res.json()
  } catch {
    return undefined
  }
}
