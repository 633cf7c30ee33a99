/**
 * Storage across a devnet of 5 real node processes (k = 3): placement under covenants, tags that
 * come only from signed manifests (a peer can neither strip them nor add them), fetching from
 * non-holders, repair after SIGKILL, persistence across a restart of the whole network, and
 * malformed or mis-hashed block messages sent over raw libp2p streams.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { connect } from '../../src/client/index.ts'
import { cidForBytes, createManifest } from '../../src/content/index.ts'
import { CovenantConfigSchema, DEFAULT_COVENANT, signedCovenantFromJSON } from '../../src/covenant/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { generateKey, type PrivateKey } from '../../src/keys/index.ts'
import { createNet, type Net } from '../../src/net/index.ts'
import { BLOCK_PROTOCOL } from '../../src/storage/index.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../fixtures/network.ts'

const REFUSER = 4
const refusing = CovenantConfigSchema.parse({
  ...DEFAULT_COVENANT,
  store: { ...DEFAULT_COVENANT.store, refusedTags: ['nsfw'] },
})

const FN_SOURCE = [
  'export function hello(name) { return "hello " + name }',
  'export const answer = 42',
  '',
].join('\n')

/** A fresh function's code and its signed manifest, tagged `tags`. */
function fn(key: PrivateKey, tags: string[]) {
  const source = `export const f = () => ${JSON.stringify(crypto.randomUUID())}\n`
  const code = new TextEncoder().encode(source)
  const m = createManifest(key, { code: cidForBytes(code), size: code.length, exports: ['f'], tags })
  return {
    source,
    code,
    codeCid: cidForBytes(code).toString(),
    manifest: new Uint8Array(m.bytes),
    cid: m.cid,
  }
}

/** Rejects with a CovenantError of `code`. */
const typed = (code: string) => (e: CovenantError) => e.code === code

function random(n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)))
  return b
}

describe('storage on a 5-node devnet', { timeout: 120_000 }, () => {
  let devnet: TestDevnet
  let prober: Net
  const stored: Array<{ cid: string; bytes: Uint8Array }> = []

  before(async () => {
    devnet = await startTestDevnet({ nodes: 5, covenants: { [REFUSER]: refusing } })
    prober = createNet({ privateKey: await generateKey() })
    await prober.start()
  })
  after(async () => {
    await prober?.stop()
    await devnet?.cleanup()
  })

  const client = (i: number) => connect({ node: devnet.nodes[i].http })
  const holdersSeenBy = async (i: number, cid: string) => (await client(i)).holders(cid)

  it('every node lists every other with a verified covenant', async () => {
    const c = await client(0)
    // A peer may be marked dead for a moment on a loaded machine and come back at its next hello,
    // legitimately: what must hold is that all five are seen alive together.
    const peers = await waitFor('all 5 peers alive at once', async () => {
      const all = await c.peers()
      return all.every((p) => p.alive) ? all : undefined
    })
    assert.equal(peers.length, 5)
    assert.ok(peers.every((p) => p.covenant !== null))
    for (const p of peers) assert.equal(signedCovenantFromJSON(p.covenant).peer, p.id)
    const me = await c.node()
    assert.equal(me.signedCovenant.peer, devnet.nodes[0].peerId)
    const refuser = peers.find((p) => p.id === devnet.nodes[REFUSER].peerId)
    assert.deepEqual(refuser?.covenant?.config.store.refusedTags, ['nsfw'])
  })

  it('deploys a function and fetches it from a node that does not hold it', async () => {
    const deployed = await (await client(0)).deploy(FN_SOURCE, { tags: ['demo'], name: 'hello' })
    assert.deepEqual(deployed.exports, ['answer', 'hello'])
    assert.equal(deployed.holders.length, 3)
    assert.equal(deployed.codeHolders.length, 3)
    const outsider = devnet.nodes.find((n) => !deployed.holders.includes(n.peerId))!
    const c = await connect({ node: outsider.http })
    const fn = await c.getFunction(deployed.cid)
    assert.equal(fn.manifest.code, deployed.codeCid)
    assert.deepEqual(fn.manifest.tags, ['demo'])
    assert.deepEqual([...fn.holders].sort(), [...deployed.holders].sort())
    const codeOutsider = devnet.nodes.find((n) => !deployed.codeHolders.includes(n.peerId))!
    const code = await (await connect({ node: codeOutsider.http })).getBlock(deployed.codeCid)
    assert.equal(new TextDecoder().decode(code), FN_SOURCE)
    stored.push({ cid: deployed.codeCid, bytes: code })
  })

  it('never places content on a node whose covenant refuses its tag', async () => {
    const refuserId = devnet.nodes[REFUSER].peerId
    const key = await generateKey()
    let last: ReturnType<typeof fn> | undefined
    for (let i = 0; i < 6; i++) {
      last = fn(key, ['nsfw'])
      const deployed = await (await client(i % 4)).deploy(last.source, {
        tags: ['nsfw'],
        key,
        exports: ['f'],
      })
      assert.equal(deployed.holders.length, 3)
      assert.equal(deployed.codeHolders.length, 3)
      assert.ok(!deployed.holders.includes(refuserId), 'the refusing node was chosen for the manifest')
      assert.ok(!deployed.codeHolders.includes(refuserId), 'the refusing node was chosen for the code')
      stored.push({ cid: last.codeCid, bytes: last.code })
    }
    // the refusing node will not even pass such content through: the signed manifest that comes
    // with the code tells it what the code is
    await assert.rejects((await client(REFUSER)).getBlock(last!.codeCid), typed('COVENANT_REFUSED'))
  })

  it('a refusing node refuses refused content however it is sent: with its manifest, bare, or before it', async () => {
    const target = devnet.nodes[REFUSER]
    await prober.addAddresses(
      target.peerId,
      target.multiaddrs.map((a) => a.replace(/\/p2p\/.*$/, '')),
    )
    const key = await generateKey()
    const nsfw = fn(key, ['nsfw'])
    await assert.rejects(
      (await client(REFUSER)).deploy(nsfw.source, { tags: ['nsfw'], key, exports: ['f'] }),
      typed('COVENANT_REFUSED'),
    )
    const put = (cid: string, bytes: Uint8Array, manifests: Uint8Array[] = []) =>
      prober.request(target.peerId, BLOCK_PROTOCOL, { type: 'put', cid, bytes, manifests })
    const has = async (cid: string) =>
      (
        (await prober.request(target.peerId, BLOCK_PROTOCOL, { type: 'has', cids: [cid] })) as {
          has: boolean[]
        }
      ).has[0]
    // with the manifest that names it: refused
    await assert.rejects(put(nsfw.codeCid, nsfw.code, [nsfw.manifest]), typed('COVENANT_REFUSED'))
    // the manifest itself: refused
    await assert.rejects(put(nsfw.cid.toString(), nsfw.manifest), typed('COVENANT_REFUSED'))
    // the same code again without its manifest, to strip the tag: still refused, the node knows it
    await assert.rejects(put(nsfw.codeCid, nsfw.code), typed('COVENANT_REFUSED'))
    assert.equal(await has(nsfw.codeCid), false)

    // bare code the node has never heard of is only data, and stored; once its manifest arrives
    // the node knows what it is and lets it go
    const early = fn(key, ['nsfw'])
    assert.deepEqual(await put(early.codeCid, early.code), { stored: true })
    assert.equal(await has(early.codeCid), true)
    await assert.rejects(put(early.cid.toString(), early.manifest), typed('COVENANT_REFUSED'))
    assert.equal(await has(early.codeCid), false)
  })

  it('a peer cannot make nodes drop content by adding tags to it', async () => {
    const bytes = random(2048)
    const put = await (await client(0)).putBlock(bytes)
    stored.push({ cid: put.cid, bytes })
    const holder = devnet.nodes.find((n) => n.peerId === put.holders[0])!
    await prober.addAddresses(
      holder.peerId,
      holder.multiaddrs.map((a) => a.replace(/\/p2p\/.*$/, '')),
    )
    // tags as a claim: not part of the protocol any more
    await assert.rejects(
      prober.request(holder.peerId, BLOCK_PROTOCOL, { type: 'put', cid: put.cid, bytes, tags: ['nsfw'] }),
      typed('PROTOCOL_ERROR'),
    )
    // a manifest whose signature does not verify
    const key = await generateKey()
    const forged = new Uint8Array(
      createManifest(key, { code: cidForBytes(bytes), size: bytes.length, exports: ['f'], tags: ['nsfw'] })
        .bytes,
    )
    forged[forged.length - 1] ^= 1
    await assert.rejects(
      prober.request(holder.peerId, BLOCK_PROTOCOL, {
        type: 'put',
        cid: put.cid,
        bytes,
        manifests: [forged],
      }),
      typed('INVALID_SIGNATURE'),
    )
    // a signed manifest that names another block
    const other = fn(key, ['nsfw'])
    await assert.rejects(
      prober.request(holder.peerId, BLOCK_PROTOCOL, {
        type: 'put',
        cid: put.cid,
        bytes,
        manifests: [other.manifest],
      }),
      typed('INVALID_INPUT'),
    )
    // the block is still untagged everywhere: even the refusing node serves it
    assert.deepEqual(await (await client(REFUSER)).getBlock(put.cid), bytes)
    assert.equal((await holdersSeenBy(0, put.cid)).length, 3)
  })

  it('refuses malformed, oversized and mis-hashed block messages and keeps serving', async () => {
    const target = devnet.nodes[1]
    await prober.addAddresses(
      target.peerId,
      target.multiaddrs.map((a) => a.replace(/\/p2p\/.*$/, '')),
    )
    const raw = async (bytes: Uint8Array, prefixed: boolean): Promise<{ error?: { code: string } }> => {
      const stream = await prober.libp2p.dialProtocol(multiaddr(target.multiaddrs[0]), BLOCK_PROTOCOL)
      const lp = lpStream(stream)
      if (prefixed) await lp.write(bytes)
      else stream.send(bytes)
      return dagCbor.decode((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray())
    }
    assert.equal((await raw(new Uint8Array([0xde, 0xad, 0xbe, 0xef]), true)).error?.code, 'PROTOCOL_ERROR')
    assert.equal((await raw(dagCbor.encode({ type: 'put', cid: 'x' }), true)).error?.code, 'PROTOCOL_ERROR')
    assert.equal(
      (await raw(dagCbor.encode({ type: 'get', cid: 'not-a-cid' }), true)).error?.code,
      'INVALID_CID',
    )
    // a length prefix of 64 MiB, and no body: refused on the prefix alone
    assert.equal(
      (await raw(new Uint8Array([0x80, 0x80, 0x80, 0x20]), false)).error?.code,
      'MESSAGE_TOO_LARGE',
    )
    const good = random(256)
    const other = random(256)
    await assert.rejects(
      prober.request(target.peerId, BLOCK_PROTOCOL, {
        type: 'put',
        cid: cidForBytes(good).toString(),
        bytes: other,
      }),
      (e: CovenantError) => e.code === 'HASH_MISMATCH',
    )
    const has = await prober.request(target.peerId, BLOCK_PROTOCOL, {
      type: 'has',
      cids: [cidForBytes(good).toString()],
    })
    assert.deepEqual(has, { has: [false] })
    await assert.rejects(
      prober.request(target.peerId, BLOCK_PROTOCOL, { type: 'has', cids: Array(300).fill('x') }),
      (e: CovenantError) => e.code === 'PROTOCOL_ERROR',
    )
    // still serving
    const c = await client(1)
    const put = await c.putBlock(good)
    assert.deepEqual(await c.getBlock(put.cid), good)
    stored.push({ cid: put.cid, bytes: good })
  })

  it('replaces a holder killed with SIGKILL: the count returns to k', async () => {
    const bytes = random(4096)
    const put = await (await client(0)).putBlock(bytes)
    stored.push({ cid: put.cid, bytes })
    assert.equal(put.holders.length, 3)
    const victim =
      devnet.nodes.find((n) => n.peerId === put.holders[0] && n.index !== 0) ??
      devnet.nodes.find((n) => put.holders.includes(n.peerId) && n.index !== 0)!
    const observer = devnet.nodes.find((n) => n.index !== victim.index && n.index !== REFUSER)!
    const killedAt = Date.now()
    await devnet.kill(victim.index, 'SIGKILL')
    const holders = await waitFor('k live holders again', async () => {
      const h = await holdersSeenBy(observer.index, put.cid)
      return h.length >= 3 && !h.includes(victim.peerId) ? h : undefined
    })
    const repairMs = Date.now() - killedAt
    assert.equal(holders.length, 3)
    process.stderr.write(`# repair after SIGKILL restored k=3 holders in ${repairMs} ms\n`)
    await devnet.restart(victim.index)
    await devnet.waitConnected(20_000)
  })

  it('a restarted network still has every block', async () => {
    // its own blocks, through every node, and whatever the tests before it stored
    for (let i = 0; i < devnet.nodes.length; i++) {
      const bytes = random(512 + i)
      const put = await (await client(i)).putBlock(bytes)
      assert.equal(put.holders.length, 3)
      stored.push({ cid: put.cid, bytes })
    }
    await devnet.stop()
    devnet = await devnet.relaunch()
    for (const [i, s] of stored.entries()) {
      const reader = devnet.nodes[i % (devnet.nodes.length - 1)]
      const c = await connect({ node: reader.http })
      assert.deepEqual(await c.getBlock(s.cid), s.bytes)
    }
  })
})
