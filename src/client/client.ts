/**
 * The HTTP client of one node. Uses only global fetch, so it runs in a browser too. Every request
 * is built from its route's spec in `src/api` and every reply is parsed with the route's schema:
 * a node that answers something else gets a PROTOCOL_ERROR, never a value taken on trust.
 */
import type { z } from 'zod'
import {
  blockHoldersRoute,
  type CallEvent,
  callsRoute,
  type DeployReply,
  deployRoute,
  ErrorBodySchema,
  type FunctionInfo,
  getBlockRoute,
  getFunctionRoute,
  type InspectReply,
  InvokeReplySchema,
  inspectRoute,
  invokeRoute,
  type NodeInfo,
  nodeRoute,
  type PeerInfo,
  type PutBlockReply,
  peersRoute,
  putBlockRoute,
  type RouteSpec,
  routePath,
  type StorageReply,
  storageRoute,
} from '../api/index.ts'
import { type CID, cidForBytes, createManifest, parseCid, verifyBlock } from '../content/index.ts'
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
import { readEventStream } from './event-stream.ts'
import { bundleFunctionFile, inspectHere, loadCallerKey } from './node-helpers.ts'

export type { CallEvent, FunctionInfo, InspectReply, NodeInfo, PeerInfo, StorageReply }

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
  /** instead of the timeout */
  signal?: AbortSignal
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
}

/** The body as JSON, or undefined when it is not JSON. */
async function readJson(res: Response): Promise<unknown> {
  try {
    return await res.json()
  } catch {
    return undefined
  }
}
