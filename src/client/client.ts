/**
 * The HTTP client of one node. Uses only global fetch, so it runs in a browser too. Every request
 * is built from its route's spec in `src/api` and every reply is parsed with the route's schema:
 * a node that answers something else gets a PROTOCOL_ERROR, never a value taken on trust.
 */
import type { z } from 'zod'
import {
  blockHoldersRoute,
  type DeployReply,
  deployRoute,
  ErrorBodySchema,
  type FunctionInfo,
  getBlockRoute,
  getFunctionRoute,
  InvokeReplySchema,
  invokeRoute,
  type NodeInfo,
  nodeRoute,
  type PeerInfo,
  type PutBlockReply,
  peersRoute,
  putBlockRoute,
  type RouteSpec,
  routePath,
} from '../api/index.ts'
import { type DelegateWriteInit, delegateWrite, type WriteGrant } from '../caps/index.ts'
import { type CID, cidForBytes, createManifest, parseCid, TagsSchema, verifyBlock } from '../content/index.ts'
import { type SignedCovenant, signedCovenantFromJSON } from '../covenant/index.ts'
import { toBase64 } from '../encoding/index.ts'
import { CovenantError, isErrorCode, parseOrThrow } from '../errors/index.ts'
import {
  type Conflict,
  certificateFromJSON,
  conflictFromJSON,
  createRequest,
  type InvokeResult,
  requestToJSON,
  verifyCertificate,
  verifyConflict,
} from '../exec/index.ts'
import type { PrivateKey } from '../keys/index.ts'
import { listExports, loadCallerKey } from './node-helpers.ts'
import {
  type CommitResult,
  type CreatedStore,
  type CreateStoreOptions,
  createStore,
  NamespaceHandle,
  revokeGrant,
} from './store.ts'

export type { FunctionInfo, NodeInfo, PeerInfo }

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
  /** export names; default: read from the module with esbuild (Node only) */
  exports?: string[]
}

export interface InvokeOptions {
  /** executors asked (k) @default 3 */
  replicas?: number
  /** matching receipts needed (q) @default 2 */
  quorum?: number
  /** fuel limit in sandbox ticks @default 2000 */
  fuel?: number
  /** memory limit @default 64 */
  memoryMiB?: number
  /** wall-clock limit per executor @default 5000 */
  timeoutMs?: number
  /** the caller key that signs the request; default: the caller key file (Node only) */
  key?: PrivateKey
  /** request nonce @default random */
  nonce?: string
}

/**
 * What `invoke` resolves with: the value the certificate's output hash commits to, the certificate
 * and conflicts (each checked here, not taken from the gateway on trust), and `tried`, the
 * executors the gateway asked and what came of each (as the gateway tells it).
 */
export type { InvokeResult }

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
}

export class CovenantClient {
  /** base URL of the node, without a trailing slash */
  readonly url: string
  private readonly timeoutMs: number

  constructor(url: string, options: { timeoutMs?: number } = {}) {
    this.url = url.replace(/\/+$/, '')
    this.timeoutMs = options.timeoutMs ?? 60_000
  }

  private async call(spec: RouteSpec, init: CallInit = {}): Promise<Response> {
    const path = routePath(spec, init.params) + (init.query ? `?${init.query}` : '')
    let res: Response
    try {
      res = await fetch(`${this.url}${path}`, {
        method: spec.method,
        body: init.body,
        headers: init.type === undefined ? undefined : { 'content-type': init.type },
        signal: AbortSignal.timeout(init.timeoutMs ?? this.timeoutMs),
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

  async putBlock(bytes: Uint8Array, options: { tags?: string[] } = {}): Promise<PutBlockResult> {
    const tags = TagsSchema.parse(options.tags ?? [])
    const res = await this.call(putBlockRoute, {
      query: tags.length > 0 ? `tags=${encodeURIComponent(tags.join(','))}` : undefined,
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

  /** Signs a manifest for a bundled ES module with the caller's key and deploys both. */
  async deploy(source: string, options: DeployOptions = {}): Promise<DeployResult> {
    const code = new TextEncoder().encode(source)
    const exports = options.exports ?? (await listExports(source))
    const key = options.key ?? (await loadCallerKey())
    const { bytes } = createManifest(key, {
      code: cidForBytes(code),
      size: code.length,
      exports,
      tags: options.tags,
      name: options.name,
    })
    const result = await this.json(deployRoute, { body: { code: source, manifest: toBase64(bytes) } })
    return { ...result, exports }
  }

  /**
   * Runs `exportName` of the function `fn` on the network: signs a request with the caller key,
   * sends it to this node's `POST /v1/invoke`, and checks the certificate it gets back itself
   * (the gateway is not trusted): it must verify, be for the very request signed here, and commit
   * to the output returned. Throws INVALID_CERTIFICATE if not. A function failure the quorum
   * agreed on (FUEL_EXHAUSTED, USER_ERROR, …) is thrown with that code and the certificate (JSON)
   * in `details.certificate`.
   */
  async invoke(
    fn: string | CID,
    exportName: string,
    args: unknown[] = [],
    options: InvokeOptions = {},
  ): Promise<InvokeResult> {
    const key = options.key ?? (await loadCallerKey())
    const { request, id } = createRequest(key, {
      fn: typeof fn === 'string' ? fn : fn.toString(),
      export: exportName,
      args,
      fuel: options.fuel,
      memoryMiB: options.memoryMiB,
      timeoutMs: options.timeoutMs,
      k: options.replicas,
      q: options.quorum,
      nonce: options.nonce,
    })
    const waitMs = Math.max(this.timeoutMs, request.deadline - Date.now() + INVOKE_REPLY_MARGIN_MS)
    const res = await this.call(invokeRoute, {
      body: JSON.stringify({ request: requestToJSON(request) }),
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
    const certificate = certificateFromJSON(reply.certificate)
    if (certificate.id !== id)
      throw new CovenantError(
        'INVALID_CERTIFICATE',
        `the certificate is for ${certificate.id}, not the request ${id}`,
      )
    verifyCertificate(certificate, { output: reply.output })
    const conflicts: Conflict[] = []
    for (const c of reply.conflicts) {
      try {
        const conflict = conflictFromJSON(c)
        if (conflict.request === id) conflicts.push(verifyConflict(conflict).conflict)
      } catch {
        // evidence that does not verify is the gateway's noise, not a fact about an executor
      }
    }
    const error = reply.output.error
    if (error !== null) {
      throw new CovenantError(isErrorCode(error.code) ? error.code : 'USER_ERROR', error.message, {
        details: { certificate: reply.certificate, logs: reply.output.logs, agreed: true },
      })
    }
    return { value: reply.output.value, output: reply.output, certificate, conflicts, tried: reply.tried }
  }

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

  /** Revokes (a delegation of) `grant` on `ns`, signed by the caller's key (or `key`), on every holder. */
  async revoke(
    ns: string,
    init: { grant: WriteGrant; delegation?: string; effectiveAt?: number; key?: PrivateKey },
  ): Promise<CommitResult> {
    const { key, ...rest } = init
    return revokeGrant(this.store(ns), key ?? (await loadCallerKey()), rest)
  }
}

/** The body as JSON, or undefined when it is not JSON. */
async function readJson(res: Response): Promise<unknown> {
  try {
    return await res.json()
  } catch {
    return undefined
  }
}
