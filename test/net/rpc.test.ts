import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { CovenantError } from '../../src/errors/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { clearableTimeout, createNet, type Net, parsePeerAddr } from '../../src/net/index.ts'
import { waitFor } from '../fixtures/network.ts'

const ECHO = '/covenant-test/echo/1.0.0'
const LIAR = '/covenant-test/liar/1.0.0'
const ENDLESS = '/covenant-test/endless/1.0.0'

/** Sends raw bytes on a fresh stream and decodes the reply envelope. */
async function rawRequest(from: Net, to: Net, bytes: Uint8Array, prefixed = true): Promise<unknown> {
  const stream = await from.libp2p.dialProtocol(multiaddr(to.multiaddrs()[0]), ECHO)
  const lp = lpStream(stream, { maxDataLength: 1 << 20 })
  if (prefixed) await lp.write(bytes)
  else stream.send(bytes)
  const reply = await lp.read({ signal: AbortSignal.timeout(5000) })
  return dagCbor.decode(reply.subarray())
}

describe('net rpc over real libp2p nodes', () => {
  let a: Net
  let b: Net
  let calls = 0

  before(async () => {
    a = createNet({ privateKey: await generateKey() })
    b = createNet({ privateKey: await generateKey() })
    await a.start()
    await b.start()
    await b.handle(ECHO, {
      schema: z.object({ text: z.string().max(100) }).strict(),
      maxBytes: 1024,
      handler: async (msg, from) => {
        calls++
        if (msg.text === 'refuse') throw new CovenantError('COVENANT_REFUSED', 'no thanks')
        if (msg.text === 'crash') throw new Error('secret internal detail')
        return { text: msg.text, from }
      },
    })
    await a.addAddresses(b.peerId, b.multiaddrs())
  })
  after(async () => {
    await a.stop()
    await b.stop()
  })

  it('answers a valid request with the handler result and the caller id', async () => {
    const reply = await a.request(b.peerId, ECHO, { text: 'hello' })
    assert.deepEqual(reply, { text: 'hello', from: a.peerId })
  })

  it('validates the reply with a schema when given', async () => {
    await assert.rejects(
      a.request(b.peerId, ECHO, { text: 'x' }, { schema: z.object({ other: z.number() }) }),
      (e: CovenantError) => e.code === 'PROTOCOL_ERROR',
    )
  })

  it('turns a handler error into a typed error on the caller side', async () => {
    await assert.rejects(a.request(b.peerId, ECHO, { text: 'refuse' }), (e: CovenantError) => {
      assert.equal(e.code, 'COVENANT_REFUSED')
      assert.equal(e.message, 'no thanks')
      return true
    })
    // the peer answers INTERNAL without its handler's words…
    assert.deepEqual(await rawRequest(a, b, dagCbor.encode({ text: 'crash' })), {
      error: { code: 'INTERNAL', message: 'internal error' },
    })
    // …and to the caller that is the peer failing, not a bug of its own
    await assert.rejects(a.request(b.peerId, ECHO, { text: 'crash' }), (e: CovenantError) => {
      assert.equal(e.code, 'PEER_UNREACHABLE')
      assert.match(e.message, /an internal error there/)
      assert.doesNotMatch(e.message, /secret/)
      return true
    })
  })

  it("never relays a peer's INTERNAL as its own (a node would answer its callers 500 for another's bug)", async () => {
    // Found by the fuzzer (test/fuzz, target "protocol-replies"): a holder answering a datastore
    // read with { error: { code: 'INTERNAL' } } made the node answer its HTTP caller 500 INTERNAL,
    // whose hint sends the operator to their own log.
    const liar = createNet({ privateKey: await generateKey() })
    await liar.start()
    try {
      await liar.libp2p.handle(LIAR, async (stream) => {
        const lp = lpStream(stream)
        await lp.read()
        await lp.write(dagCbor.encode({ error: { code: 'INTERNAL', message: 'blame the caller' } }))
        await stream.close()
      })
      await a.addAddresses(liar.peerId, liar.multiaddrs())
      await assert.rejects(a.request(liar.peerId, LIAR, {}), (e: CovenantError) => {
        assert.equal(e.code, 'PEER_UNREACHABLE')
        assert.doesNotMatch(e.message, /blame/)
        return true
      })
    } finally {
      await liar.stop()
    }
  })

  it('refuses a request that fails the schema', async () => {
    await assert.rejects(
      a.request(b.peerId, ECHO, { text: 42 }),
      (e: CovenantError) => e.code === 'PROTOCOL_ERROR' && /text/.test(e.message),
    )
    await assert.rejects(
      a.request(b.peerId, ECHO, { text: 'a', extra: true }),
      (e: CovenantError) => e.code === 'PROTOCOL_ERROR',
    )
  })

  it('refuses bytes that are not DAG-CBOR with PROTOCOL_ERROR', async () => {
    const reply = await rawRequest(a, b, new Uint8Array([0xff, 0xfe, 0x00, 0x13]))
    assert.deepEqual(reply, { error: { code: 'PROTOCOL_ERROR', message: 'the request is not DAG-CBOR' } })
  })

  it('refuses an oversized length prefix before reading the body', async () => {
    // varint of 10 MiB, then nothing: the node must answer without waiting for the body
    const prefix = new Uint8Array([0x80, 0x80, 0x80, 0x05])
    const reply = (await rawRequest(a, b, prefix, false)) as { error: { code: string } }
    assert.equal(reply.error.code, 'MESSAGE_TOO_LARGE')
    const big = dagCbor.encode({ text: 'x'.repeat(2000) })
    const reply2 = (await rawRequest(a, b, big)) as { error: { code: string } }
    assert.equal(reply2.error.code, 'MESSAGE_TOO_LARGE')
  })

  it('refuses a length prefix that never ends as soon as it is longer than any allowed length', async () => {
    // Found by the fuzzer (test/fuzz, target "protocol-framing"): lpStream decoded every
    // continuation byte (0x80–0xff) of an unending prefix in turn, on microtasks that let no timer
    // run, so 1.6 MB of them held a node's event loop for ten seconds, and the peer got
    // PROTOCOL_ERROR at the end. Now the third byte of a prefix for at most 1024 bytes ends it.
    const reply = (await rawRequest(a, b, new Uint8Array(60_000).fill(0x81), false)) as {
      error: { code: string }
    }
    assert.equal(reply.error.code, 'MESSAGE_TOO_LARGE')
    // a reply whose prefix never ends is refused by the caller alike
    await b.libp2p.handle(ENDLESS, async (stream) => {
      await lpStream(stream).read()
      stream.send(new Uint8Array(30_000).fill(0xff))
      await stream.close()
    })
    await assert.rejects(a.request(b.peerId, ENDLESS, {}), typed('MESSAGE_TOO_LARGE'))
    await b.libp2p.unhandle(ENDLESS)
  })

  it('keeps serving after bad requests', async () => {
    const before = calls
    const reply = await a.request(b.peerId, ECHO, { text: 'still here' })
    assert.deepEqual(reply, { text: 'still here', from: a.peerId })
    assert.equal(calls, before + 1)
  })

  it('reports an unreachable peer as PEER_UNREACHABLE', async () => {
    const ghost = createNet({ privateKey: await generateKey() })
    await assert.rejects(
      a.request(ghost.peerId, ECHO, { text: 'x' }, { timeoutMs: 2000 }),
      (e: CovenantError) => e.code === 'PEER_UNREACHABLE' || e.code === 'PEER_TIMEOUT',
    )
  })
})

/** Rejects with a CovenantError of `code`. */
function typed(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof CovenantError, `expected a CovenantError, got ${e}`)
    assert.equal(e.code, code, e.message)
    return true
  }
}

describe('net rpc against careless and hostile peers', () => {
  const RAW = '/covenant-test/raw/1.0.0'
  const BIG = '/covenant-test/big/1.0.0'
  const HANG = '/covenant-test/hang/1.0.0'
  const BUSY = '/covenant-test/busy/1.0.0'
  const ODD = '/covenant-test/odd/1.0.0'
  let a: Net
  let b: Net
  /** what the raw server sends back; 'close' closes the stream without a reply */
  let rawReply: Uint8Array | 'close' = new Uint8Array()
  const refused: Array<{ protocol: string; code: string }> = []
  const release = Promise.withResolvers<void>()

  before(async () => {
    a = createNet({ privateKey: await generateKey() })
    b = createNet({
      privateKey: await generateKey(),
      onInboundError: (protocol, err) => refused.push({ protocol, code: err.code }),
    })
    await a.start()
    await b.start()
    await b.libp2p.handle(RAW, async (stream) => {
      const lp = lpStream(stream)
      await lp.read()
      if (rawReply !== 'close') await lp.write(rawReply)
      await stream.close()
    })
    await b.handle(BIG, { schema: z.object({ n: z.number() }), handler: async ({ n }) => 'x'.repeat(n) })
    await b.handle(HANG, {
      schema: z.object({}),
      runTimeoutMs: 60_000,
      handler: async () => {
        await release.promise
        return {}
      },
    })
    await b.handle(ODD, { schema: z.object({}), handler: async () => ({ undefinedIsNotCbor: undefined }) })
    await a.addAddresses(b.peerId, b.multiaddrs())
  })
  after(async () => {
    release.resolve()
    await a.stop()
    await b.stop()
  })

  it('refuses a reply over the size the caller accepts: MESSAGE_TOO_LARGE', async () => {
    assert.equal(await a.request(b.peerId, BIG, { n: 10 }, { maxReplyBytes: 1024 }), 'x'.repeat(10))
    await assert.rejects(
      a.request(b.peerId, BIG, { n: 5000 }, { maxReplyBytes: 1024 }),
      typed('MESSAGE_TOO_LARGE'),
    )
  })

  it('refuses replies that are not DAG-CBOR, not an envelope, or both envelopes at once: PROTOCOL_ERROR', async () => {
    const replies = [
      new Uint8Array([0xff, 0x00, 0x13]),
      dagCbor.encode('just a string'),
      dagCbor.encode({ foo: 1 }),
      dagCbor.encode({ result: 1, error: { code: 'NOT_FOUND', message: 'x' } }),
      dagCbor.encode({ error: { code: 42, message: 'x' } }),
      dagCbor.encode({ error: { code: 'NOT_FOUND', message: 'm'.repeat(5000) } }),
    ]
    for (const reply of replies) {
      rawReply = reply
      await assert.rejects(a.request(b.peerId, RAW, {}), typed('PROTOCOL_ERROR'))
    }
  })

  it('passes on a peer’s typed error, an unknown code as PROTOCOL_ERROR, and never its details', async () => {
    rawReply = dagCbor.encode({ error: { code: 'STORAGE_FULL', message: 'full', details: { big: 'x' } } })
    await assert.rejects(a.request(b.peerId, RAW, {}), (e: CovenantError) => {
      typed('STORAGE_FULL')(e)
      assert.equal(e.message, 'full')
      assert.equal(e.details, undefined)
      return true
    })
    rawReply = dagCbor.encode({ error: { code: 'MADE_UP', message: 'hm' } })
    await assert.rejects(a.request(b.peerId, RAW, {}), typed('PROTOCOL_ERROR'))
  })

  it('reports a stream closed without a reply as PEER_UNREACHABLE', async () => {
    rawReply = 'close'
    await assert.rejects(a.request(b.peerId, RAW, {}), typed('PEER_UNREACHABLE'))
  })

  it('gives up on a peer that never answers (PEER_TIMEOUT), or when the caller aborts', async () => {
    await assert.rejects(a.request(b.peerId, HANG, {}, { timeoutMs: 300 }), typed('PEER_TIMEOUT'))
    const caller = new AbortController()
    const pending = a.request(b.peerId, HANG, {}, { timeoutMs: 60_000, signal: caller.signal })
    caller.abort()
    await assert.rejects(pending, typed('PEER_TIMEOUT'))
    const why = new CovenantError('NOT_STARTED', 'shutting down')
    const stopping = new AbortController()
    const second = a.request(b.peerId, HANG, {}, { timeoutMs: 60_000, signal: stopping.signal })
    stopping.abort(why)
    await assert.rejects(second, (e) => e === why)
  })

  it('answers a peer that opens a stream and sends nothing with PEER_TIMEOUT, on the read timer alone', async () => {
    const SILENT = '/covenant-test/silent/1.0.0'
    await b.handle(SILENT, {
      schema: z.object({}),
      readTimeoutMs: 200,
      runTimeoutMs: 600_000,
      handler: async () => ({}),
    })
    const stream = await a.libp2p.dialProtocol(multiaddr(b.multiaddrs()[0]), SILENT)
    const reply = dagCbor.decode(
      (await lpStream(stream).read({ signal: AbortSignal.timeout(10_000) })).subarray(),
    )
    assert.deepEqual(reply, { error: { code: 'PEER_TIMEOUT', message: 'request not received in time' } })
  })

  it('refuses requests beyond its concurrency limit with PEER_BUSY, and serves the ones it took', async () => {
    const gate = Promise.withResolvers<void>()
    const bothIn = Promise.withResolvers<void>()
    let entered = 0
    await b.handle(BUSY, {
      schema: z.object({ i: z.number() }),
      maxConcurrent: 2,
      runTimeoutMs: 60_000,
      handler: async ({ i }) => {
        if (++entered === 2) bothIn.resolve()
        await gate.promise
        return i
      },
    })
    const first = a.request(b.peerId, BUSY, { i: 1 }, { timeoutMs: 60_000 })
    const second = a.request(b.peerId, BUSY, { i: 2 }, { timeoutMs: 60_000 })
    await bothIn.promise
    await assert.rejects(a.request(b.peerId, BUSY, { i: 3 }, { timeoutMs: 60_000 }), typed('PEER_BUSY'))
    gate.resolve()
    assert.deepEqual(await Promise.all([first, second]), [1, 2])
    // and takes new ones once those are done
    assert.equal(await a.request(b.peerId, BUSY, { i: 4 }, { timeoutMs: 60_000 }), 4)
    assert.ok(refused.some((r) => r.protocol === BUSY && r.code === 'PEER_BUSY'))
  })

  it('refuses one peer beyond its own share with PEER_BUSY while another peer is still served', async () => {
    const SHARE = '/covenant-test/share/1.0.0'
    const gate = Promise.withResolvers<void>()
    const bothIn = Promise.withResolvers<void>()
    let held = 0
    await b.handle(SHARE, {
      schema: z.object({ i: z.number() }),
      maxConcurrent: 8,
      maxPerPeer: 2,
      runTimeoutMs: 60_000,
      handler: async ({ i }) => {
        if (i === 0) return i
        if (++held === 2) bothIn.resolve()
        await gate.promise
        return i
      },
    })
    const c = createNet({ privateKey: await generateKey() })
    await c.start()
    try {
      await c.addAddresses(b.peerId, b.multiaddrs())
      const first = a.request(b.peerId, SHARE, { i: 1 }, { timeoutMs: 60_000 })
      const second = a.request(b.peerId, SHARE, { i: 2 }, { timeoutMs: 60_000 })
      await bothIn.promise
      assert.deepEqual(b.inboundLoad(SHARE), { active: 2, peers: 1, maxFromOnePeer: 2 })
      await assert.rejects(a.request(b.peerId, SHARE, { i: 0 }), (e: CovenantError) => {
        typed('PEER_BUSY')(e)
        assert.match(e.message, /per peer/)
        return true
      })
      assert.equal(await c.request(b.peerId, SHARE, { i: 0 }), 0)
      gate.resolve()
      assert.deepEqual(await Promise.all([first, second]), [1, 2])
      assert.equal(await a.request(b.peerId, SHARE, { i: 0 }), 0)
    } finally {
      await c.stop()
    }
  })

  it('times the handler apart from the read: PEER_TIMEOUT after runTimeoutMs, the handler signalled, its slot held until it is done', async () => {
    const SLOW = '/covenant-test/slow-run/1.0.0'
    const done = Promise.withResolvers<void>()
    const signalled = Promise.withResolvers<void>()
    await b.handle(SLOW, {
      schema: z.object({}),
      maxConcurrent: 1,
      readTimeoutMs: 60_000,
      runTimeoutMs: 300,
      handler: async (_msg, _from, signal) => {
        signal.addEventListener('abort', () => signalled.resolve(), { once: true })
        await done.promise
        return 'late'
      },
    })
    await assert.rejects(a.request(b.peerId, SLOW, {}, { timeoutMs: 60_000 }), (e: CovenantError) => {
      typed('PEER_TIMEOUT')(e)
      assert.match(e.message, /not answered within 300 ms/)
      return true
    })
    await signalled.promise
    // the handler has not finished: its slot is still taken
    assert.equal(b.inboundLoad(SLOW).active, 1)
    await assert.rejects(a.request(b.peerId, SLOW, {}, { timeoutMs: 60_000 }), typed('PEER_BUSY'))
    done.resolve()
    await waitFor('the slot to be given back', async () =>
      b.inboundLoad(SLOW).active === 0 ? true : undefined,
    )
  })

  it('answers INTERNAL when its own reply cannot be encoded, and keeps serving', async () => {
    // on the wire an INTERNAL, which the caller takes for the peer failing
    await assert.rejects(a.request(b.peerId, ODD, {}), (e: CovenantError) => {
      assert.equal(e.code, 'PEER_UNREACHABLE')
      assert.match(e.message, /an internal error there/)
      return true
    })
    assert.equal(await a.request(b.peerId, BIG, { n: 1 }), 'x')
  })

  it('refuses a protocol the peer does not speak, or no longer speaks, with PEER_UNREACHABLE', async () => {
    await assert.rejects(a.request(b.peerId, '/covenant-test/none/1.0.0', {}), typed('PEER_UNREACHABLE'))
    await b.unhandle(BIG)
    await assert.rejects(a.request(b.peerId, BIG, { n: 1 }), typed('PEER_UNREACHABLE'))
  })

  it('refuses malformed peer ids and addresses with INVALID_INPUT, and use before start with NOT_STARTED', async () => {
    await assert.rejects(a.request('not-a-peer-id', RAW, {}), typed('INVALID_INPUT'))
    // on a session too, before and after good ids were read (the ids read are kept)
    for (let i = 0; i < 2; i++) {
      await assert.rejects(a.request('not-a-peer-id', RAW, {}, { session: true }), typed('INVALID_INPUT'))
      await assert.rejects(a.request(`${b.peerId}x`, RAW, {}, { session: true }), typed('INVALID_INPUT'))
    }
    for (const bad of ['', 'not a multiaddr', '/ip4/127.0.0.1/tcp/4001', '/ip4/999.1.1.1/tcp/1/p2p/x'])
      assert.throws(() => parsePeerAddr(bad), typed('INVALID_INPUT'), bad)
    const privateKey = await generateKey()
    assert.throws(() => createNet({ privateKey, bootstrap: ['nope'] }), typed('INVALID_INPUT'))
    const idle = createNet({ privateKey })
    assert.throws(() => idle.libp2p, typed('NOT_STARTED'))
    await assert.rejects(
      idle.handle(RAW, { schema: z.object({}), handler: async () => ({}) }),
      typed('NOT_STARTED'),
    )
    await assert.rejects(idle.request(b.peerId, RAW, {}), typed('NOT_STARTED'))
    assert.deepEqual(idle.multiaddrs(), [])
    await idle.stop()
  })
})

describe('clearableTimeout', () => {
  it('aborts after its time with the TimeoutError AbortSignal.timeout gives, and never once cleared', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const fires = clearableTimeout(1000)
    const cleared = clearableTimeout(1000)
    t.mock.timers.tick(999)
    assert.equal(fires.signal.aborted, false)
    cleared.clear()
    t.mock.timers.tick(1)
    assert.equal(fires.signal.aborted, true)
    assert.ok(fires.signal.reason instanceof DOMException)
    assert.equal((fires.signal.reason as DOMException).name, 'TimeoutError')
    t.mock.timers.tick(60_000)
    assert.equal(cleared.signal.aborted, false, 'a cleared timeout never aborts')
    fires.clear() // clearing one that fired changes nothing
    assert.equal(fires.signal.aborted, true)
  })
})
