/** The SDK against a real in-process node over HTTP, the devnet lookup, and a lying node. */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  CovenantClient,
  connect,
  defaultKeyPath,
  generateKey,
  loadCallerKey,
} from '../../src/client/index.ts'
import { cidForBytes, createManifest } from '../../src/content/index.ts'
import { signedCovenantFromJSON } from '../../src/covenant/index.ts'
import { DEVNET_COVENANT } from '../../src/devnet/index.ts'
import { toBase64 } from '../../src/encoding/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { keyId } from '../../src/keys/index.ts'
import { type CovenantNode, createNode } from '../../src/node/index.ts'
import { waitFor } from '../fixtures/network.ts'

describe('client SDK', () => {
  let dir: string
  let node: CovenantNode
  let liar: Server
  let liarUrl: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-client-'))
    node = await createNode({ dataDir: join(dir, 'node'), defaultMetrics: false, logLevel: 'silent' })
    // A node that answers every block request with the wrong bytes.
    liar = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.end('not what you asked for')
    })
    await new Promise<void>((res) => liar.listen(0, '127.0.0.1', res))
    liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`
  })
  after(async () => {
    await node?.stop()
    await new Promise((res) => liar?.close(res))
    await rm(dir, { recursive: true, force: true })
  })

  it('reads the node and its peers, checking the covenant signature', async () => {
    const c = await connect({ node: node.url })
    const info = await c.node()
    assert.equal(info.peerId, node.peerId)
    assert.equal(info.signedCovenant.peer, node.peerId)
    const peers = await c.peers()
    assert.equal(peers[0].id, node.peerId)
    assert.equal(signedCovenantFromJSON(peers[0].covenant).peer, node.peerId)
  })

  it('puts and gets a block, and deploys and reads a function', async () => {
    const c = await connect({ node: node.url })
    const bytes = crypto.getRandomValues(new Uint8Array(3000))
    const put = await c.putBlock(bytes)
    assert.equal(put.cid, cidForBytes(bytes).toString())
    assert.deepEqual(await c.getBlock(put.cid), bytes)
    const key = await loadCallerKey(join(dir, 'caller.key'))
    const deployed = await c.deploy('export function a() { return 1 }\nexport default 2\n', {
      key,
      name: 'a',
    })
    assert.deepEqual(deployed.exports, ['a', 'default'])
    const fn = await c.getFunction(deployed.cid)
    assert.equal(fn.manifest.publisher, keyId(key))
    assert.equal(fn.manifest.name, 'a')
  })

  it('takes the gateway and its view from devnet.json, from `nodes`, or from pinned covenants', async () => {
    const devnetDir = join(dir, 'devnet')
    await mkdir(devnetDir, { recursive: true })
    const other = 'http://127.0.0.1:1'
    const file = {
      nodes: [
        { index: 0, peerId: node.peerId, multiaddrs: [], http: node.url, dataDir: 'x' },
        { index: 1, peerId: node.peerId, multiaddrs: [], http: other, dataDir: 'y' },
      ],
    }
    await writeFile(join(devnetDir, 'devnet.json'), JSON.stringify(file))
    const c = await connect({ devnetDir })
    assert.equal(c.url, node.url)
    assert.deepEqual(c.viewFrom, [node.url, other])
    // one of the two nodes does not answer: no majority lists anyone
    assert.equal((await c.view()).peers.size, 0)
    // the gateway alone: its word
    const alone = await connect({ node: node.url })
    assert.deepEqual(alone.viewFrom, [node.url])
    assert.deepEqual([...(await alone.view()).peers.keys()], [node.peerId])
    // a gateway named, the view from the devnet
    assert.deepEqual((await connect({ node: other, devnetDir })).viewFrom, [node.url, other])
    // `nodes`: the first is the gateway
    const listed = await connect({ nodes: [node.url, node.url, other] })
    assert.equal(listed.url, node.url)
    assert.equal((await listed.view()).peers.size, 1)
    // pinned covenants: nobody is asked
    const pinned = await connect({ node: other, covenants: [(await c.node()).signedCovenant] })
    assert.deepEqual(pinned.viewFrom, [])
    assert.deepEqual([...(await pinned.view()).peers.keys()], [node.peerId])
    await assert.rejects(
      (await connect({ nodes: [other] })).view(),
      (e: CovenantError) => e.code === 'NODE_UNREACHABLE',
    )
    // a node that fails once: the next call asks again rather than keep the failure
    let failures = 1
    const flaky = createServer(async (req, res) => {
      if (failures-- > 0) return res.writeHead(500).end()
      const upstream = await fetch(`${node.url}${req.url}`)
      res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text())
    })
    await new Promise<void>((res) => flaky.listen(0, '127.0.0.1', res))
    try {
      const client = await connect({ node: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}` })
      await assert.rejects(client.view(), (e: CovenantError) => e.code === 'NODE_UNREACHABLE')
      assert.deepEqual([...(await client.view()).peers.keys()], [node.peerId])
    } finally {
      await new Promise((res) => flaky.close(res))
    }
    assert.throws(
      () => new CovenantClient(node.url, { trust: { minQuorum: 0 } }),
      (e: CovenantError) => e.code === 'INVALID_INPUT',
    )
    await assert.rejects(
      connect({ devnetDir: join(dir, 'nowhere') }),
      (e: CovenantError) => e.code === 'NODE_UNREACHABLE' && e.hint !== undefined,
    )
  })

  it('refuses bytes that do not hash to the CID, whatever the node says', async () => {
    const c = await connect({ node: liarUrl })
    await assert.rejects(
      c.getBlock(cidForBytes(new Uint8Array([1, 2, 3]))),
      (e: CovenantError) => e.code === 'HASH_MISMATCH',
    )
  })

  it('turns error bodies into CovenantErrors and a dead node into NODE_UNREACHABLE', async () => {
    const c = await connect({ node: node.url })
    await assert.rejects(
      c.getBlock(cidForBytes(new Uint8Array([7]))),
      (e: CovenantError) => e.code === 'BLOCK_NOT_FOUND',
    )
    const dead = await connect({ node: 'http://127.0.0.1:1' })
    await assert.rejects(dead.node(), (e: CovenantError) => e.code === 'NODE_UNREACHABLE')
  })

  it('deploys a file from Node, bundled with its npm import, to the same CID every time', async () => {
    const c = await connect({ node: node.url })
    const key = await loadCallerKey(join(dir, 'caller.key'))
    const file = new URL('../../examples/markdown.ts', import.meta.url)
    const first = await c.deploy({ file }, { key, tags: ['demo'] })
    assert.deepEqual(first.exports, ['outline', 'render'])
    const again = await c.deploy({ file: file.pathname }, { key, tags: ['demo'] })
    assert.equal(again.cid, first.cid, 'the same code deploys to the same function')
    assert.equal(again.codeCid, first.codeCid)
    await assert.rejects(
      c.deploy({ file: join(dir, 'missing.ts') }, { key }),
      (e: CovenantError) => e.code === 'NOT_FOUND',
    )
  })

  it('refuses, at deploy time, a module that imports another, and TypeScript source, saying what to do', async () => {
    const c = await connect({ node: node.url })
    const key = await loadCallerKey(join(dir, 'caller.key'))
    await assert.rejects(
      c.deploy("import { parse } from 'yaml'\nexport const read = (t) => parse(t)\n", { key }),
      (e: CovenantError) =>
        e.code === 'INVALID_CODE' && /"yaml"/.test(e.message) && /deploy\(\{ file/.test(e.message),
    )
    await assert.rejects(
      c.deploy('export const add = (a: number, b: number): number => a + b\n', { key }),
      (e: CovenantError) =>
        e.code === 'INVALID_CODE' && /TypeScript/.test(e.message) && /:1:/.test(e.message),
    )
    await assert.rejects(
      c.deploy('export const = ;', { key }),
      (e: CovenantError) => e.code === 'INVALID_CODE',
    )
  })

  it('is refused by the node too: code with an import, or a manifest naming exports the code lacks', async () => {
    // what a client that skips its own checks (or a browser) sends, straight to the route
    const key = await generateKey()
    const post = async (source: string, exports: string[]) => {
      const code = new TextEncoder().encode(source)
      const { bytes } = createManifest(key, { code: cidForBytes(code), size: code.length, exports })
      const res = await fetch(`${node.url}/v1/functions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: source, manifest: toBase64(bytes) }),
      })
      return {
        status: res.status,
        error: ((await res.json()) as { error?: { code: string; message: string } }).error,
      }
    }
    const imported = await post("import yaml from 'yaml'\nexport const f = () => yaml\n", ['f'])
    assert.equal(imported.status, 422)
    assert.equal(imported.error?.code, 'INVALID_CODE')
    assert.match(imported.error!.message, /"yaml"/)
    const lying = await post('export const f = () => 1\n', ['f', 'steal'])
    assert.equal(lying.error?.code, 'INVALID_CODE')
    assert.match(lying.error!.message, /steal/)
    assert.equal((await post('export const f = () => 1\n', ['f'])).status, 200)
  })

  it('inspects a module on the node, as a browser must, resolving nothing', async () => {
    const c = await connect({ node: node.url })
    const js = await c.inspect("import x from '/etc/passwd'\nexport const f = () => x\nexport default 1\n")
    assert.deepEqual(js.exports, ['default', 'f'])
    assert.deepEqual(js.imports, [{ path: '/etc/passwd', kind: 'import-statement' }])
    const ts = await c.inspect('export const f = (a: number): number => a\n', { typescript: true })
    assert.deepEqual(ts.exports, ['f'])
    assert.doesNotMatch(ts.code, /number/)
    await assert.rejects(c.inspect('export const = ;'), (e: CovenantError) => e.code === 'INVALID_CODE')
  })

  it('places the caller key under COVENANT_HOME', async () => {
    const before = process.env.COVENANT_HOME
    process.env.COVENANT_HOME = join(dir, 'home')
    try {
      assert.equal(await defaultKeyPath(), join(dir, 'home', 'key'))
      const k1 = await loadCallerKey()
      const k2 = await loadCallerKey()
      assert.equal(keyId(k1), keyId(k2))
    } finally {
      if (before === undefined) delete process.env.COVENANT_HOME
      else process.env.COVENANT_HOME = before
    }
  })

  it('parses every reply with its schema: a node that answers something else gets PROTOCOL_ERROR', async () => {
    let answer = ''
    let status = 200
    const odd = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(answer)
    })
    await new Promise<void>((res) => odd.listen(0, '127.0.0.1', res))
    try {
      const c = await connect({ node: `http://127.0.0.1:${(odd.address() as AddressInfo).port}` })
      const key = await generateKey()
      const cid = cidForBytes(new Uint8Array([1]))
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['node', () => c.node()],
        ['peers', () => c.peers()],
        ['holders', () => c.holders(cid)],
        ['getFunction', () => c.getFunction(cidForBytes(new Uint8Array([1]), 'dag-cbor'))],
        ['putBlock', () => c.putBlock(new Uint8Array([1]))],
        ['deploy', () => c.deploy('export const a = 1', { key, exports: ['a'] })],
        ['inspect', () => c.inspect('export const a = 1')],
        ['storage', () => c.storage()],
      ]
      for (const body of ['', '<html>hello</html>', 'null', '[]', '{"peerId": 5, "peers": [{}], "cid": 7}']) {
        answer = body
        for (const [what, call] of calls)
          await assert.rejects(call(), (e: CovenantError) => e.code === 'PROTOCOL_ERROR', `${what} ${body}`)
      }
      // a reply to invoke whose envelope is wrong is PROTOCOL_ERROR; whose certificate or output is
      // wrong, INVALID_CERTIFICATE (it cannot verify)
      const fn = cidForBytes(new Uint8Array([2]), 'dag-cbor').toString()
      // a quorum below what this client accepts is refused before anything is sent
      await assert.rejects(
        c.invoke(fn, 'a', [], { key, replicas: 1, quorum: 1 }),
        (e: CovenantError) => e.code === 'INVALID_REQUEST' && /minQuorum/.test(e.message),
      )
      for (const [body, code] of [
        ['{"output": {"value": 1, "logs": [], "error": null}, "certificate": {}}', 'INVALID_CERTIFICATE'],
        ['{"output": {"value": 1}, "certificate": {}}', 'INVALID_CERTIFICATE'],
        [
          '{"output": {"value": 1, "logs": [], "error": null}, "certificate": {}, "tried": 5}',
          'INVALID_CERTIFICATE',
        ],
        ['{"certificate": 5}', 'INVALID_CERTIFICATE'],
        ['"no"', 'PROTOCOL_ERROR'],
      ] as const) {
        answer = body
        await assert.rejects(c.invoke(fn, 'a', [], { key }), (e: CovenantError) => e.code === code, body)
      }
      // an error status needs an error body
      status = 500
      answer = '{"error": {"code": "NOT_A_CODE", "message": "x"}}'
      await assert.rejects(c.peers(), (e: CovenantError) => e.code === 'PROTOCOL_ERROR')
      answer = 'oops'
      await assert.rejects(c.peers(), (e: CovenantError) => e.code === 'PROTOCOL_ERROR')
      answer = '{"error": {"code": "STORAGE_FULL", "message": "full", "details": {"used": 1}}}'
      await assert.rejects(c.peers(), (e: CovenantError) => e.code === 'STORAGE_FULL' && e.message === 'full')
    } finally {
      await new Promise((res) => odd.close(res))
    }
  })
})

describe('client SDK: the view follows the network', () => {
  let dir: string
  const nodes: CovenantNode[] = []
  after(async () => {
    for (const n of nodes.reverse()) await n.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('rebuilds its view once when a certificate names a peer that joined after it was built', async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-client-view-'))
    const start = (name: string, bootstrap: string[] = []) =>
      createNode({
        dataDir: join(dir, name),
        covenant: DEVNET_COVENANT,
        bootstrap,
        heartbeatMs: 500,
        helloTimeoutMs: 5000,
        defaultMetrics: false,
        logLevel: 'silent',
      })
    nodes.push(await start('a'))
    const [a] = nodes
    const client = await connect({ node: a.url })
    const key = await generateKey()
    // the view as it was: A alone
    assert.deepEqual([...(await client.view()).peers.keys()], [a.peerId])
    nodes.push(await start('b', a.multiaddrs()))
    const b = nodes[1]
    await waitFor('A to see B alive', async () =>
      (await client.peers()).some((p) => p.id === b.peerId && p.alive) ? true : undefined,
    )
    const { cid } = await client.deploy('export function add(a, b) { return a + b }', {
      key,
      exports: ['add'],
    })
    // k = 2 of two nodes: B signs, and the client's view (still fresh by its age) does not know B
    const result = await client.invoke(cid, 'add', [2, 3], { key, replicas: 2, quorum: 2 })
    assert.equal(result.value, 5)
    assert.ok(result.certificate.receipts.some((r) => r.executor === b.peerId))
    assert.deepEqual([...(await client.view()).peers.keys()].sort(), [a.peerId, b.peerId].sort())
    // a caller that may not rebuild (pinned covenants) refuses the same certificate
    const pinned = await connect({ node: a.url, covenants: [(await client.node()).signedCovenant] })
    await assert.rejects(
      pinned.verify(result.certificate, { output: result.output }),
      (e: CovenantError) => e.code === 'INVALID_CERTIFICATE',
    )
  })
})
