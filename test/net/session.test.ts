/**
 * Sessions (src/net/session.ts) between real in-process libp2p nodes: many requests over one
 * stream, answered in any order, each held to its protocol's limits, with the one-shot stream as
 * the fallback; and what a careless or hostile peer can do to a session.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { z } from 'zod'
import { CovenantError } from '../../src/errors/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { coalesced } from '../../src/net/host.ts'
import { createNet, type Net, SESSION_MAX_REQUEST_BYTES, sessionProtocol } from '../../src/net/index.ts'
import { waitFor } from '../fixtures/network.ts'

const ECHO = '/covenant-test/session-echo/1.0.0'
const PLAIN = '/covenant-test/plain/1.0.0'
const SLOW = '/covenant-test/slow/1.0.0'

function typed(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof CovenantError, `expected a CovenantError, got ${e}`)
    assert.equal(e.code, code, e.message)
    return true
  }
}

/** The streams of `net`'s connections to `peer` on `protocol`. */
function streamsOn(net: Net, peer: string, protocol: string): Stream[] {
  return net.libp2p
    .getConnections()
    .filter((c) => c.remotePeer.toString() === peer)
    .flatMap((c) => c.streams)
    .filter((s) => s.protocol === protocol)
}

describe('net sessions', () => {
  let a: Net
  let b: Net
  let served = 0
  const refused: string[] = []
  const gate = Promise.withResolvers<void>()

  before(async () => {
    a = createNet({ privateKey: await generateKey() })
    b = createNet({
      privateKey: await generateKey(),
      onInboundError: (_protocol, err) => refused.push(err.code),
    })
    await a.start()
    await b.start()
    await b.handle(ECHO, {
      schema: z.strictObject({ text: z.string(), wait: z.number().optional() }),
      maxBytes: SESSION_MAX_REQUEST_BYTES,
      sessions: true,
      handler: async ({ text, wait }, from) => {
        served++
        if (wait !== undefined) await new Promise((r) => setTimeout(r, wait))
        if (text === 'refuse') throw new CovenantError('COVENANT_REFUSED', 'no thanks')
        if (text === 'bug') throw new Error('a bug in the handler')
        return { text, from }
      },
    })
    await b.handle(PLAIN, {
      schema: z.strictObject({ text: z.string() }),
      handler: async ({ text }) => ({ text }),
    })
    await b.handle(SLOW, {
      schema: z.strictObject({}),
      maxPerPeer: 2,
      runTimeoutMs: 60_000,
      sessions: true,
      handler: async () => {
        await gate.promise
        return 'done'
      },
    })
    await a.addAddresses(b.peerId, b.multiaddrs())
  })
  after(async () => {
    gate.resolve()
    await a.stop()
    await b.stop()
  })

  it('carries many requests on one stream and hands each its own reply, whatever the order', async () => {
    const waits = [40, 0, 20, 5, 30, 10, 0, 15]
    const replies = await Promise.all(
      waits.map((wait, i) => a.request(b.peerId, ECHO, { text: `m${i}`, wait }, { session: true })),
    )
    assert.deepEqual(
      replies,
      waits.map((_, i) => ({ text: `m${i}`, from: a.peerId })),
    )
    // eight at once (the peer's whole share), yet one session stream
    assert.equal(streamsOn(a, b.peerId, sessionProtocol(ECHO)).length, 1)
    for (let i = 0; i < 20; i++) await a.request(b.peerId, ECHO, { text: 'again' }, { session: true })
    assert.equal(streamsOn(a, b.peerId, sessionProtocol(ECHO)).length, 1)
  })

  it('passes on a handler’s typed error by id, and the session goes on', async () => {
    await assert.rejects(
      a.request(b.peerId, ECHO, { text: 'refuse' }, { session: true }),
      typed('COVENANT_REFUSED'),
    )
    await assert.rejects(
      a.request(b.peerId, ECHO, { text: 'x', extra: 1 }, { session: true }),
      typed('PROTOCOL_ERROR'),
    )
    // the peer's own failure (INTERNAL there) is not the caller's: PEER_UNREACHABLE, as one-shot
    await assert.rejects(
      a.request(b.peerId, ECHO, { text: 'bug' }, { session: true }),
      typed('PEER_UNREACHABLE'),
    )
    assert.deepEqual(await a.request(b.peerId, ECHO, { text: 'fine' }, { session: true }), {
      text: 'fine',
      from: a.peerId,
    })
  })

  it('coalesces each connection’s small writes, on both sides', () => {
    const sockets = [a, b].flatMap((n) =>
      n.libp2p.getConnections().map((c) => (c as unknown as { maConn: { socket: unknown } }).maConn.socket),
    )
    assert.ok(sockets.length >= 2)
    for (const socket of sockets) assert.ok(coalesced.has(socket as never))
  })

  it('sends one write per message each way: no Yamux window update of its own after each frame', async () => {
    await a.request(b.peerId, ECHO, { text: 'warm' }, { session: true })
    // Each side's socket to the other, counted in flushes: the ticks in which it wrote anything.
    const sockets = [a, b].map(
      (n) =>
        (
          n.libp2p
            .getConnections()
            .find((c) => c.remotePeer.toString() === (n === a ? b : a).peerId) as unknown as {
            maConn: { socket: { write: (...args: unknown[]) => boolean } }
          }
        ).maConn.socket,
    )
    const flushes = [0, 0]
    const writes = sockets.map((socket, i) => {
      const write = socket.write
      let inTick = false
      socket.write = function (this: unknown, ...args: unknown[]) {
        if (!inTick) {
          inTick = true
          flushes[i]++
          process.nextTick(() => {
            inTick = false
          })
        }
        return write.apply(this, args)
      }
      return write
    })
    try {
      // the handler answers on a later tick than it read the request, as an executor does
      for (let i = 0; i < 20; i++)
        await a.request(b.peerId, ECHO, { text: `m${i}`, wait: 1 }, { session: true })
    } finally {
      for (const [i, socket] of sockets.entries()) socket.write = writes[i]
    }
    // one flush per request and one per reply (a window update after each frame made two each);
    // a stray keep-alive ping or identify message may add one
    assert.ok(flushes[0] <= 22, `the caller flushed ${flushes[0]} times for 20 requests`)
    assert.ok(flushes[1] <= 22, `the server flushed ${flushes[1]} times for 20 replies`)
  })

  it('carries more than a Yamux window each way on one session: the window is granted again once half used', async () => {
    // 16 × 60 kB each way: more than the 256 KiB initial window, so this completes only if
    // window updates still come
    const text = 'x'.repeat(60_000)
    for (let i = 0; i < 16; i++)
      assert.equal(
        (
          (await a.request(b.peerId, ECHO, { text }, { session: true, timeoutMs: 30_000 })) as {
            text: string
          }
        ).text.length,
        60_000,
      )
  })

  it('holds session requests to the protocol’s per-peer share, shared with one-shot requests', async () => {
    const first = a.request(b.peerId, SLOW, {}, { session: true, timeoutMs: 60_000 })
    const second = a.request(b.peerId, SLOW, {}, { timeoutMs: 60_000 })
    await waitLoad(b, SLOW, 2)
    await assert.rejects(
      a.request(b.peerId, SLOW, {}, { session: true, timeoutMs: 60_000 }),
      typed('PEER_BUSY'),
    )
    await assert.rejects(a.request(b.peerId, SLOW, {}, { timeoutMs: 60_000 }), typed('PEER_BUSY'))
    gate.resolve()
    assert.deepEqual(await Promise.all([first, second]), ['done', 'done'])
    assert.equal(b.inboundLoad(SLOW).active, 0)
  })

  it('sends a request too large for a frame on a one-shot stream, held to the same size limit', async () => {
    const before = served
    const text = 'x'.repeat(SESSION_MAX_REQUEST_BYTES - 100)
    assert.deepEqual(await a.request(b.peerId, ECHO, { text }, { session: true }), { text, from: a.peerId })
    await assert.rejects(
      a.request(b.peerId, ECHO, { text: `${text}${'y'.repeat(200)}` }, { session: true }),
      typed('MESSAGE_TOO_LARGE'),
    )
    assert.equal(served, before + 1)
  })

  it('falls back to one-shot streams for a protocol served without sessions', async () => {
    assert.deepEqual(await a.request(b.peerId, PLAIN, { text: 'hi' }, { session: true }), { text: 'hi' })
    assert.deepEqual(await a.request(b.peerId, PLAIN, { text: 'again' }, { session: true }), {
      text: 'again',
    })
    assert.equal(streamsOn(a, b.peerId, sessionProtocol(PLAIN)).length, 0)
  })

  it('gives up on a request the peer does not answer in time (PEER_TIMEOUT), or that its caller drops, and the session serves the next', async () => {
    await assert.rejects(
      a.request(b.peerId, ECHO, { text: 'late', wait: 2000 }, { session: true, timeoutMs: 100 }),
      typed('PEER_TIMEOUT'),
    )
    const caller = new AbortController()
    const dropped = a.request(
      b.peerId,
      ECHO,
      { text: 'dropped', wait: 500 },
      { session: true, signal: caller.signal },
    )
    caller.abort()
    await assert.rejects(dropped, typed('PEER_TIMEOUT'))
    assert.deepEqual(await a.request(b.peerId, ECHO, { text: 'next' }, { session: true }), {
      text: 'next',
      from: a.peerId,
    })
  })
})

describe('net sessions against careless and hostile peers', () => {
  const SMALL = '/covenant-test/small/1.0.0'
  let a: Net
  let b: Net
  const refused: string[] = []

  before(async () => {
    a = createNet({ privateKey: await generateKey() })
    b = createNet({
      privateKey: await generateKey(),
      onInboundError: (_protocol, err) => refused.push(err.code),
    })
    await a.start()
    await b.start()
    await b.handle(SMALL, {
      schema: z.strictObject({ text: z.string() }),
      maxBytes: 1024,
      sessions: true,
      handler: async ({ text }) => ({ text }),
    })
    await a.addAddresses(b.peerId, b.multiaddrs())
  })
  after(async () => {
    await a.stop()
    await b.stop()
  })

  /** A session opened by hand, to send what an honest caller never would. */
  async function rawSession() {
    const stream = await a.libp2p.dialProtocol(b.libp2p.peerId, sessionProtocol(SMALL))
    const lp = lpStream(stream)
    return {
      stream,
      send: (frame: unknown) => lp.write(dagCbor.encode(frame)),
      sendBytes: (bytes: Uint8Array) => lp.write(bytes),
      read: async () => dagCbor.decode((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray()),
    }
  }

  it('answers a frame over the protocol’s size limit with MESSAGE_TOO_LARGE, by its id, and reads on', async () => {
    const s = await rawSession()
    await s.send({ id: 7, msg: { text: 'x'.repeat(2000) } })
    assert.deepEqual(await s.read(), {
      id: 7,
      error: { code: 'MESSAGE_TOO_LARGE', message: 'messages on this protocol are at most 1024 bytes' },
    })
    await s.send({ id: 8, msg: { text: 'ok' } })
    assert.deepEqual(await s.read(), { id: 8, result: { text: 'ok' } })
    s.stream.abort(new Error('done'))
  })

  it('answers a frame that is not { id, msg } or not DAG-CBOR with a plain typed error, ends the session, and keeps serving everyone else', async () => {
    for (const bad of [dagCbor.encode({ msg: { text: 'no id' } }), new Uint8Array([0xff, 0x00])]) {
      const s = await rawSession()
      await s.sendBytes(bad)
      // no id to answer by: the protocol's plain error reply, as on a one-shot stream
      const reply = (await s.read()) as { error: { code: string } }
      assert.deepEqual(Object.keys(reply), ['error'])
      assert.equal(reply.error.code, 'PROTOCOL_ERROR')
      await assert.rejects(s.read())
    }
    assert.ok(refused.includes('PROTOCOL_ERROR'))
    assert.deepEqual(await a.request(b.peerId, SMALL, { text: 'still' }, { session: true }), {
      text: 'still',
    })
  })

  it('fails the requests waiting on a session whose peer goes away (PEER_UNREACHABLE), and opens a new one when it is back', async () => {
    const key = await generateKey()
    const c = createNet({ privateKey: key })
    await c.start()
    const HANG = '/covenant-test/hang-session/1.0.0'
    await c.handle(HANG, {
      schema: z.strictObject({}),
      runTimeoutMs: 60_000,
      sessions: true,
      handler: () => new Promise(() => {}),
    })
    await c.handle(SMALL, {
      schema: z.strictObject({ text: z.string() }),
      sessions: true,
      handler: async (m) => m,
    })
    await a.addAddresses(c.peerId, c.multiaddrs())
    assert.deepEqual(await a.request(c.peerId, SMALL, { text: 'up' }, { session: true }), { text: 'up' })
    const waiting = assert.rejects(
      a.request(c.peerId, HANG, {}, { session: true, timeoutMs: 60_000 }),
      typed('PEER_UNREACHABLE'),
    )
    await waitLoad(c, HANG, 1)
    await c.stop()
    await waiting
    await waitFor('the old connection to close', async () => (a.isConnected(c.peerId) ? undefined : true))
    const again = createNet({ privateKey: key })
    await again.start()
    try {
      await again.handle(SMALL, {
        schema: z.strictObject({ text: z.string() }),
        sessions: true,
        handler: async (m) => m,
      })
      await a.addAddresses(again.peerId, again.multiaddrs())
      assert.deepEqual(await a.request(again.peerId, SMALL, { text: 'back' }, { session: true }), {
        text: 'back',
      })
    } finally {
      await again.stop()
    }
  })
})

/** Waits until `net` runs `n` requests of `protocol` (decided by the node's own count). */
function waitLoad(net: Net, protocol: string, n: number): Promise<true> {
  return waitFor(`${n} requests of ${protocol} running`, async () =>
    net.inboundLoad(protocol).active >= n ? true : undefined,
  )
}
