/**
 * The HTTP API of a single in-process node, through fastify's inject(): every reply read with its
 * schema from src/api, and every error (ours or fastify's) in the one error shape.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { z } from 'zod'
import {
  API_ROUTES,
  ErrorBodySchema,
  FunctionInfoSchema,
  HealthReplySchema,
  NodeInfoSchema,
  PeersReplySchema,
  PutBlockReplySchema,
  type RouteSpec,
  routePath,
} from '../../src/api/index.ts'
import { cidForBytes, createManifest, MAX_BLOCK_BYTES } from '../../src/content/index.ts'
import { CovenantConfigSchema, DEFAULT_COVENANT, signedCovenantFromJSON } from '../../src/covenant/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import {
  type CovenantNode,
  createNode,
  type NodeComponents,
  type NodeService,
  route,
} from '../../src/node/index.ts'

/** A route a test service adds, the way a part adds its own. */
const probeRoute = {
  method: 'GET',
  path: '/test/probe',
  query: z.strictObject({ ok: z.literal('yes').optional() }),
  reply: z.object({ ok: z.literal(true) }),
} as const satisfies RouteSpec

function probeService(c: Pick<NodeComponents, 'http'>): NodeService {
  route(c.http, probeRoute, async function probe({ query }) {
    if (query.ok === undefined)
      throw new CovenantError('NO_EXECUTORS', 'none here', { details: { excluded: ['all'] } })
    return { ok: true as const }
  })
  return { name: 'probe' }
}

const config = CovenantConfigSchema.parse({
  ...DEFAULT_COVENANT,
  store: { ...DEFAULT_COVENANT.store, refusedTags: ['nsfw'] },
})

describe('HTTP API (inject)', () => {
  let dir: string
  let node: CovenantNode
  let http: FastifyInstance

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-http-'))
    node = await createNode({
      dataDir: dir,
      covenant: config,
      defaultMetrics: false,
      logLevel: 'silent',
      services: [probeService],
    })
    http = node.components.http
  })
  after(async () => {
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const errorOf = (res: { statusCode: number; json(): unknown }) => {
    const body = ErrorBodySchema.parse(res.json())
    assert.deepEqual(Object.keys(body), ['error'])
    assert.equal(typeof body.error.message, 'string')
    return { status: res.statusCode, code: body.error.code }
  }

  it('GET /health and /v1/node describe the node with a verifiable covenant', async () => {
    const health = await http.inject({ method: 'GET', url: '/health' })
    assert.equal(health.statusCode, 200)
    assert.equal(HealthReplySchema.parse(health.json()).peerId, node.peerId)
    const info = NodeInfoSchema.parse((await http.inject({ method: 'GET', url: '/v1/node' })).json())
    assert.equal(info.peerId, node.peerId)
    assert.ok(info.multiaddrs[0].startsWith('/ip4/127.0.0.1/tcp/'))
    const sc = signedCovenantFromJSON(info.covenant)
    assert.equal(sc.peer, node.peerId)
    assert.deepEqual(sc.config.store.refusedTags, ['nsfw'])
    const peers = PeersReplySchema.parse((await http.inject({ method: 'GET', url: '/v1/peers' })).json())
    assert.equal(peers.peers[0].self, true)
    assert.equal(peers.peers[0].id, node.peerId)
    assert.equal(peers.peers.length, 1)
  })

  it('stores and serves a block, without tags; a lone node says how many holders it got', async () => {
    const bytes = new TextEncoder().encode('hello block')
    const put = await http.inject({ method: 'PUT', url: '/v1/blocks', payload: Buffer.from(bytes) })
    assert.equal(put.statusCode, 200)
    const body = PutBlockReplySchema.parse(put.json())
    assert.equal(body.cid, cidForBytes(bytes).toString())
    assert.deepEqual(body.holders, [node.peerId])
    assert.equal(body.wanted, 3)
    const get = await http.inject({ method: 'GET', url: `/v1/blocks/${body.cid}` })
    assert.equal(get.statusCode, 200)
    assert.equal(get.headers['x-covenant-tags'], '')
    assert.deepEqual(new Uint8Array(get.rawPayload), bytes)
    // tags an uploader claims are refused, and the refusal says where tags come from
    const tagged = await http.inject({
      method: 'PUT',
      url: '/v1/blocks?tags=demo',
      payload: Buffer.from(bytes),
    })
    assert.deepEqual(errorOf(tagged), { status: 400, code: 'INVALID_INPUT' })
    assert.match(tagged.json().error.message, /signed manifest/)
    // a JSON content type is still taken as raw bytes
    const json = await http.inject({
      method: 'PUT',
      url: '/v1/blocks',
      headers: { 'content-type': 'application/json' },
      payload: '{"a":1}',
    })
    assert.equal(json.json().cid, cidForBytes(new TextEncoder().encode('{"a":1}')).toString())
  })

  it('deploys a function and shows its manifest', async () => {
    const key = await generateKey()
    const code = 'export const f = () => 1\n'
    const codeBytes = new TextEncoder().encode(code)
    const m = createManifest(key, {
      code: cidForBytes(codeBytes),
      size: codeBytes.length,
      exports: ['f'],
      tags: ['t'],
    })
    const res = await http.inject({
      method: 'POST',
      url: '/v1/functions',
      payload: { code, manifest: Buffer.from(m.bytes).toString('base64') },
    })
    assert.equal(res.statusCode, 200)
    assert.equal(res.json().cid, m.cid.toString())
    const fn = FunctionInfoSchema.parse(
      (await http.inject({ method: 'GET', url: `/v1/functions/${m.cid}` })).json(),
    )
    assert.equal(fn.manifest.publisher, m.manifest.publisher)
    assert.deepEqual(fn.holders, [node.peerId])
    // the code does not match the manifest
    const wrong = await http.inject({
      method: 'POST',
      url: '/v1/functions',
      payload: { code: `${code} `, manifest: Buffer.from(m.bytes).toString('base64') },
    })
    assert.deepEqual(errorOf(wrong), { status: 422, code: 'HASH_MISMATCH' })
    // a tampered manifest
    const tampered = new Uint8Array(m.bytes)
    tampered[tampered.length - 1] ^= 1
    const bad = await http.inject({
      method: 'POST',
      url: '/v1/functions',
      payload: { code, manifest: Buffer.from(tampered).toString('base64') },
    })
    assert.deepEqual(errorOf(bad), { status: 401, code: 'INVALID_SIGNATURE' })
    // a function its manifest tags with what this node refuses is not taken, code nor manifest
    const refusedCode = new TextEncoder().encode('export const r = () => 0\n')
    const refused = createManifest(key, {
      code: cidForBytes(refusedCode),
      size: refusedCode.length,
      exports: ['r'],
      tags: ['nsfw'],
    })
    const no = await http.inject({
      method: 'POST',
      url: '/v1/functions',
      payload: {
        code: 'export const r = () => 0\n',
        manifest: Buffer.from(refused.bytes).toString('base64'),
      },
    })
    assert.deepEqual(errorOf(no), { status: 403, code: 'COVENANT_REFUSED' })
    const codeThere = await http.inject({ method: 'GET', url: `/v1/blocks/${cidForBytes(refusedCode)}` })
    assert.equal(codeThere.statusCode, 404)
  })

  it('answers every error as { error: { code, message } } with its status', async () => {
    const cases: Array<[InjectOptions, number, string]> = [
      [{ method: 'GET', url: '/nope' }, 404, 'NOT_FOUND'],
      [{ method: 'GET', url: '/v1/blocks/not-a-cid' }, 400, 'INVALID_CID'],
      [
        { method: 'GET', url: `/v1/blocks/${cidForBytes(new Uint8Array([9, 9, 9]))}` },
        404,
        'BLOCK_NOT_FOUND',
      ],
      [{ method: 'PUT', url: '/v1/blocks?tags=NOT%20A%20TAG', payload: 'x' }, 400, 'INVALID_INPUT'],
      [{ method: 'PUT', url: '/v1/blocks?color=red', payload: 'x' }, 400, 'INVALID_INPUT'],
      [{ method: 'PUT', url: '/v1/blocks?tags=nsfw', payload: 'x' }, 400, 'INVALID_INPUT'],
      [
        { method: 'PUT', url: '/v1/blocks', payload: Buffer.alloc(MAX_BLOCK_BYTES + 1) },
        413,
        'MESSAGE_TOO_LARGE',
      ],
      [{ method: 'POST', url: '/v1/functions', payload: { code: 'x' } }, 400, 'INVALID_INPUT'],
      [
        {
          method: 'POST',
          url: '/v1/functions',
          payload: '{not json',
          headers: { 'content-type': 'application/json' },
        },
        400,
        'INVALID_INPUT',
      ],
      [
        { method: 'POST', url: '/v1/functions', payload: { code: 'x', manifest: 'AAAA' } },
        400,
        'PROTOCOL_ERROR',
      ],
      [{ method: 'GET', url: `/v1/functions/${cidForBytes(new Uint8Array([1]))}` }, 400, 'INVALID_CID'],
      // errors fastify raises itself take the same way out
      [{ method: 'GET', url: '/v1/functions/%00%ff' }, 400, 'INVALID_INPUT'],
      [{ method: 'GET', url: '/v1/blocks/%zz/holders' }, 400, 'INVALID_INPUT'],
      [
        {
          method: 'POST',
          url: '/v1/functions',
          payload: 'code=x',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        },
        400,
        'INVALID_INPUT',
      ],
      [
        { method: 'POST', url: '/v1/functions', payload: 'hello', headers: { 'content-type': 'text/plain' } },
        400,
        'INVALID_INPUT',
      ],
      [
        {
          method: 'POST',
          url: '/v1/functions',
          payload: '',
          headers: { 'content-type': 'application/json' },
        },
        400,
        'INVALID_INPUT',
      ],
      [
        {
          method: 'POST',
          url: '/v1/functions',
          payload: JSON.stringify({ code: 'x'.repeat(3 * MAX_BLOCK_BYTES), manifest: '' }),
          headers: { 'content-type': 'application/json' },
        },
        413,
        'MESSAGE_TOO_LARGE',
      ],
      [{ method: 'GET', url: '/v1/conflicts?limit=0' }, 400, 'INVALID_INPUT'],
      [{ method: 'GET', url: '/v1/conflicts?color=red' }, 400, 'INVALID_INPUT'],
      [{ method: 'DELETE', url: '/v1/blocks' }, 404, 'NOT_FOUND'],
    ]
    for (const [req, status, code] of cases) {
      const res = await http.inject(req)
      assert.deepEqual(errorOf(res), { status, code }, `${req.method} ${req.url}`)
    }
  })

  it('cuts an error message that quotes a huge URL, so the reply keeps the error shape', async () => {
    // Found by the fuzzer (test/fuzz, target "http-raw"): a 5 000-character path came back quoted
    // whole in the message, longer than the 4 096 characters ErrorJSONSchema (and so every
    // client) reads, so a caller saw a malformed reply instead of INVALID_INPUT or NOT_FOUND.
    const long = 'a'.repeat(5000)
    for (const [url, status, code] of [
      [`/v1/blocks/${long}`, 400, 'INVALID_INPUT'],
      [`/v1/stores/${long}/keys/k`, 400, 'INVALID_INPUT'],
      [`/nope/${long}`, 404, 'NOT_FOUND'],
    ] as const) {
      const res = await http.inject({ method: 'GET', url })
      assert.deepEqual(errorOf(res), { status, code }, url.slice(0, 20))
      assert.ok(res.json().error.message.length <= 1024)
    }
  })

  it("answers a request Node's parser refuses (headers too large, not HTTP) in the error shape", async () => {
    // Found by the fuzzer (test/fuzz, target "http-routes"): a 40 000-character query string on a
    // real socket passed Node's 16 KiB header limit, and fastify answered 431 in its own shape
    // ({ error, message, statusCode }), which no client reads.
    const huge = await fetch(`${node.url}/v1/calls?limit=${'a'.repeat(40_000)}`)
    assert.equal(huge.headers.get('access-control-allow-origin'), '*')
    const hugeBody = await huge.json()
    assert.deepEqual(errorOf({ statusCode: huge.status, json: () => hugeBody }), {
      status: 413,
      code: 'MESSAGE_TOO_LARGE',
    })
    const { hostname, port } = new URL(node.url)
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) }, () =>
        socket.write('NOT HTTP AT ALL\r\n\r\n'),
      )
      let text = ''
      socket.on('data', (chunk) => {
        text += chunk
      })
      socket.on('end', () => resolve(text))
      socket.on('error', reject)
    })
    const [head, body] = raw.split('\r\n\r\n')
    assert.match(head, /^HTTP\/1\.1 400 /)
    assert.deepEqual(errorOf({ statusCode: 400, json: () => JSON.parse(body) }), {
      status: 400,
      code: 'INVALID_INPUT',
    })
    // the node keeps serving
    assert.equal((await fetch(`${node.url}/health`)).status, 200)
  })

  it('answers HEAD on an event stream with the head a GET gets, at once and without events', async () => {
    // Found by the fuzzer (test/fuzz, target "http-raw"): Node holds a HEAD reply's head back until
    // the reply ends, and the stream never ended, so HEAD /v1/calls never answered (and held one of
    // the feed's reader slots until the caller gave up).
    const head = await fetch(`${node.url}/v1/calls`, { method: 'HEAD', signal: AbortSignal.timeout(20_000) })
    assert.equal(head.status, 200)
    assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/)
    assert.equal(await head.text(), '')
    const bad = await fetch(`${node.url}/v1/calls?backlog=x`, { method: 'HEAD' })
    assert.equal(bad.status, 400)
  })

  it('allows CORS and serves Prometheus metrics', async () => {
    const pre = await http.inject({
      method: 'OPTIONS',
      url: '/v1/blocks',
      headers: { origin: 'http://example.test' },
    })
    assert.equal(pre.statusCode, 204)
    assert.equal(pre.headers['access-control-allow-origin'], '*')
    const metrics = await http.inject({ method: 'GET', url: '/metrics' })
    assert.equal(metrics.statusCode, 200)
    assert.match(metrics.body, /covenant_block_puts_total\{result="stored"\} \d+/)
    assert.match(metrics.body, /covenant_blocks_stored \d+/)
  })

  it('keeps the details of an error, on a route a service added', async () => {
    const res = await http.inject({ method: 'GET', url: probeRoute.path })
    assert.deepEqual(ErrorBodySchema.parse(res.json()), {
      error: { code: 'NO_EXECUTORS', message: 'none here', details: { excluded: ['all'] } },
    })
    assert.equal(res.statusCode, 503)
    const ok = await http.inject({ method: 'GET', url: `${probeRoute.path}?ok=yes` })
    assert.deepEqual(ok.json(), { ok: true })
    // its query is parsed by its schema like any other route's
    assert.deepEqual(errorOf(await http.inject({ method: 'GET', url: `${probeRoute.path}?ok=1` })), {
      status: 400,
      code: 'INVALID_INPUT',
    })
  })

  it('serves every route the API names, with CORS headers on answers and errors alike', async () => {
    for (const spec of API_ROUTES) {
      if (spec.reply === 'events') {
        // a stream does not end by itself: read its headers over a socket, then hang up
        const gone = new AbortController()
        const res = await fetch(`${node.url}${spec.path}`, {
          headers: { origin: 'http://example.test' },
          signal: gone.signal,
        })
        assert.equal(res.headers.get('access-control-allow-origin'), '*', spec.path)
        // the stream of a thing the path names (a job) is an error reply when it names none
        if (spec.path.includes('/:')) {
          const body = ErrorBodySchema.parse(await res.json())
          assert.deepEqual([res.status, body.error.code], [400, 'INVALID_INPUT'], spec.path)
        } else assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
        gone.abort()
        continue
      }
      const res = await http.inject({
        method: spec.method,
        url: routePath(spec, { cid: 'x', ns: 'x', key: 'x', payer: 'x', id: 'x' }),
        headers: { origin: 'http://example.test' },
      })
      assert.equal(res.headers['access-control-allow-origin'], '*', `${spec.method} ${spec.path}`)
      if (res.statusCode === 404)
        assert.notEqual(errorOf(res).code, 'NOT_FOUND', `${spec.method} ${spec.path}`)
    }
    const bad = await http.inject({ method: 'GET', url: '/v1/functions/%00%ff' })
    assert.equal(bad.headers['access-control-allow-origin'], '*')
  })
})
