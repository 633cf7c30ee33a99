/**
 * What the node-level fuzzers share: a real in-process node (storing and executing, with a
 * function deployed and a public namespace holding one write), a peer on real libp2p streams that
 * greets it with a valid signed covenant and then sends it raw frames, and the checks every reply
 * must pass: a protocol reply is a `{ result }` or a typed `{ error }` envelope, an HTTP reply is
 * the route's reply or the one error shape with its status, and never INTERNAL.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { varint } from 'multiformats'
import { ErrorBodySchema, type RouteSpec } from '../../src/api/index.ts'
import { connect } from '../../src/client/index.ts'
import {
  type CovenantConfig,
  CovenantConfigSchema,
  type SignedCovenant,
  signCovenant,
} from '../../src/covenant/index.ts'
import { type SignedDescriptor, signRead } from '../../src/datastore/index.ts'
import { ERROR_CODES, isErrorCode } from '../../src/errors/index.ts'
import { generateKey, type PrivateKey } from '../../src/keys/index.ts'
import { createNet, KAD_PROTOCOL, type Net, replyEnvelopeSchema } from '../../src/net/index.ts'
import { type CovenantNode, createNode } from '../../src/node/index.ts'
import { HELLO_PROTOCOL } from '../../src/peers/index.ts'
import { connectTo } from '../fixtures/network.ts'
import { FULL_COVENANT, wire } from './samples.ts'

/** The function deployed on the node. */
export const ADD = 'export function add(a, b) { return a + b }\n'

export interface FuzzNode {
  dir: string
  node: CovenantNode
  config: CovenantConfig
  /** a peer with a valid signed covenant of its own, storing and executing */
  peer: Net
  peerKey: PrivateKey
  peerCovenant: SignedCovenant
  /** the manifest CID of {@link ADD} and its code's CID */
  fn: string
  codeCid: string
  manifestBytes: Uint8Array
  /** a key that calls functions and owns the namespace */
  caller: PrivateKey
  ns: string
  descriptor: SignedDescriptor
  /** every Covenant protocol the node answers (the DHT aside) */
  protocols: string[]
  stop(): Promise<void>
}

/** Starts the node, deploys {@link ADD}, creates a public namespace with one write, connects the peer. */
export async function startFuzzNode(): Promise<FuzzNode> {
  const dir = await mkdtemp(join(tmpdir(), 'covenant-fuzz-'))
  const config = CovenantConfigSchema.parse(FULL_COVENANT)
  const node = await createNode({
    dataDir: join(dir, 'node'),
    covenant: config,
    exec: { workers: 1 },
    defaultMetrics: false,
    logLevel: 'silent',
  })
  const peerKey = await generateKey()
  const peer = createNet({ privateKey: peerKey })
  const stop = async () => {
    await peer.stop().catch(() => {})
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await peer.start()
    const caller = await generateKey()
    const client = await connect({ node: node.url })
    const deployed = await client.deploy(ADD, { key: caller, exports: ['add'] })
    const fnInfo = await client.getFunction(deployed.cid)
    const manifestBytes = await client.getBlock(deployed.cid)
    const { ns, descriptor } = await client.createStore('fuzz', { key: caller, public: true })
    await client.store(ns, { key: caller }).commit([{ key: 'notes/a', value: { n: 1 } }])
    await connectTo(peer, node.multiaddrs()[0])
    const protocols = node.components.net.libp2p
      .getProtocols()
      .filter((p) => p.startsWith('/covenant/') && p !== KAD_PROTOCOL)
      .sort()
    return {
      dir,
      node,
      config,
      peer,
      peerKey,
      peerCovenant: signCovenant(peerKey, FULL_COVENANT, 1),
      fn: deployed.cid,
      codeCid: String(fnInfo.manifest.code),
      manifestBytes,
      caller,
      ns,
      descriptor,
      protocols,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** The peer's hello: its signed covenant and addresses, as the wire carries them. */
export function helloOf(f: FuzzNode): unknown {
  return wire({ covenant: f.peerCovenant, addrs: f.peer.multiaddrs().slice(0, 4), peers: [] })
}

/** A signed read of the namespace by its owner. */
export function readTokenOf(f: FuzzNode): unknown {
  return wire(signRead(f.caller, f.ns))
}

/** `body` with its varint length prefix: one frame as `lpStream` writes it. */
export function frame(body: Uint8Array): Uint8Array {
  const prefix = new Uint8Array(varint.encodingLength(body.length))
  varint.encodeTo(body.length, prefix)
  const out = new Uint8Array(prefix.length + body.length)
  out.set(prefix)
  out.set(body, prefix.length)
  return out
}

/** What came back on a stream: a decoded reply, or why there was none. */
export type Exchange = { reply: unknown } | { none: string }

/**
 * Opens a stream from the peer to the node on `protocol`, sends `bytes` as they are (frame them
 * with {@link frame}), closes its side, and reads one length-prefixed reply.
 */
export async function exchange(f: FuzzNode, protocol: string, bytes: Uint8Array): Promise<Exchange> {
  let stream: Stream
  try {
    stream = await f.peer.libp2p.dialProtocol(peerIdFromString(f.node.peerId), protocol, {
      signal: AbortSignal.timeout(20_000),
    })
  } catch (err) {
    return { none: `dial: ${(err as Error).name}` }
  }
  const lp = lpStream(stream, { maxDataLength: 16 * 1024 * 1024 })
  try {
    if (bytes.length > 0 && !stream.send(bytes)) await stream.onDrain({ signal: AbortSignal.timeout(20_000) })
    await stream.close({ signal: AbortSignal.timeout(20_000) })
    const raw = await lp.read({ signal: AbortSignal.timeout(60_000) })
    return { reply: dagCbor.decode(raw.subarray()) }
  } catch (err) {
    stream.abort(err as Error)
    return { none: (err as Error).name }
  }
}

/** Fails unless `reply` is an envelope: a result, or an error with a known code other than INTERNAL. */
export function assertEnvelope(
  reply: unknown,
  what: string,
): { result: unknown } | { error: { code: string } } {
  const parsed = replyEnvelopeSchema.safeParse(reply)
  assert.ok(parsed.success, `${what}: not a reply envelope: ${String(JSON.stringify(reply))?.slice(0, 200)}`)
  if ('error' in parsed.data) {
    const { code, message } = parsed.data.error
    assert.ok(isErrorCode(code), `${what}: unknown error code ${code}`)
    assert.notEqual(code, 'INTERNAL', `${what}: bad input became INTERNAL (${message})`)
  }
  return parsed.data
}

/** What an HTTP reply shows, through `inject()` or a real socket. */
export interface HttpResult {
  statusCode: number
  body: string
  json(): unknown
}

/**
 * Fails unless an HTTP reply is the route's own (2xx, read by its reply schema) or the one error
 * shape `{ error: { code, message, details? } }` with its code's status, and not INTERNAL.
 */
export function assertHttpReply(res: HttpResult, spec: RouteSpec | undefined, what: string): void {
  if (res.statusCode < 400) {
    assert.ok(res.statusCode >= 200 && res.statusCode < 300, `${what}: status ${res.statusCode}`)
    if (spec === undefined || typeof spec.reply !== 'object') return
    const parsed = spec.reply.safeParse(res.json())
    assert.ok(parsed.success, `${what}: a reply its schema does not read: ${res.body.slice(0, 200)}`)
    return
  }
  let body: unknown
  try {
    body = JSON.parse(res.body)
  } catch {
    assert.fail(`${what}: status ${res.statusCode} with a body that is not JSON: ${res.body.slice(0, 200)}`)
  }
  const parsed = ErrorBodySchema.safeParse(body)
  assert.ok(parsed.success, `${what}: not the error shape: ${res.body.slice(0, 200)}`)
  assert.deepEqual(Object.keys(body as object), ['error'], `${what}: more than the error`)
  const { code, message } = parsed.data.error
  assert.ok(isErrorCode(code), `${what}: unknown code ${code}`)
  assert.notEqual(code, 'INTERNAL', `${what}: bad input became INTERNAL (${message})`)
  assert.equal(res.statusCode, ERROR_CODES[code].status, `${what}: ${code} with status ${res.statusCode}`)
}

/** Fails unless the node still answers its health check and an honest peer's hello. */
export async function assertServing(f: FuzzNode): Promise<void> {
  const health = await f.node.components.http.inject({ method: 'GET', url: '/health' })
  assert.equal(health.statusCode, 200, `health: ${health.body}`)
  const hello = await exchange(f, HELLO_PROTOCOL, frame(dagCbor.encode(helloOf(f))))
  assert.ok(
    'reply' in hello && 'result' in (hello.reply as object),
    `an honest hello: ${JSON.stringify(hello)}`,
  )
}
