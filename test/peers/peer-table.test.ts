/**
 * The peer table over real in-process libp2p nodes: discovery by gossip, covenants, death
 * detection. Every wait is for the table's own change events, never for a clock.
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import { DEFAULT_COVENANT, signCovenant } from '../../src/covenant/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { createNet, type Net } from '../../src/net/index.ts'
import {
  createPeerTable,
  HELLO_PROTOCOL,
  helloSchema,
  MAX_HELLO_BYTES,
  type PeerTable,
} from '../../src/peers/index.ts'

interface Member {
  key: PrivateKey
  net: Net
  table: PeerTable
  /** what its table logged, one object a line */
  logs: Array<{ event?: string; peer?: string; reason?: string }>
}

// Long enough that a hello between two processes on a loaded machine always makes it in time: the
// only hellos that fail here are to peers that cannot or will not answer.
const HELLO_TIMEOUT_MS = 5000

async function member(bootstrap: string[] = []): Promise<Member> {
  const key = await generateKey()
  const net = createNet({ privateKey: key, bootstrap })
  await net.start()
  const covenant = signCovenant(key, DEFAULT_COVENANT, 1)
  const logs: Member['logs'] = []
  const sink = new Writable({
    write(line, _enc, done) {
      logs.push(JSON.parse(String(line)))
      done()
    },
  })
  const table = createPeerTable(
    { net, covenant: () => covenant, logger: pino({ level: 'info' }, sink) },
    { heartbeatMs: 300, helloTimeoutMs: HELLO_TIMEOUT_MS },
  )
  await table.start()
  return { key, net, table, logs }
}

/** Resolves once `ready()` holds, re-checked on every change the table reports. */
function until(table: PeerTable, ready: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (ready()) return resolve()
    const stop = table.onChange(() => {
      if (!ready()) return
      stop()
      resolve()
    })
  })
}

describe('peer table', { timeout: 60_000 }, () => {
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
      await until(m.table, () =>
        others.every((id) => m.table.get(id)?.alive === true && m.table.get(id)?.covenant?.peer === id),
      )
      assert.deepEqual(
        m.table
          .live()
          .map((p) => p.id)
          .sort(),
        [...others].sort(),
      )
      // this node is never in its own table
      assert.equal(m.table.get(m.net.peerId), undefined)
    }
    assert.equal(members[1].table.list().length, 2)
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
    assert.equal(a.table.get(keyId(stranger)), undefined)
  })

  it('marks a peer that stops answering dead (PEER_TIMEOUT), and alive again when it greets', async () => {
    const [a] = members
    // A peer that greets a once, then holds every hello it gets without answering: a hung process.
    const key = await generateKey()
    const mute = createNet({ privateKey: key })
    await mute.start()
    try {
      const covenant = signCovenant(key, DEFAULT_COVENANT, 1)
      const hung = Promise.withResolvers<void>()
      await mute.handle(HELLO_PROTOCOL, {
        schema: helloSchema,
        maxBytes: MAX_HELLO_BYTES,
        timeoutMs: 60_000,
        handler: async () => {
          await hung.promise
          return {}
        },
      })
      await mute.addAddresses(a.net.peerId, a.net.multiaddrs())
      const greet = () =>
        mute.request(a.net.peerId, HELLO_PROTOCOL, { covenant, addrs: mute.multiaddrs(), peers: [] })
      const alive = until(a.table, () => a.table.get(mute.peerId)?.alive === true)
      await greet()
      await alive
      await until(a.table, () => a.table.get(mute.peerId)?.alive === false)
      const dead = a.logs.findLast((l) => l.event === 'peer-dead' && l.peer === mute.peerId)
      assert.equal(dead?.reason, 'PEER_TIMEOUT')
      assert.ok(!a.table.live().some((p) => p.id === mute.peerId))
      // it greets again: alive again, as any peer that answers
      const back = until(a.table, () => a.table.get(mute.peerId)?.alive === true)
      await greet()
      await back
      hung.resolve()
    } finally {
      await mute.stop()
    }
  })

  it('marks a stopped peer dead at once: refused, not timed out', async () => {
    const [a, , c] = members
    const dead = until(a.table, () => a.table.get(c.net.peerId)?.alive === false)
    await c.table.stop()
    await c.net.stop()
    await dead
    assert.ok(!a.table.live().some((p) => p.id === c.net.peerId))
    // refused, not timed out: it was noticed through the dial, without waiting for a timeout
    const logged = a.logs.findLast((l) => l.event === 'peer-dead' && l.peer === c.net.peerId)
    assert.equal(logged?.reason, 'PEER_UNREACHABLE')
  })
})
