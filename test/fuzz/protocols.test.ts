/**
 * Fuzzing every Covenant protocol of a real node over real libp2p streams, from a peer it knows:
 * requests (real messages changed in one to three places, arbitrary DAG-CBOR values, messages of a
 * known type with arbitrary fields) on every protocol the node answers — found on the node itself,
 * so a protocol added later is fuzzed too; the framing (lengths that lie, no prefix, overlong
 * varints, bodies that are not DAG-CBOR); and the replies the peer gives to the node's own
 * requests (hellos, block lookups, executions, datastore reads). Every reply is an envelope with a
 * typed error, every outcome on the node's side typed, and the node keeps serving.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { blockHoldersRoute, getBlockRoute, invokeRoute, storeInfoRoute } from '../../src/api/index.ts'
import { STORE_PROTOCOL } from '../../src/datastore/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  CONFLICT_PROTOCOL,
  createRequest,
  EXEC_PROTOCOL,
  outputHash,
  requestToJSON,
  signReceipt,
  signRefusal,
} from '../../src/exec/index.ts'
import { HELLO_PROTOCOL } from '../../src/peers/index.ts'
import { BLOCK_PROTOCOL } from '../../src/storage/index.ts'
import {
  cborishBytes,
  cborValue,
  edgeString,
  encoded,
  messageBytes,
  mutate,
  mutationOf,
} from './arbitraries.ts'
import { fuzz, runsOf } from './fuzz.ts'
import {
  assertEnvelope,
  assertHttpReply,
  assertServing,
  exchange,
  type FuzzNode,
  frame,
  helloOf,
  readTokenOf,
  startFuzzNode,
} from './node-fixture.ts'
import { makeSamples, type Samples, wire } from './samples.ts'

/** A fresh CID of `codec` nobody holds. */
const freshCid = (codec: number) =>
  fc
    .uint8Array({ minLength: 32, maxLength: 32 })
    .map((d) => CID.createV1(codec, Digest.create(0x12, d)).toString())

/** What the add function answers for 2 + 3, as the executor's output. */
const FIVE = { json: '5', logs: [], error: null }

describe('fuzz: protocols of a real node, over real streams', { timeout: 30 * 60_000 }, () => {
  let f: FuzzNode
  let s: Samples
  let entry: Uint8Array
  /** the reply the peer gives the node's next request on a protocol; null: it closes without one */
  const replies = new Map<string, Uint8Array | null>()

  before(async () => {
    s = await makeSamples()
    f = await startFuzzNode()
    // The peer answers what the node asks it: honestly (a hello; otherwise busy), unless a case
    // put a reply of its own for that protocol.
    for (const protocol of [HELLO_PROTOCOL, BLOCK_PROTOCOL, EXEC_PROTOCOL, CONFLICT_PROTOCOL, STORE_PROTOCOL])
      await f.peer.libp2p.handle(
        protocol,
        async (stream: Stream) => {
          const lp = lpStream(stream, { maxDataLength: 16 * 1024 * 1024 })
          try {
            await lp.read({ signal: AbortSignal.timeout(20_000) })
            const reply = replies.has(protocol) ? replies.get(protocol) : honest(protocol)
            if (reply != null && !stream.send(reply))
              await stream.onDrain({ signal: AbortSignal.timeout(20_000) })
            await stream.close({ signal: AbortSignal.timeout(20_000) })
          } catch (err) {
            stream.abort(err as Error)
          }
        },
        { maxInboundStreams: 64 },
      )
    // greet the node, so it holds the peer alive in its view
    const hello = await exchange(f, HELLO_PROTOCOL, frame(dagCbor.encode(helloOf(f))))
    assert.ok('reply' in hello)
    assert.equal(f.node.components.peers.get(f.peer.peerId)?.alive, true)
    const entries = await exchange(
      f,
      STORE_PROTOCOL,
      frame(dagCbor.encode({ type: 'entries', ns: f.ns, after: 0, limit: 10 })),
    )
    entry = (entries as { reply: { result: { entries: Uint8Array[] } } }).reply.result.entries[0]
    assert.ok(entry instanceof Uint8Array)
  })
  after(async () => {
    await f?.stop()
  })

  function honest(protocol: string): Uint8Array {
    return protocol === HELLO_PROTOCOL
      ? frame(dagCbor.encode({ result: helloOf(f) }))
      : frame(dagCbor.encode({ error: { code: 'PEER_BUSY', message: 'busy' } }))
  }

  /** Real requests of each protocol; the exec request is signed now (its time window is short). */
  function requestsOf(protocol: string): unknown[] {
    const ns = f.ns
    switch (protocol) {
      case HELLO_PROTOCOL:
        return [helloOf(f)]
      case BLOCK_PROTOCOL: {
        const block = new TextEncoder().encode('a block of the peer')
        return [
          { type: 'get', cid: f.fn },
          { type: 'has', cids: [f.fn, f.codeCid] },
          {
            type: 'put',
            cid: CID.createV1(0x55, Digest.create(0x12, new Uint8Array(32))).toString(),
            bytes: block,
            manifests: [],
          },
          { type: 'put', cid: f.fn, bytes: f.manifestBytes, manifests: [f.manifestBytes] },
        ]
      }
      case EXEC_PROTOCOL:
        return [
          {
            request: wire(
              createRequest(f.caller, { fn: f.fn, export: 'add', args: [2, 3], k: 1, q: 1 }).request,
            ),
          },
        ]
      case CONFLICT_PROTOCOL:
        return [{ conflict: s.conflict.value }]
      case STORE_PROTOCOL:
        return [
          { type: 'create', genesis: wire(f.descriptor) },
          { type: 'check', ns, entry },
          { type: 'append', ns, entry },
          { type: 'head', ns, at: 1 },
          { type: 'entries', ns, after: 0, limit: 10 },
          { type: 'cids', ns, after: 0, limit: 10 },
          { type: 'revocations', ns, after: '', limit: 10, reader: readTokenOf(f) },
          { type: 'nudge', ns },
          { type: 'info', ns },
          { type: 'get', ns, key: 'notes/a', at: 1, reader: readTokenOf(f) },
          { type: 'list', ns, prefix: 'notes/', after: '', limit: 10 },
          { type: 'history', ns, after: 0, limit: 10 },
          { type: 'keyHistory', ns, key: 'notes/a', limit: 10 },
          { type: 'commit', commit: s.commit.value },
        ]
      default:
        // a protocol added after this file: fuzzed with arbitrary values and typed messages only
        return []
    }
  }

  it('every protocol: changed real requests, arbitrary values, typed messages with arbitrary fields', async (t) => {
    const types = [
      'put',
      'get',
      'has',
      'commit',
      'create',
      'check',
      'append',
      'head',
      'entries',
      'cids',
      'info',
      'list',
      'history',
    ]
    t.diagnostic(`protocols: ${f.protocols.join(' ')}`)
    const input = fc.record({
      protocol: fc.constantFrom(...f.protocols),
      how: fc.constantFrom('mutated', 'mutated', 'mutated', 'value', 'typed'),
      pick: fc.nat(),
      mutations: fc.array(mutationOf(cborValue), { minLength: 1, maxLength: 3 }),
      value: cborValue,
      type: fc.oneof(fc.constantFrom(...types), edgeString),
    })
    const seen = new Map<string, number>()
    await fuzz(
      t,
      'protocol-requests',
      fc.asyncProperty(input, async ({ protocol, how, pick, mutations, value, type }) => {
        const samples = requestsOf(protocol)
        const msg =
          how === 'mutated' && samples.length > 0
            ? mutate(samples[pick % samples.length], mutations)
            : how === 'typed'
              ? mutate({ type, ns: f.ns, cid: f.fn }, mutations)
              : value
        const bytes = encoded(msg)
        fc.pre(bytes !== undefined)
        const framed = frame(bytes)
        const got = await exchange(f, protocol, framed)
        // a request within every protocol's limit is always answered
        if ('none' in got) assert.ok(framed.length > 64 * 1024, `${protocol}: no reply (${got.none})`)
        else assertEnvelope(got.reply, protocol)
        seen.set(protocol, (seen.get(protocol) ?? 0) + 1)
        const health = await f.node.components.http.inject({ method: 'GET', url: '/health' })
        assert.equal(health.statusCode, 200)
      }),
    )
    await assertServing(f)
    t.diagnostic(`cases per protocol: ${[...seen].map(([p, n]) => `${p} ${n}`).join(', ')}`)
    if (runsOf('protocol-requests') >= 10 * f.protocols.length)
      assert.deepEqual([...seen.keys()].sort(), f.protocols, 'every protocol fuzzed')
  })

  it('framing: no prefix, lying lengths, overlong varints, bodies that are not DAG-CBOR', async (t) => {
    const varintOf = (n: number) => {
      const out: number[] = []
      let v = n
      while (v >= 0x80) {
        out.push((v & 0x7f) | 0x80)
        v = Math.floor(v / 128)
      }
      out.push(v)
      return out
    }
    const frames = fc.oneof(
      messageBytes.map((b) => frame(b)),
      cborishBytes,
      fc
        .tuple(fc.integer({ min: 1, max: 2 ** 40 }), fc.uint8Array({ maxLength: 64 }))
        .map(([claimed, body]) => Uint8Array.from([...varintOf(claimed), ...body])),
      fc.uint8Array({ maxLength: 16 }).map((tail) => Uint8Array.from([...new Array(11).fill(0xff), ...tail])),
      fc.constant(new Uint8Array(0)),
      fc.tuple(messageBytes, messageBytes).map(([a, b]) => Uint8Array.from([...frame(a), ...frame(b)])),
      fc.constant(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x05])),
    )
    await fuzz(
      t,
      'protocol-framing',
      fc.asyncProperty(fc.constantFrom(...f.protocols), frames, async (protocol, bytes) => {
        const got = await exchange(f, protocol, bytes)
        // a stream the node had to reset (its buffer full) has no reply; any reply is typed
        if ('reply' in got) assertEnvelope(got.reply, protocol)
        const health = await f.node.components.http.inject({ method: 'GET', url: '/health' })
        assert.equal(health.statusCode, 200)
      }),
    )
    await assertServing(f)
  })

  it("the peer's replies to the node's own requests: hellos, block lookups, executions, datastore reads", async (t) => {
    const info = await exchange(f, STORE_PROTOCOL, frame(dagCbor.encode({ type: 'info', ns: f.ns })))
    const infoReply = (info as { reply: { result: unknown } }).reply.result
    const head = (infoReply as { head: unknown }).head
    const replySamples: Record<string, (request: string) => unknown[]> = {
      [HELLO_PROTOCOL]: () => [{ result: helloOf(f) }],
      [BLOCK_PROTOCOL]: () => [
        { result: { bytes: f.manifestBytes, manifests: [f.manifestBytes] } },
        { result: { has: [true, false, true] } },
        { result: { stored: true } },
      ],
      [EXEC_PROTOCOL]: (request) => [
        {
          result: wire({
            receipt: signReceipt(f.peerKey, {
              request,
              outputHash: outputHash(FIVE),
              fuel: 100,
              covenantVersion: 1,
              build: 'bd'.repeat(32),
            }),
            output: FIVE,
          }),
        },
        { result: wire({ refusal: signRefusal(f.peerKey, request, new CovenantError('NOT_SELECTED')) }) },
      ],
      [STORE_PROTOCOL]: () => [
        { result: infoReply },
        { result: { head, cidAt: null } },
        { result: { entries: [entry] } },
        { result: { ok: true } },
      ],
    }
    const triggers = ['hello', 'block', 'holders', 'invoke', 'store'] as const
    const protocolOf = {
      hello: HELLO_PROTOCOL,
      block: BLOCK_PROTOCOL,
      holders: BLOCK_PROTOCOL,
      invoke: EXEC_PROTOCOL,
      store: STORE_PROTOCOL,
    } as const
    const input = fc.record({
      trigger: fc.constantFrom(...triggers),
      how: fc.constantFrom('mutated', 'mutated', 'mutated', 'sample', 'envelope', 'bytes', 'silent'),
      pick: fc.nat(),
      mutations: fc.array(mutationOf(cborValue), { minLength: 1, maxLength: 3 }),
      envelope: fc.oneof(
        fc.record({
          error: fc.record({
            code: fc.oneof(edgeString, fc.constantFrom('INTERNAL', 'NO_QUORUM', 'PEER_BUSY')),
            message: fc.string(),
          }),
        }),
        fc.record({ result: cborValue }),
        cborValue,
      ),
      bytes: messageBytes,
      cid: freshCid(0x55),
      ns: freshCid(0x71),
    })
    await fuzz(
      t,
      'protocol-replies',
      fc.asyncProperty(input, async (c) => {
        const protocol = protocolOf[c.trigger]
        const { request, id } = createRequest(f.caller, { fn: f.fn, export: 'add', args: [2, 3], k: 2, q: 2 })
        const samples = replySamples[protocol](id)
        const reply =
          c.how === 'silent'
            ? null
            : c.how === 'bytes'
              ? frame(c.bytes)
              : encoded(
                  c.how === 'envelope'
                    ? c.envelope
                    : c.how === 'sample'
                      ? samples[c.pick % samples.length]
                      : mutate(samples[c.pick % samples.length], c.mutations),
                )
        fc.pre(reply !== undefined)
        replies.set(protocol, reply === null ? null : c.how === 'bytes' ? reply : frame(reply))
        try {
          const http = f.node.components.http
          switch (c.trigger) {
            case 'hello':
              assert.equal(typeof (await f.node.components.peers.hello(f.peer.peerId)), 'boolean')
              break
            case 'block':
              assertHttpReply(
                await http.inject({ method: 'GET', url: `/v1/blocks/${c.cid}` }),
                getBlockRoute,
                'block',
              )
              break
            case 'holders':
              assertHttpReply(
                await http.inject({ method: 'GET', url: `/v1/blocks/${c.cid}/holders` }),
                blockHoldersRoute,
                'holders',
              )
              break
            case 'invoke':
              assertHttpReply(
                await http.inject({
                  method: 'POST',
                  url: '/v1/invoke',
                  payload: { request: requestToJSON(request) },
                }),
                invokeRoute,
                'invoke',
              )
              break
            case 'store':
              assertHttpReply(
                await http.inject({ method: 'GET', url: `/v1/stores/${c.ns}` }),
                storeInfoRoute,
                'store',
              )
              break
          }
        } finally {
          replies.delete(protocol)
        }
        // the peer greets again, so a hello it spoiled does not leave it dead for the next case
        const hello = await exchange(f, HELLO_PROTOCOL, frame(dagCbor.encode(helloOf(f))))
        assert.ok('reply' in hello)
      }),
    )
    await assertServing(f)
  })
})
