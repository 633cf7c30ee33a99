/**
 * `POST /v1/invoke` on a single in-process node, through inject(): every kind of bad input gets
 * its typed error, the node keeps serving, and a good call still works afterwards.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import type { FastifyInstance } from 'fastify'
import { cidForBytes, createManifest } from '../../../src/content/index.ts'
import { DEVNET_COVENANT } from '../../../src/devnet/index.ts'
import {
  createRequest,
  type ExecRequestInit,
  mintTicket,
  requestToJSON,
  type SignedRequest,
} from '../../../src/exec/index.ts'
import { generateKey, keyId, type PrivateKey, signValue } from '../../../src/keys/index.ts'
import { type CovenantNode, createNode } from '../../../src/node/index.ts'

const SOURCE = 'export function add(a, b) { return a + b }'

describe('POST /v1/invoke with bad input', () => {
  let dir: string
  let node: CovenantNode
  let http: FastifyInstance
  let caller: PrivateKey
  let fn: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-invoke-input-'))
    node = await createNode({
      dataDir: dir,
      covenant: DEVNET_COVENANT,
      defaultMetrics: false,
      logLevel: 'silent',
    })
    http = node.components.http
    caller = await generateKey()
    const code = new TextEncoder().encode(SOURCE)
    const { bytes } = createManifest(caller, { code: cidForBytes(code), size: code.length, exports: ['add'] })
    const res = await http.inject({
      method: 'POST',
      url: '/v1/functions',
      payload: { code: SOURCE, manifest: Buffer.from(bytes).toString('base64') },
    })
    assert.equal(res.statusCode, 200, res.body)
    fn = res.json().cid
  })
  after(async () => {
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const invoke = (payload: unknown) =>
    http.inject({ method: 'POST', url: '/v1/invoke', payload: payload as object })
  const signed = (init: Partial<ExecRequestInit>, now?: number) =>
    requestToJSON(
      createRequest(caller, { fn, export: 'add', args: [2, 3], k: 1, q: 1, ...init }, now).request,
    )
  /** A good request changed after signing, and signed again by the caller. */
  const resigned = (change: Record<string, unknown>) => {
    const { signature: _, ...body } = createRequest(caller, { fn, export: 'add', k: 1, q: 1 }).request
    const changed = { ...body, ...change }
    return requestToJSON({ ...changed, signature: signValue(caller, changed) } as SignedRequest)
  }
  const errorOf = (res: { statusCode: number; json(): unknown }) => {
    const { error } = res.json() as { error: { code: string; message: string } }
    return { status: res.statusCode, code: error.code }
  }

  it('answers a good call with a value and a certificate', async () => {
    const res = await invoke({ request: signed({}) })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().value, 5)
    assert.equal(res.json().certificate.receipts.length, 1)
  })

  const cases: Array<[string, () => unknown, string, number]> = [
    ['a body that is not { request }', () => ({ req: 1 }), 'INVALID_INPUT', 400],
    ['a request that is not an object', () => ({ request: 'hello' }), 'INVALID_REQUEST', 400],
    [
      'a request missing its signature',
      () => ({ request: { ...signed({}), signature: undefined } }),
      'INVALID_REQUEST',
      400,
    ],
    [
      'a request whose arguments were changed after signing',
      () => ({ request: { ...signed({}), args: [2, 4] } }),
      'INVALID_SIGNATURE',
      401,
    ],
    [
      'a request signed by someone other than its caller',
      () => ({ request: signedByOther }),
      'INVALID_SIGNATURE',
      401,
    ],
    [
      'a request whose caller is not the key its ticket was minted for',
      () => ({ request: { ...signed({}), caller: keyId(otherKey) } }),
      'INVALID_REQUEST',
      400,
    ],
    [
      'a caller named in another spelling of its key',
      () => ({ request: { ...signed({}), caller: peerIdFromString(keyId(caller)).toCID().toString() } }),
      'INVALID_KEY_ID',
      400,
    ],
    ['a limit off its tiers', () => ({ request: resigned({ memoryMiB: 65 }) }), 'INVALID_REQUEST', 400],
    [
      'a request from 1970 (timestamp 0)',
      () => ({ request: resigned({ timestamp: 0, ticket: mintTicket(keyId(caller), 0) }) }),
      'INVALID_REQUEST',
      400,
    ],
    [
      'trust options out of range',
      () => ({ request: signed({}), trust: { minEligibleFraction: 3 } }),
      'INVALID_INPUT',
      400,
    ],
    [
      'a request past its deadline',
      () => ({ request: signed({ deadline: Date.now() - 120_000, timestamp: Date.now() - 180_000 }) }),
      'DEADLINE_EXCEEDED',
      408,
    ],
    [
      'a function nobody stored',
      () => ({ request: signed({ fn: cidForBytes(new Uint8Array([1]), 'dag-cbor').toString() }) }),
      'BLOCK_NOT_FOUND',
      404,
    ],
    [
      'an export the function does not have',
      () => ({ request: signed({ export: 'sub' }) }),
      'NO_SUCH_EXPORT',
      404,
    ],
    [
      'a quorum larger than the willing nodes',
      () => ({ request: signed({ k: 3, q: 2 }) }),
      'NO_EXECUTORS',
      503,
    ],
    ['limits above the covenant', () => ({ request: signed({ memoryMiB: 128 }) }), 'NO_EXECUTORS', 503],
  ]
  let signedByOther: unknown
  let otherKey: PrivateKey
  before(async () => {
    otherKey = await generateKey()
    const { signature: _, ...body } = createRequest(caller, { fn, export: 'add', k: 1, q: 1 }).request
    signedByOther = requestToJSON({ ...body, signature: signValue(otherKey, body) })
  })

  for (const [what, payload, code, status] of cases) {
    it(`refuses ${what} with ${code}, and keeps serving`, async () => {
      assert.deepEqual(errorOf(await invoke(payload())), { status, code })
      const ok = await invoke({ request: signed({}) })
      assert.equal(ok.statusCode, 200, ok.body)
    })
  }

  it('says why no executor would take a call (NO_EXECUTORS details)', async () => {
    const res = await invoke({ request: signed({ k: 3, q: 2 }) })
    const { error } = res.json() as { error: { code: string; details?: { excluded?: unknown[] } } }
    assert.equal(error.code, 'NO_EXECUTORS')
    assert.ok(Array.isArray(error.details?.excluded))
  })

  it('refuses a body larger than its limit with a typed error', async () => {
    const huge = JSON.stringify({ request: { ...signed({}), args: ['x'.repeat(5 * 1024 * 1024)] } })
    const res = await http.inject({
      method: 'POST',
      url: '/v1/invoke',
      payload: huge,
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(res.statusCode, 413)
    assert.deepEqual(errorOf(res), { status: 413, code: 'MESSAGE_TOO_LARGE' })
  })
})
