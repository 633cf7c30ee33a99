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
  type PeerTableOptions,
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

async function member(
  bootstrap: string[] = [],
  options: PeerTableOptions = {},
  key?: PrivateKey,
): Promise<Member> {
  key ??= await generateKey()
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
    { heartbeatMs: 300, helloTimeoutMs: HELLO_TIMEOUT_MS, ...options },
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
        runTimeoutMs: 60_000,
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

async function stopMember(m: Member): Promise<void> {
  await m.table.stop()
  await m.net.stop()
}

describe('peer table against a gossip flood', { timeout: 120_000 }, () => {
  const started: Member[] = []
  const nets: Net[] = []
  after(async () => {
    for (const m of started) await stopMember(m)
    for (const n of nets) await n.stop()
  })
  const join = async (...args: Parameters<typeof member>): Promise<Member> => {
    const m = await member(...args)
    started.push(m)
    return m
  }

  it('keeps thousands of made-up gossiped ids out of the table: new and restarted honest peers still get in', async () => {
    const target = await join()
    const addr = target.net.multiaddrs()[0]
    const steady = await join([addr])
    const leaving = await join([addr])
    await until(target.table, () =>
      [steady, leaving].every((m) => target.table.get(m.net.peerId)?.alive === true),
    )
    // `leaving` goes away: dead, and kept for forgetAfterMs
    const gone = until(target.table, () => target.table.get(leaving.net.peerId)?.alive === false)
    await stopMember(leaving)
    started.splice(started.indexOf(leaving), 1)
    await gone

    // A peer with a real covenant greets the target over and over, each hello naming 64 made-up
    // ids at an address where nothing listens.
    const attackerKey = await generateKey()
    const attacker = createNet({ privateKey: attackerKey })
    await attacker.start()
    nets.push(attacker)
    await attacker.addAddresses(target.net.peerId, target.net.multiaddrs())
    const covenant = signCovenant(attackerKey, DEFAULT_COVENANT, 1)
    const madeUp = await Promise.all(Array.from({ length: 40 * 64 }, async () => keyId(await generateKey())))
    for (let i = 0; i < madeUp.length; i += 64) {
      const peers = madeUp.slice(i, i + 64).map((id) => ({ id, addrs: ['/ip4/127.0.0.1/tcp/1'] }))
      await attacker.request(target.net.peerId, HELLO_PROTOCOL, {
        covenant,
        addrs: attacker.multiaddrs(),
        peers,
      })
    }
    const fake = new Set(madeUp)
    assert.deepEqual(
      target.table
        .list()
        .map((p) => p.id)
        .sort(),
      [steady.net.peerId, leaving.net.peerId, attacker.peerId].sort(),
    )
    assert.ok(target.table.candidates().length <= target.table.options.maxCandidates)
    assert.ok(target.table.candidates().every((id) => fake.has(id)))
    // the verified peer was never pushed out, and is still alive
    assert.equal(target.table.get(steady.net.peerId)?.alive, true)

    // a new honest peer gets in
    const newcomer = await join([addr])
    assert.equal(await newcomer.table.hello(target.net.peerId), true)
    assert.equal(target.table.get(newcomer.net.peerId)?.alive, true)
    // and so does the one that left, restarted with its key on a new port
    const back = await join([addr], {}, leaving.key)
    assert.notDeepEqual(back.net.multiaddrs(), leaving.net.multiaddrs())
    assert.equal(await back.table.hello(target.net.peerId), true)
    assert.equal(target.table.get(leaving.net.peerId)?.alive, true)
    assert.deepEqual(target.table.get(leaving.net.peerId)?.addrs, back.net.multiaddrs())
    assert.ok(target.table.list().every((p) => !fake.has(p.id)))
  })

  it('makes room in a full table by forgetting its longest-dead peer, never a live one', async () => {
    const target = await join([], { maxPeers: 2 })
    const addr = target.net.multiaddrs()[0]
    const a = await join([addr])
    const b = await join([addr])
    await until(target.table, () => [a, b].every((m) => target.table.get(m.net.peerId)?.alive === true))
    const dead = until(target.table, () => target.table.get(b.net.peerId)?.alive === false)
    await stopMember(b)
    started.splice(started.indexOf(b), 1)
    await dead
    const c = await join([addr])
    assert.equal(await c.table.hello(target.net.peerId), true)
    assert.equal(target.table.get(c.net.peerId)?.alive, true)
    assert.equal(target.table.get(b.net.peerId), undefined)
    // full of live peers: a fourth is answered, but not listed, and nobody live was pushed out
    const d = await join([addr])
    assert.equal(await d.table.hello(target.net.peerId), true)
    assert.equal(target.table.get(d.net.peerId), undefined)
    assert.deepEqual(
      target.table
        .list()
        .map((p) => p.id)
        .sort(),
      [a.net.peerId, c.net.peerId].sort(),
    )
  })
})
