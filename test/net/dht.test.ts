/** The private Kademlia DHT between real in-process nodes: a provider is found by a node that never met it. */
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { createNet, KAD_PROTOCOL, type Net } from '../../src/net/index.ts'
import { waitFor } from '../fixtures/network.ts'

const nets: Net[] = []
before(async () => {
  const hub = createNet({ privateKey: await generateKey() })
  await hub.start()
  nets.push(hub)
  for (let i = 0; i < 2; i++) {
    const n = createNet({ privateKey: await generateKey(), bootstrap: [hub.multiaddrs()[0]] })
    await n.start()
    nets.push(n)
  }
})
after(async () => {
  for (const n of nets) await n.stop()
})

it('finds a provider through the DHT on the private protocol id', async () => {
  const [hub, a, b] = nets
  // the spokes only know the hub: connect them to it (the node's peer table does this with hellos)
  for (const n of [a, b]) await n.libp2p.dial(hub.libp2p.peerId)
  assert.ok(hub.libp2p.getProtocols().includes(KAD_PROTOCOL))
  assert.ok(!hub.libp2p.getProtocols().includes('/ipfs/kad/1.0.0'))
  const cid = cidForBytes(new TextEncoder().encode('provided by a'))
  // identify tells each spoke the hub speaks the DHT protocol, which puts it in the routing table
  await waitFor('identify', async () => {
    const known = await Promise.all([a, b].map((n) => n.libp2p.peerStore.get(hub.libp2p.peerId)))
    return known.every((p) => p.protocols.includes(KAD_PROTOCOL)) ? true : undefined
  })
  await a.provide(cid, { timeoutMs: 5000 })
  const found = await b.findProviders(cid, { timeoutMs: 5000 })
  assert.deepEqual(found, [a.peerId])
})
