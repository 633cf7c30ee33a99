import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { cidForBytes } from '../../src/content/index.ts'
import { mayExecute, parseCovenantYaml } from '../../src/covenant/index.ts'
import {
  checkRequest,
  createRequest,
  DEFAULT_QUORUM,
  DEFAULT_REPLICAS,
  MAX_DEADLINE_AHEAD_MS,
  requestLimits,
  type SignedRequest,
  verifyRequest,
} from '../../src/exec/request.ts'
import { generateKey, keyId, type PrivateKey, signValue } from '../../src/keys/index.ts'
import { limitOverridesSchema } from '../../src/sandbox/index.ts'

const fn = cidForBytes(new TextEncoder().encode('a manifest'), 'dag-cbor').toString()

function resign(key: PrivateKey, request: SignedRequest, change: Record<string, unknown>): unknown {
  const { signature: _, ...body } = request
  const changed = { ...body, ...change }
  return { ...changed, signature: signValue(key, changed) }
}

describe('requests', () => {
  it('asks by default for what a default executing covenant accepts, and no more', async () => {
    const caller = await generateKey()
    const { request } = createRequest(caller, { fn, export: 'f' })
    const covenant = parseCovenantYaml('execute:\n  enabled: true\n')
    const query = { tags: [], publisher: keyId(caller), ...requestLimits(request) }
    assert.deepEqual(mayExecute(covenant, query), { ok: true })
    // a default covenant allows only the default memory and wall clock: one more is refused
    assert.equal(mayExecute(covenant, { ...query, memoryMiB: query.memoryMiB + 1 }).ok, false)
    assert.equal(mayExecute(covenant, { ...query, timeoutMs: query.timeoutMs + 1 }).ok, false)
  })

  it('accepts exactly the limits the sandbox can enforce', async () => {
    const caller = await generateKey()
    const MiB = 1024 * 1024
    const fits = (limits: { fuel?: number; memoryMiB?: number; timeoutMs?: number }) => {
      let asked = true
      try {
        createRequest(caller, { fn, export: 'f', ...limits })
      } catch (err) {
        assert.equal((err as { code: string }).code, 'INVALID_REQUEST')
        asked = false
      }
      const sandboxed = limitOverridesSchema.safeParse({
        fuel: limits.fuel,
        memoryBytes: limits.memoryMiB === undefined ? undefined : limits.memoryMiB * MiB,
        timeoutMs: limits.timeoutMs,
      }).success
      assert.equal(asked, sandboxed, `a request and the sandbox disagree on ${JSON.stringify(limits)}`)
      return asked
    }
    for (const [limits, ok] of [
      [{ fuel: 1 }, true],
      [{ fuel: 0 }, false],
      [{ fuel: 1_000_000_000 }, true],
      [{ fuel: 1_000_000_001 }, false],
      [{ memoryMiB: 16 }, true],
      [{ memoryMiB: 15 }, false],
      [{ memoryMiB: 1024 }, true],
      [{ memoryMiB: 1025 }, false],
      [{ timeoutMs: 10 }, true],
      [{ timeoutMs: 9 }, false],
      [{ timeoutMs: 600_000 }, true],
      [{ timeoutMs: 600_001 }, false],
    ] as const)
      assert.equal(fits(limits), ok, JSON.stringify(limits))
  })

  let key: PrivateKey
  let other: PrivateKey
  before(async () => {
    key = await generateKey()
    other = await generateKey()
  })

  it('is signed by the caller, filled with defaults, and its id is the CID of its DAG-CBOR', () => {
    const now = Date.now()
    const { request, id } = createRequest(key, { fn, export: 'add', args: [1, 2.5, { a: [null, 'x'] }] }, now)
    assert.equal(request.caller, keyId(key))
    assert.equal(request.k, DEFAULT_REPLICAS)
    assert.equal(request.q, DEFAULT_QUORUM)
    assert.equal(request.timestamp, now)
    assert.ok(request.deadline > now)
    assert.ok(request.nonce.length >= 8)
    // The id, recomputed from the definition with an independent hash implementation.
    const digest = createHash('sha256').update(dagCbor.encode(request)).digest()
    const cid = CID.parse(id)
    assert.equal(cid.version, 1)
    assert.equal(cid.code, 0x71)
    assert.equal(cid.multihash.code, 0x12)
    assert.deepEqual(Buffer.from(cid.multihash.digest), digest)
    assert.deepEqual(verifyRequest(request, now), { request, id })
    // Same body, new nonce: a different id, so two identical calls are two requests.
    const again = createRequest(
      key,
      { fn, export: 'add', args: [1, 2.5, { a: [null, 'x'] }], timestamp: now },
      now,
    )
    assert.notEqual(again.id, id)
  })

  it('refuses any change after signing, and a signature by someone else', () => {
    const { request } = createRequest(key, { fn, export: 'add', args: [1] })
    const changes: Array<Partial<SignedRequest>> = [
      { args: [2] },
      { export: 'sub' },
      { fuel: request.fuel + 1 },
      { k: 5 },
      { q: 1 },
      { deadline: request.deadline + 1 },
      { nonce: 'another nonce' },
      { timestamp: request.timestamp - 1 },
      { caller: keyId(other) },
    ]
    for (const change of changes) {
      assert.throws(
        () => verifyRequest({ ...request, ...change }),
        { code: 'INVALID_SIGNATURE' },
        JSON.stringify(change),
      )
    }
    const flipped = new Uint8Array(request.signature)
    flipped[10] ^= 1
    assert.throws(() => verifyRequest({ ...request, signature: flipped }), { code: 'INVALID_SIGNATURE' })
    // Signed correctly, but by a key other than the caller it names.
    const { signature: _, ...body } = request
    assert.throws(() => verifyRequest({ ...body, signature: signValue(other, body) }), {
      code: 'INVALID_SIGNATURE',
    })
  })

  it('checks bounds: q ≤ k ≤ 16, q ≥ 1, deadlines, timestamps, argument size and JSON-ness', () => {
    const now = Date.now()
    const { request } = createRequest(key, { fn, export: 'f' }, now)
    const bad = (change: Record<string, unknown>, code: string) =>
      assert.throws(
        () => verifyRequest(resign(key, request, change), now),
        { code },
        JSON.stringify(change).slice(0, 80),
      )
    bad({ q: 4, k: 3 }, 'INVALID_REQUEST')
    bad({ k: 17, q: 2 }, 'INVALID_REQUEST')
    bad({ q: 0 }, 'INVALID_REQUEST')
    bad({ timestamp: now - 10_000, deadline: now - 1 }, 'DEADLINE_EXCEEDED')
    bad({ deadline: now + MAX_DEADLINE_AHEAD_MS + 1000 }, 'INVALID_REQUEST')
    bad({ timestamp: now + 10 * 60_000, deadline: now + 11 * 60_000 }, 'INVALID_REQUEST')
    bad({ deadline: request.timestamp }, 'INVALID_REQUEST')
    bad({ args: ['x'.repeat(1024 * 1024 + 1)] }, 'INVALID_REQUEST')
    bad({ fn: 'not a cid' }, 'INVALID_REQUEST')
    bad({ fn: cidForBytes(new Uint8Array(1), 'raw').toString() }, 'INVALID_REQUEST')
    bad({ export: 'no-dashes' }, 'INVALID_REQUEST')
    bad({ fuel: 0 }, 'INVALID_REQUEST')
    bad({ fuel: 1.5 }, 'INVALID_REQUEST')
    bad({ extra: true }, 'INVALID_REQUEST')
    // Not JSON: bytes, NaN cannot even be signed; createRequest refuses them up front.
    assert.throws(() => createRequest(key, { fn, export: 'f', args: [new Uint8Array(2)] }), {
      code: 'INVALID_REQUEST',
    })
    assert.throws(() => createRequest(key, { fn, export: 'f', args: [Number.NaN] }), {
      code: 'INVALID_REQUEST',
    })
    assert.throws(() => createRequest(key, { fn, export: 'f', args: [{ a: undefined }] }), {
      code: 'INVALID_REQUEST',
    })
    assert.throws(() => createRequest(key, { fn, export: 'f', k: 2, q: 3 }), { code: 'INVALID_REQUEST' })
    assert.throws(() => verifyRequest('nope'), { code: 'INVALID_REQUEST' })
    // checkRequest ignores the clock: certificates stay checkable after the deadline.
    const late = request.deadline + 1
    assert.throws(() => verifyRequest(request, late), { code: 'DEADLINE_EXCEEDED' })
    assert.equal(checkRequest(request).id, verifyRequest(request, now).id)
  })
})
