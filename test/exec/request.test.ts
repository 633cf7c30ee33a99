import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { cidForBytes } from '../../src/content/index.ts'
import { mayExecute, parseCovenantYaml } from '../../src/covenant/index.ts'
import {
  checkRequest,
  createRequest,
  DEFAULT_QUORUM,
  DEFAULT_REPLICAS,
  LIMIT_TIERS,
  MAX_CLOCK_SKEW_MS,
  MAX_DEADLINE_AHEAD_MS,
  requestLimits,
  type SignedRequest,
  verifyRequest,
} from '../../src/exec/request.ts'
import { epochOf, mintTicket, TICKET_BITS, ticketHash } from '../../src/exec/ticket.ts'
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

  it('accepts only limits on their tiers, each one the sandbox can enforce', async () => {
    const caller = await generateKey()
    const MiB = 1024 * 1024
    for (const [name, tiers] of Object.entries(LIMIT_TIERS))
      for (const value of tiers) {
        createRequest(caller, { fn, export: 'f', [name]: value })
        const sandboxed = limitOverridesSchema.safeParse(
          name === 'memoryMiB'
            ? { memoryBytes: value * MiB }
            : name === 'outputMiB'
              ? { outputBytes: value * MiB }
              : { [name]: value },
        ).success
        assert.ok(sandboxed, `the sandbox cannot enforce the ${name} tier ${value}`)
      }
    // Just off a tier is refused, however small the step: no limit carves out "just above the default".
    for (const limits of [
      { memoryMiB: 65 },
      { memoryMiB: 63 },
      { fuel: 2001 },
      { fuel: 1 },
      { timeoutMs: 5001 },
      { timeoutMs: 10 },
      { memoryMiB: 2048 },
      { outputMiB: 2 },
      { outputMiB: 128 },
    ])
      assert.throws(() => createRequest(caller, { fn, export: 'f', ...limits }), {
        code: 'INVALID_REQUEST',
        message: /must be one of the tiers/,
      })
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
    assert.equal(request.v, 3)
    assert.equal(request.ticket.epoch, epochOf(now))
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
      { ticket: mintTicket(keyId(key), request.ticket.epoch, request.ticket.nonce + 1) },
      { export: 'sub' },
      { fuel: 20_000 },
      { k: 5 },
      { q: 1 },
      { deadline: request.deadline + 1 },
      { nonce: 'another nonce' },
      { timestamp: request.timestamp - 1 },
    ]
    for (const change of changes) {
      assert.throws(
        () => verifyRequest({ ...request, ...change }),
        { code: 'INVALID_SIGNATURE' },
        JSON.stringify(change),
      )
    }
    // another caller: its ticket's hash names the caller, so it fails before the signature does
    assert.throws(() => verifyRequest({ ...request, caller: keyId(other) }), { code: 'INVALID_REQUEST' })
    const flipped = new Uint8Array(request.signature)
    flipped[10] ^= 1
    assert.throws(() => verifyRequest({ ...request, signature: flipped }), { code: 'INVALID_SIGNATURE' })
    // Signed correctly, but by a key other than the caller it names.
    const { signature: _, ...body } = request
    assert.throws(() => verifyRequest({ ...body, signature: signValue(other, body) }), {
      code: 'INVALID_SIGNATURE',
    })
  })

  it('carries a ticket: enough work, for the caller, of its epoch or the one before', () => {
    const now = Date.now()
    const { request } = createRequest(key, { fn, export: 'f' }, now)
    const hash = ticketHash(keyId(key), request.ticket)
    assert.equal(hash[0], 0)
    assert.equal(hash[1], 0)
    assert.ok(hash[2] < 1 << (24 - TICKET_BITS))
    // the same ticket serves every request of this key this hour: only the ticket moves selection
    const again = createRequest(key, { fn, export: 'g', args: [1] }, now)
    assert.deepEqual(again.request.ticket, request.ticket)
    const bad = (ticket: unknown) =>
      assert.throws(() => verifyRequest(resign(key, request, { ticket }), now), { code: 'INVALID_REQUEST' })
    // another caller's ticket (its hash names its caller), a ticket short of work, a stale one
    bad(mintTicket(keyId(other), request.ticket.epoch))
    let lazy = request.ticket.nonce + 1
    while (ticketHash(keyId(key), { epoch: request.ticket.epoch, nonce: lazy })[0] === 0) lazy++
    bad({ epoch: request.ticket.epoch, nonce: lazy })
    bad(mintTicket(keyId(key), epochOf(now) - 2))
    bad(mintTicket(keyId(key), epochOf(now) + 1))
    // minted in the hour before, it still serves
    const previous = mintTicket(keyId(key), epochOf(now) - 1)
    assert.deepEqual(verifyRequest(resign(key, request, { ticket: previous }), now).request.ticket, previous)
  })

  it('refuses an old timestamp (`timestamp: 0`) and a replayable window, on both sides of the clock', () => {
    const now = Date.now()
    // The attack: a request the sandbox's clock would read as 1970, with a live deadline.
    const zero = createRequest(key, { fn, export: 'f', timestamp: 0, deadline: 30_000 }, now).request
    assert.throws(() => verifyRequest(resign(key, zero, { deadline: now + 30_000 }), now), {
      code: 'INVALID_REQUEST',
      message: /more than .* after the timestamp/,
    })
    assert.throws(() => verifyRequest(zero, now), { code: 'DEADLINE_EXCEEDED' })
    // checkRequest (no clock) refuses a window longer than the longest deadline too
    assert.throws(() => checkRequest(resign(key, zero, { deadline: MAX_DEADLINE_AHEAD_MS + 1 })), {
      code: 'INVALID_REQUEST',
    })
    // old with a short window: its deadline is gone, so nobody runs it
    const stale = now - MAX_DEADLINE_AHEAD_MS - MAX_CLOCK_SKEW_MS - 1000
    const old = createRequest(key, { fn, export: 'f', timestamp: stale }, now)
    assert.throws(() => verifyRequest(old.request, now), { code: 'DEADLINE_EXCEEDED' })
    const ahead = createRequest(key, { fn, export: 'f', timestamp: now + MAX_CLOCK_SKEW_MS + 1000 }, now)
    assert.throws(() => verifyRequest(ahead.request, now), { code: 'INVALID_REQUEST', message: /future/ })
    // within the skew either way: accepted
    const early = createRequest(key, { fn, export: 'f', timestamp: now + MAX_CLOCK_SKEW_MS - 1000 }, now)
    assert.equal(verifyRequest(early.request, now).id, early.id)
  })

  it('checks a request again in full unless its exact bytes passed before: a changed copy is refused', () => {
    const now = Date.now()
    const { request, id } = createRequest(key, { fn, export: 'f', args: ['a'] }, now)
    assert.equal(checkRequest(request).id, id)
    assert.equal(checkRequest(structuredClone(request)).id, id, 'the same bytes pass again')
    // the signature that passed, over other fields: refused, each time
    for (const change of [{ args: ['b'] }, { export: 'g' }, { deadline: request.deadline - 1 }])
      for (const _ of [1, 2])
        assert.throws(() => checkRequest({ ...request, ...change }), { code: 'INVALID_SIGNATURE' })
    // the very object that passed, changed afterwards: judged as it is now
    const mine = structuredClone(request)
    assert.equal(checkRequest(mine).id, id)
    mine.args = ['b']
    assert.throws(() => checkRequest(mine), { code: 'INVALID_SIGNATURE' })
    mine.args = ['a']
    assert.equal(checkRequest(mine).id, id)
    // a refusal is never kept as a pass: a forged signature is refused every time
    const forged = { ...request, signature: request.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) }
    for (const _ of [1, 2]) assert.throws(() => checkRequest(forged), { code: 'INVALID_SIGNATURE' })
    // the time is checked at every call, whatever passed before
    assert.throws(() => verifyRequest(request, request.deadline + 1), { code: 'DEADLINE_EXCEEDED' })
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
    bad({ v: 1 }, 'INVALID_REQUEST')
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
    // a caller named in another spelling of its key is INVALID_KEY_ID
    const other = peerIdFromString(request.caller).toCID().toString()
    assert.throws(() => verifyRequest({ ...request, caller: other }, now), { code: 'INVALID_KEY_ID' })
    // checkRequest ignores the clock: certificates stay checkable after the deadline.
    const late = request.deadline + 1
    assert.throws(() => verifyRequest(request, late), { code: 'DEADLINE_EXCEEDED' })
    assert.equal(checkRequest(request).id, verifyRequest(request, now).id)
  })
})
