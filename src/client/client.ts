/** The HTTP client of one node. Uses only global fetch, so it runs in a browser too. */
import { toString as bytesToString } from 'uint8arrays/to-string'
import { z } from 'zod'
import {
  type CID,
  cidForBytes,
  createManifest,
  type ManifestJSON,
  parseCid,
  TagsSchema,
  verifyBlock,
} from '../content/index.ts'
import { type SignedCovenant, type SignedCovenantJSON, signedCovenantFromJSON } from '../covenant/index.ts'
import { CovenantError, isErrorCode } from '../errors/index.ts'
import {
  type Attempt,
  type CertificateJSON,
  type Conflict,
  certificateFromJSON,
  conflictFromJSON,
  createRequest,
  type InvokeResult,
  OutputSchema,
  requestToJSON,
  verifyCertificate,
  verifyConflict,
} from '../exec/index.ts'
import type { PrivateKey } from '../keys/index.ts'
import { listExports, loadCallerKey } from './node-helpers.ts'

const errorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
})

export interface NodeInfo {
  peerId: string
  multiaddrs: string[]
  covenant: SignedCovenantJSON
  replicas: number
}

export interface PeerInfo {
  id: string
  addrs: string[]
  alive: boolean
  lastSeen: number
  self: boolean
  covenant: SignedCovenantJSON | null
  /** conflict evidence this node holds against the peer */
  conflicts: number
}

export interface PutBlockResult {
  cid: string
  holders: string[]
  wanted: number
}

export interface DeployResult {
  /** the manifest CID: the function's name */
  cid: string
  codeCid: string
  holders: string[]
  codeHolders: string[]
  wanted: number
  exports: string[]
}

export interface FunctionInfo {
  cid: string
  manifest: ManifestJSON
  holders: string[]
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

const invokeReplySchema = z.object({
  output: z.unknown(),
  certificate: z.unknown(),
  conflicts: z.array(z.unknown()).max(256).default([]),
  tried: z.array(z.unknown()).max(1024).default([]),
})

/** Room past the request's deadline for the gateway's answer to arrive. */
const INVOKE_REPLY_MARGIN_MS = 5_000

export class CovenantClient {
  /** base URL of the node, without a trailing slash */
  readonly url: string
  private readonly timeoutMs: number

  constructor(url: string, options: { timeoutMs?: number } = {}) {
    this.url = url.replace(/\/+$/, '')
    this.timeoutMs = options.timeoutMs ?? 60_000
  }

  private async call(
    method: string,
    path: string,
    body?: BodyInit,
    type?: string,
    timeoutMs = this.timeoutMs,
  ): Promise<Response> {
    let res: Response
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        body,
        headers: type === undefined ? undefined : { 'content-type': type },
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      throw new CovenantError('NODE_UNREACHABLE', `${this.url} did not answer: ${(err as Error).message}`, {
        cause: err,
      })
    }
    if (res.ok) return res
    let json: unknown
    try {
      json = await res.json()
    } catch {
      json = undefined
    }
    const parsed = errorBodySchema.safeParse(json)
    if (parsed.success) throw CovenantError.fromJSON(parsed.data.error)
    throw new CovenantError(
      'PROTOCOL_ERROR',
      `${this.url}${path} answered ${res.status} without an error body`,
    )
  }

  private async json<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const res = await this.call(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
      body === undefined ? undefined : 'application/json',
      timeoutMs,
    )
    return (await res.json()) as T
  }

  /** The node's id, addresses and signed covenant (its signature is checked here). */
  async node(): Promise<NodeInfo & { signedCovenant: SignedCovenant }> {
    const info = await this.json<NodeInfo>('GET', '/v1/node')
    const signedCovenant = signedCovenantFromJSON(info.covenant)
    if (signedCovenant.peer !== info.peerId)
      throw new CovenantError('INVALID_SIGNATURE', 'the node presents a covenant signed by another key')
    return { ...info, signedCovenant }
  }

  /** The node's peer table, itself first. Covenants can be checked with signedCovenantFromJSON. */
  async peers(): Promise<PeerInfo[]> {
    return (await this.json<{ peers: PeerInfo[] }>('GET', '/v1/peers')).peers
  }

  async putBlock(bytes: Uint8Array, options: { tags?: string[] } = {}): Promise<PutBlockResult> {
    const tags = TagsSchema.parse(options.tags ?? [])
    const query = tags.length > 0 ? `?tags=${encodeURIComponent(tags.join(','))}` : ''
    const res = await this.call(
      'PUT',
      `/v1/blocks${query}`,
      bytes as Uint8Array<ArrayBuffer>,
      'application/octet-stream',
    )
    const result = (await res.json()) as PutBlockResult
    if (result.cid !== cidForBytes(bytes).toString())
      throw new CovenantError('HASH_MISMATCH', `the node named the block ${result.cid}`)
    return result
  }

  /** Fetches a block and checks it against its CID here, whatever the node did. */
  async getBlock(cid: string | CID): Promise<Uint8Array> {
    const parsed = typeof cid === 'string' ? parseCid(cid) : cid
    const res = await this.call('GET', `/v1/blocks/${parsed.toString()}`)
    const bytes = new Uint8Array(await res.arrayBuffer())
    if (!verifyBlock(parsed, bytes))
      throw new CovenantError('HASH_MISMATCH', `the node sent bytes that do not hash to ${parsed}`)
    return bytes
  }

  /** The peers that hold a block, closest first. */
  async holders(cid: string | CID): Promise<string[]> {
    const text = typeof cid === 'string' ? parseCid(cid).toString() : cid.toString()
    return (await this.json<{ holders: string[] }>('GET', `/v1/blocks/${text}/holders`)).holders
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
    const result = await this.json<Omit<DeployResult, 'exports'>>('POST', '/v1/functions', {
      code: source,
      manifest: bytesToString(bytes, 'base64pad'),
    })
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
    const body = await this.json<unknown>('POST', '/v1/invoke', { request: requestToJSON(request) }, waitMs)
    const reply = invokeReplySchema.safeParse(body)
    if (!reply.success) throw new CovenantError('PROTOCOL_ERROR', `${this.url} sent a malformed invoke reply`)
    const certificate = certificateFromJSON(reply.data.certificate)
    if (certificate.id !== id)
      throw new CovenantError(
        'INVALID_CERTIFICATE',
        `the certificate is for ${certificate.id}, not the request ${id}`,
      )
    const output = OutputSchema.safeParse(reply.data.output)
    if (!output.success) throw new CovenantError('INVALID_CERTIFICATE', 'the gateway sent a malformed output')
    verifyCertificate(certificate, { output: output.data })
    const conflicts: Conflict[] = []
    for (const c of reply.data.conflicts) {
      try {
        const conflict = conflictFromJSON(c)
        if (conflict.request === id) conflicts.push(verifyConflict(conflict).conflict)
      } catch {
        // evidence that does not verify is the gateway's noise, not a fact about an executor
      }
    }
    const error = output.data.error
    if (error !== null) {
      const certificateJSON: CertificateJSON = (reply.data as { certificate: CertificateJSON }).certificate
      throw new CovenantError(isErrorCode(error.code) ? error.code : 'USER_ERROR', error.message, {
        details: { certificate: certificateJSON, logs: output.data.logs, agreed: true },
      })
    }
    return {
      value: output.data.value,
      output: output.data,
      certificate,
      conflicts,
      tried: reply.data.tried as Attempt[],
    }
  }

  async getFunction(cid: string | CID): Promise<FunctionInfo> {
    const text = typeof cid === 'string' ? parseCid(cid).toString() : cid.toString()
    return this.json<FunctionInfo>('GET', `/v1/functions/${text}`)
  }
}
