/**
 * The node's HTTP API. Every body, param and query is validated with zod; every error answers
 * `{ "error": { "code", "message" } }` with the status ERROR_CODES gives its code. CORS is open so
 * a browser page can talk to a node directly.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { z } from 'zod'
import {
  type CID,
  cidForBytes,
  decodeManifest,
  MAX_BLOCK_BYTES,
  MAX_MANIFEST_BYTES,
  manifestToJSON,
  normalizeTags,
  parseCid,
  TagsSchema,
} from '../content/index.ts'
import { mayServe, type SignedCovenant, signedCovenantToJSON } from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { Net } from '../net/index.ts'
import type { ConflictStore } from './conflict-store.ts'
import type { NodeMetrics } from './metrics.ts'
import type { PeerTable } from './peer-table.ts'
import type { Storage } from './storage.ts'

export interface HttpApiDeps {
  net: Net
  peers: PeerTable
  storage: Storage
  covenant: () => SignedCovenant
  metrics: NodeMetrics
  /** when given, `GET /v1/peers` counts the conflicts held against each peer */
  conflicts?: Pick<ConflictStore, 'counts'>
}

const cidParams = z.strictObject({ cid: z.string().min(1).max(128) })
const putQuery = z.strictObject({ tags: z.string().max(4096).optional() })
/** Body of POST /v1/functions: the bundled module and its signed manifest (DAG-CBOR, base64). */
export const deployBodySchema = z.strictObject({
  code: z.string().max(MAX_BLOCK_BYTES),
  manifest: z
    .string()
    .max(Math.ceil((MAX_MANIFEST_BYTES * 4) / 3) + 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
})
export type DeployBody = z.infer<typeof deployBodySchema>

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const path = issue?.path.length ? issue.path.join('.') : what
  throw new CovenantError('INVALID_INPUT', `${what}: ${path}: ${issue?.message ?? 'invalid'}`)
}

function cidParam(req: FastifyRequest): CID {
  return parseCid(parse(cidParams, req.params, 'path').cid)
}

function parseTags(text: string | undefined): string[] {
  if (text === undefined || text === '') return []
  return normalizeTags(
    parse(
      TagsSchema,
      text.split(',').map((t) => t.trim()),
      'tags',
    ),
  )
}

function assertServes(deps: HttpApiDeps, tags: string[]): void {
  const d = mayServe(deps.covenant().config, { tags })
  if (!d.ok) throw new CovenantError('COVENANT_REFUSED', `this node ${d.reason}`)
}

/** Maps anything thrown in a route (ours or fastify's) to a CovenantError. */
function toCovenantError(err: unknown): CovenantError {
  if (err instanceof CovenantError) return err
  const e = err as { code?: string; statusCode?: number; message?: string }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new CovenantError('MESSAGE_TOO_LARGE', 'the request body is too large')
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return new CovenantError('INVALID_INPUT', e.message ?? 'bad request')
  return CovenantError.from(err)
}

/** Creates the fastify instance with CORS, error handling and the Covenant routes. */
export function createHttpApi(deps: HttpApiDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })

  app.addHook('onRequest', async (req, reply) => {
    reply.header('access-control-allow-origin', '*')
    reply.header('access-control-allow-methods', 'GET, PUT, POST, OPTIONS')
    reply.header('access-control-allow-headers', 'content-type')
    reply.header('access-control-max-age', '600')
    ;(req as FastifyRequest & { startedAt?: number }).startedAt = performance.now()
  })
  app.addHook('onResponse', async (req, reply) => {
    const started = (req as FastifyRequest & { startedAt?: number }).startedAt ?? performance.now()
    deps.metrics.httpDuration.observe(
      { route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) },
      (performance.now() - started) / 1000,
    )
  })
  app.options('*', async (_req, reply) => reply.code(204).send())

  app.setErrorHandler((err, _req, reply) => {
    const e = toCovenantError(err)
    void reply.code(e.status).send({ error: { code: e.code, message: e.message } })
  })
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } })
  })

  app.get('/health', async () => ({
    ok: true,
    peerId: deps.net.peerId,
    peersAlive: deps.peers.live().length,
  }))

  app.get('/v1/node', async () => ({
    peerId: deps.net.peerId,
    multiaddrs: deps.net.multiaddrs(),
    covenant: signedCovenantToJSON(deps.covenant()),
    replicas: deps.storage.replicas,
  }))

  app.get('/v1/peers', async () => {
    const counts = deps.conflicts?.counts() ?? new Map<string, number>()
    return { peers: deps.peers.toJSON().map((p) => ({ ...p, conflicts: counts.get(p.id) ?? 0 })) }
  })

  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', deps.metrics.registry.contentType)
    deps.metrics.peersAlive.set(deps.peers.live().length)
    return deps.metrics.registry.metrics()
  })

  // Raw block bodies: any content type is taken as bytes, up to one block.
  void app.register(async (raw) => {
    raw.removeAllContentTypeParsers()
    raw.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BLOCK_BYTES }, (_req, body, done) => {
      done(null, body)
    })
    raw.addHook('onRequest', async (req) => {
      if (req.headers['content-type'] === undefined) req.headers['content-type'] = 'application/octet-stream'
    })
    raw.put('/v1/blocks', async (req) => {
      const query = parse(putQuery, req.query, 'query')
      const body = req.body
      if (!(body instanceof Uint8Array))
        throw new CovenantError('INVALID_INPUT', 'the body must be the block bytes')
      const tags = parseTags(query.tags)
      assertServes(deps, tags)
      const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
      return deps.storage.put(bytes, { tags })
    })
  })

  app.get('/v1/blocks/:cid', async (req, reply) => {
    const cid = cidParam(req)
    const got = await deps.storage.get(cid)
    assertServes(deps, got.tags)
    deps.metrics.blockGets.inc({ source: got.source })
    void reply
      .header('content-type', 'application/octet-stream')
      .header('x-covenant-tags', got.tags.join(','))
      .header('x-covenant-source', got.source)
    return Buffer.from(got.bytes.buffer, got.bytes.byteOffset, got.bytes.byteLength)
  })

  app.get('/v1/blocks/:cid/holders', async (req) => {
    const cid = cidParam(req)
    return { cid: cid.toString(), holders: await deps.storage.locate(cid) }
  })

  app.post('/v1/functions', { bodyLimit: 3 * MAX_BLOCK_BYTES }, async (req) => {
    const body = parse(deployBodySchema, req.body, 'body')
    const manifestBytes = new Uint8Array(Buffer.from(body.manifest, 'base64'))
    if (manifestBytes.length > MAX_MANIFEST_BYTES)
      throw new CovenantError('MESSAGE_TOO_LARGE', `a manifest is at most ${MAX_MANIFEST_BYTES} bytes`)
    const manifest = decodeManifest(manifestBytes)
    const code = new TextEncoder().encode(body.code)
    if (code.length > MAX_BLOCK_BYTES)
      throw new CovenantError('BUNDLE_TOO_LARGE', `a function bundle is at most ${MAX_BLOCK_BYTES} bytes`)
    const codeCid = cidForBytes(code, 'raw')
    if (!codeCid.equals(manifest.code))
      throw new CovenantError(
        'HASH_MISMATCH',
        `the code hashes to ${codeCid}, the manifest names ${manifest.code}`,
      )
    if (manifest.size !== code.length)
      throw new CovenantError(
        'INVALID_INPUT',
        `the manifest says ${manifest.size} bytes, the code has ${code.length}`,
      )
    assertServes(deps, manifest.tags)
    const codePut = await deps.storage.put(code, { tags: manifest.tags })
    const manifestPut = await deps.storage.put(manifestBytes, { tags: manifest.tags, codec: 'dag-cbor' })
    return {
      cid: manifestPut.cid,
      codeCid: codePut.cid,
      holders: manifestPut.holders,
      codeHolders: codePut.holders,
      wanted: manifestPut.wanted,
    }
  })

  app.get('/v1/functions/:cid', async (req) => {
    const cid = cidParam(req)
    if (cid.code !== 0x71)
      throw new CovenantError('INVALID_CID', 'a function is named by a dag-cbor manifest CID')
    const got = await deps.storage.get(cid)
    const manifest = decodeManifest(got.bytes)
    assertServes(deps, manifest.tags)
    return {
      cid: cid.toString(),
      manifest: manifestToJSON(manifest),
      holders: await deps.storage.locate(cid),
    }
  })

  return app
}

export type { FastifyInstance, FastifyReply }
