/** The peer table over real in-process libp2p nodes: discovery by gossip, covenants, death detection. */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import { DEFAULT_COVENANT, signCovenant } from '../../src/covenant/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { generateKey, type PrivateKey } from '../../src/keys/index.ts'
import { createNet, HELLO_PROTOCOL, type Net } from '../../src/net/index.ts'
import { PeerTable } from '../../src/node/index.ts'
import { waitFor } from '../fixtures/network.ts'

interface Member {
  key: PrivateKey
  net: Net
  table: PeerTable
}

async function member(bootstrap: string[] = []): Promise<Member> {
  const key = await generateKey()
  const net = createNet({ privateKey: key, bootstrap })
  await net.start()
  const covenant = signCovenant(key, DEFAULT_COVENANT, 1)
  const table = new PeerTable({
    net,
    covenant: () => covenant,
    logger: pino({ level: 'silent' }),
    heartbeatMs: 300,
    helloTimeoutMs: 1000,
  })
  await table.start()
  return { key, net, table }
}

describe('peer table', () => {
  const members: Member[] = []
  before(async () => {
    members.push(await member())
    const first = members[0].net.multiaddrs()[0]
    // b and c know only a; they must find each other through a's hello
    members.push(await member([first]))
    members.push(await member([first]))
  })
  after(async () => {
    for (const m of members) {
      await m.table.stop()
      await m.net.stop()
    }
  })

  it('every member learns every other, with a verified covenant, through gossip', async () => {
    for (const m of members) {
      const others = members.filter((o) => o !== m).map((o) => o.net.peerId)
      await waitFor('full view', async () =>
        others.every((id) => m.table.get(id)?.alive && m.table.get(id)?.covenant?.peer === id)
          ? true
          : undefined,
      )
    }
    const json = members[1].table.toJSON()
    assert.equal(json[0].self, true)
    assert.equal(json.length, 3)
  })

  it('refuses a hello whose covenant is signed by someone else', async () => {
    const [a, b] = members
    const stranger = await generateKey()
    const forged = signCovenant(stranger, DEFAULT_COVENANT, 1)
    await assert.rejects(
      b.net.request(a.net.peerId, HELLO_PROTOCOL, { covenant: forged, addrs: [], peers: [] }),
      (e: CovenantError) => e.code === 'INVALID_SIGNATURE',
    )
    await assert.rejects(
      b.net.request(a.net.peerId, HELLO_PROTOCOL, { covenant: { peer: 'x' }, addrs: [], peers: [] }),
      (e: CovenantError) => e.code === 'PROTOCOL_ERROR',
    )
    assert.equal(a.table.get(b.net.peerId)?.alive, true)
  })

  it('marks a stopped peer dead within heartbeat + hello timeout', async () => {
    const [a, , c] = members
    const stoppedAt = Date.now()
    await c.table.stop()
    await c.net.stop()
    await waitFor(
      'c dead in a',
      async () => (a.table.get(c.net.peerId)?.alive === false ? true : undefined),
      5000,
    )
    assert.ok(Date.now() - stoppedAt <= 300 + 1000 + 500)
    assert.ok(!a.table.live().some((p) => p.id === c.net.peerId))
  })
})
