/** The HTTP API of a single in-process node, through fastify's inject(): shapes of answers and errors. */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { cidForBytes, createManifest, MAX_BLOCK_BYTES } from '../../src/content/index.ts'
import { CovenantConfigSchema, DEFAULT_COVENANT, signedCovenantFromJSON } from '../../src/covenant/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { type CovenantNode, createNode } from '../../src/node/index.ts'

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
    node = await createNode({ dataDir: dir, covenant: config, defaultMetrics: false, logLevel: 'silent' })
    http = node.components.http
  })
  after(async () => {
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const errorOf = (res: { statusCode: number; json(): unknown }) => {
    const body = res.json() as { error: { code: string; message: string } }
    assert.deepEqual(Object.keys(body), ['error'])
    assert.equal(typeof body.error.message, 'string')
    return { status: res.statusCode, code: body.error.code }
  }

  it('GET /health and /v1/node describe the node with a verifiable covenant', async () => {
    const health = await http.inject({ method: 'GET', url: '/health' })
    assert.equal(health.statusCode, 200)
    assert.equal(health.json().peerId, node.peerId)
    const info = (await http.inject({ method: 'GET', url: '/v1/node' })).json()
    assert.equal(info.peerId, node.peerId)
    assert.ok(info.multiaddrs[0].startsWith('/ip4/127.0.0.1/tcp/'))
    const sc = signedCovenantFromJSON(info.covenant)
    assert.equal(sc.peer, node.peerId)
    assert.deepEqual(sc.config.store.refusedTags, ['nsfw'])
    const peers = (await http.inject({ method: 'GET', url: '/v1/peers' })).json()
    assert.equal(peers.peers[0].self, true)
  })

  it('stores and serves a block, with its tags; a lone node says how many holders it got', async () => {
    const bytes = new TextEncoder().encode('hello block')
    const put = await http.inject({
      method: 'PUT',
      url: '/v1/blocks?tags=greeting,demo',
      payload: Buffer.from(bytes),
    })
    assert.equal(put.statusCode, 200)
    const body = put.json()
    assert.equal(body.cid, cidForBytes(bytes).toString())
    assert.deepEqual(body.holders, [node.peerId])
    assert.equal(body.wanted, 3)
    const get = await http.inject({ method: 'GET', url: `/v1/blocks/${body.cid}` })
    assert.equal(get.statusCode, 200)
    assert.equal(get.headers['x-covenant-tags'], 'demo,greeting')
    assert.deepEqual(new Uint8Array(get.rawPayload), bytes)
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
    const fn = (await http.inject({ method: 'GET', url: `/v1/functions/${m.cid}` })).json()
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
      [{ method: 'PUT', url: '/v1/blocks?tags=nsfw', payload: 'x' }, 403, 'COVENANT_REFUSED'],
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
    ]
    for (const [req, status, code] of cases) {
      const res = await http.inject(req)
      assert.deepEqual(errorOf(res), { status, code }, `${req.method} ${req.url}`)
    }
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
})
