import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { CovenantError } from '../../src/errors/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { createNet, type Net } from '../../src/net/index.ts'

const ECHO = '/covenant-test/echo/1.0.0'

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
    await assert.rejects(a.request(b.peerId, ECHO, { text: 'crash' }), (e: CovenantError) => {
      assert.equal(e.code, 'INTERNAL')
      assert.doesNotMatch(e.message, /secret/)
      return true
    })
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
