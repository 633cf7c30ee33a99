/**
 * Idle-stream starvation against a real in-process node: a few peers open every stream libp2p
 * lets them on the exec and hello protocols and never write a byte. Each peer is held to its own
 * share of a protocol's slots (beyond it: PEER_BUSY at once), so an honest caller is still served
 * and an honest peer still finds the node alive. Every verdict is a reply, never a clock.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import pino from 'pino'
import { connect } from '../../src/client/index.ts'
import { CovenantConfigSchema, DEFAULT_COVENANT, signCovenant } from '../../src/covenant/index.ts'
import {
  createRequest,
  EXEC_PROTOCOL,
  ExecReplySchema,
  MAX_EXEC_REPLY_BYTES,
  outputValue,
} from '../../src/exec/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { createNet, DEFAULT_MAX_INBOUND_STREAMS, type Net } from '../../src/net/index.ts'
import { type CovenantNode, createNode } from '../../src/node/index.ts'
import { createPeerTable, HELLO_PROTOCOL, type PeerTable } from '../../src/peers/index.ts'
import { connectTo, waitFor } from '../fixtures/network.ts'

const ATTACKERS = 4

describe('a node whose exec and hello streams are held idle by a few peers', { timeout: 120_000 }, () => {
  let dir: string
  let node: CovenantNode
  let fn: string
  const attackers: Net[] = []
  const held: Stream[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-starve-'))
    node = await createNode({
      dataDir: join(dir, 'node'),
      covenant: CovenantConfigSchema.parse({ execute: { enabled: true, concurrency: 2 } }),
      exec: { workers: 1 },
      defaultMetrics: false,
      logLevel: 'silent',
    })
    const publisher = await generateKey()
    const deployed = await (await connect({ node: node.url })).deploy(
      'export function add(a, b) { return a + b }\n',
      { key: publisher, exports: ['add'] },
    )
    fn = deployed.cid
    for (let i = 0; i < ATTACKERS; i++) {
      const attacker = createNet({ privateKey: await generateKey() })
      await attacker.start()
      attackers.push(attacker)
    }
  })
  after(async () => {
    for (const s of held) s.abort(new Error('test over'))
    for (const a of attackers) await a.stop()
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const connectToNode = (net: Net) => connectTo(net, node.multiaddrs()[0])

  /** Each attacker opens as many streams on `protocol` as one connection allows, and writes nothing. */
  async function holdIdle(protocol: string): Promise<void> {
    const target = multiaddr(node.multiaddrs()[0])
    for (const attacker of attackers) {
      await connectToNode(attacker)
      for (let i = 0; i < DEFAULT_MAX_INBOUND_STREAMS; i++)
        held.push(await attacker.libp2p.dialProtocol(target, protocol))
    }
  }

  it('serves an honest exec caller', async () => {
    await holdIdle(EXEC_PROTOCOL)
    // Today's main let these 64 idle streams take all 64 exec slots for 15 minutes. Now each
    // attacker holds its share of 8 (its other streams were refused at once), and no more.
    const net = node.components.net
    await waitFor('the idle streams to be held', async () =>
      net.inboundLoad(EXEC_PROTOCOL).active >= ATTACKERS * 8 ? true : undefined,
    )
    assert.deepEqual(net.inboundLoad(EXEC_PROTOCOL), {
      active: ATTACKERS * 8,
      peers: ATTACKERS,
      maxFromOnePeer: 8,
    })

    const caller = createNet({ privateKey: await generateKey() })
    await caller.start()
    try {
      await connectToNode(caller)
      const { request } = createRequest(await generateKey(), { fn, export: 'add', args: [2, 3], k: 1, q: 1 })
      const reply = await caller.request(
        node.peerId,
        EXEC_PROTOCOL,
        { request },
        { timeoutMs: 60_000, maxReplyBytes: MAX_EXEC_REPLY_BYTES, schema: ExecReplySchema },
      )
      assert.ok('receipt' in reply, `expected a receipt, got ${JSON.stringify(reply)}`)
      assert.equal(reply.receipt.executor, node.peerId)
      assert.equal(outputValue(reply.output), 5)
    } finally {
      await caller.stop()
    }
  })

  it('answers an honest peer’s hellos, so it keeps the node alive', async () => {
    const key = await generateKey()
    const net = createNet({ privateKey: key, bootstrap: [node.multiaddrs()[0]] })
    await net.start()
    const covenant = signCovenant(key, DEFAULT_COVENANT, 1)
    let table: PeerTable | undefined
    try {
      await connectToNode(net)
      table = createPeerTable(
        { net, covenant: () => covenant, logger: pino({ level: 'silent' }) },
        { heartbeatMs: 600_000, helloTimeoutMs: 60_000 },
      )
      await table.start()
      assert.equal(await table.hello(node.peerId), true)

      await holdIdle(HELLO_PROTOCOL)
      // main let 64 idle streams take all 64 hello slots; now each peer holds 2 at most
      const load = node.components.net
      await waitFor('the idle hello streams to be held', async () =>
        load.inboundLoad(HELLO_PROTOCOL).active >= ATTACKERS * 2 ? true : undefined,
      )
      assert.equal(load.inboundLoad(HELLO_PROTOCOL).maxFromOnePeer, 2)

      assert.equal(await table.hello(node.peerId), true)
      assert.equal(table.get(node.peerId)?.alive, true)
      assert.equal(node.components.peers.get(net.peerId)?.alive, true)
    } finally {
      await table?.stop()
      await net.stop()
    }
  })
})
