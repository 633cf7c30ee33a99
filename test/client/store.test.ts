/**
 * Datastores through the SDK against one real in-process node, which holds every namespace (it is
 * the only node): create, commit, read at versions, page, history, the same commit twice, racing
 * writers, grants and revocations, private reads, and everything a careless or hostile caller
 * sends. Replication between holders is tested on a devnet (test/node/services/datastore.test.ts).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { commitRoute, routePath } from '../../src/api/index.ts'
import { type CovenantClient, connect, generateKey, keyId, type PrivateKey } from '../../src/client/index.ts'
import { createFunctionCommit, createKeyCommit } from '../../src/datastore/index.ts'
import { DEVNET_COVENANT } from '../../src/devnet/index.ts'
import { toBase64 } from '../../src/encoding/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'
import { type CovenantNode, createNode } from '../../src/node/index.ts'

const rejectsWith = (p: Promise<unknown>, code: string, what?: string) =>
  assert.rejects(p, (e: CovenantError) => e.code === code, what ?? code)

describe('datastores through the SDK (one node)', () => {
  let dir: string
  let node: CovenantNode
  let net: CovenantClient
  let owner: PrivateKey
  let editor: PrivateKey
  let ns: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-store-sdk-'))
    // it executes too, so it can sign a certificate for the function-commit case
    node = await createNode({
      dataDir: join(dir, 'node'),
      covenant: DEVNET_COVENANT,
      defaultMetrics: false,
      logLevel: 'silent',
    })
    net = await connect({ node: node.url })
    ;[owner, editor] = await Promise.all([generateKey(), generateKey()])
    ns = (await net.createStore('site', { public: true, key: owner })).ns
  })
  after(async () => {
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('creates a namespace, commits several keys at once and reads them at every version', async () => {
    const created = await net.createStore('blog', { public: true, key: owner })
    assert.deepEqual(created.holders, [node.peerId])
    assert.equal(created.wanted, 3)
    const blog = net.store(created.ns, { key: owner })
    const first = await blog.commit([
      { key: 'title', value: 'Hello' },
      { key: 'posts/1', value: { text: 'one', tags: ['a'] } },
      { key: 'posts/2', value: 2 },
    ])
    assert.equal(first.seq, 1)
    assert.equal(first.duplicate, false)
    assert.deepEqual(first.holders, [node.peerId])
    const second = await blog.commit([
      { key: 'title', value: 'Hello again' },
      { key: 'posts/2', value: null },
    ])
    assert.equal(second.seq, 2)
    assert.deepEqual(await blog.get('title'), {
      ns: created.ns,
      key: 'title',
      value: 'Hello again',
      version: 2,
      at: 2,
    })
    assert.equal((await blog.get('title', { at: 1 })).value, 'Hello')
    assert.deepEqual(await blog.get('title', { at: 0 }), {
      ns: created.ns,
      key: 'title',
      value: null,
      version: 0,
      at: 0,
    })
    assert.equal((await blog.get('posts/2')).value, null, 'deleted')
    assert.deepEqual(
      (await blog.list({ prefix: 'posts/' })).keys.map((k) => k.key),
      ['posts/1'],
    )
    assert.deepEqual(
      (await blog.list({ prefix: 'posts/', at: 1 })).keys.map((k) => [k.key, k.value]),
      [
        ['posts/1', { text: 'one', tags: ['a'] }],
        ['posts/2', 2],
      ],
    )
    const history = await blog.history()
    assert.deepEqual(
      history.entries.map((e) => [e.seq, e.kind, e.keys.sort()]),
      [
        [1, 'key', ['posts/1', 'posts/2', 'title']],
        [2, 'key', ['posts/2', 'title']],
      ],
    )
    assert.equal(history.head.seq, 2)
    assert.equal(history.next, null)
    assert.deepEqual((await blog.keyHistory('title')).versions, [
      { value: 'Hello again', version: 2 },
      { value: 'Hello', version: 1 },
    ])
    const info = await blog.info()
    assert.equal(info.owner, keyId(owner))
    assert.equal(info.name, 'blog')
    assert.equal(info.head.seq, 2)
    assert.deepEqual(info.holders, [node.peerId])
    // keys with slashes, spaces and URL characters travel in the path
    for (const key of ['a/b/c', 'x/history', 'é ü', '100%', 'q?x=1#y', '.hidden'])
      await blog.commit([{ key, value: key }])
    for (const key of ['a/b/c', 'x/history', 'é ü', '100%', 'q?x=1#y', '.hidden'])
      assert.equal((await blog.get(key)).value, key, key)
  })

  it('pages through keys and history', async () => {
    const paged = net.store((await net.createStore('paged', { public: true, key: owner })).ns, { key: owner })
    for (let i = 0; i < 5; i++) await paged.commit([{ key: `k${i}`, value: i }])
    const first = await paged.list({ limit: 2 })
    assert.deepEqual(
      first.keys.map((k) => k.key),
      ['k0', 'k1'],
    )
    assert.equal(first.next, 'k1')
    const rest = await paged.list({ after: first.next!, limit: 10 })
    assert.deepEqual(
      rest.keys.map((k) => k.key),
      ['k2', 'k3', 'k4'],
    )
    assert.equal(rest.next, null)
    const h = await paged.history({ limit: 3 })
    assert.deepEqual(
      h.entries.map((e) => e.seq),
      [1, 2, 3],
    )
    assert.equal(h.next, 3)
    assert.deepEqual(
      (await paged.history({ after: 3 })).entries.map((e) => e.seq),
      [4, 5],
    )
  })

  it('applies the same commit once: sent again, it answers the earlier result', async () => {
    const handle = net.store(ns)
    const commit = await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'once', value: 1 }] })
    const first = await handle.send(commit)
    const again = await handle.send(commit)
    assert.equal(again.duplicate, true)
    assert.deepEqual({ ...again, duplicate: false }, first)
    const history = await handle.history()
    assert.equal(history.entries.filter((e) => e.id === commit.id).length, 1)
  })

  it('lets one of two racing writers win; the other gets WRITE_CONFLICT, reads again and lands its write', async () => {
    const handle = net.store(ns, { key: owner })
    await handle.commit([{ key: 'guests', value: [] }])
    const read = await handle.get('guests')
    const write = (name: string, seen: typeof read) =>
      handle.commit([{ key: 'guests', value: [...(seen.value as string[]), name] }], {
        reads: [{ key: 'guests', version: seen.version }],
      })
    const results = await Promise.allSettled([write('ada', read), write('bob', read)])
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r) => r.status === 'rejected')
    assert.equal(won.length, 1)
    assert.equal(lost.length, 1)
    assert.equal(((lost[0] as PromiseRejectedResult).reason as CovenantError).code, 'WRITE_CONFLICT')
    const loser = results[0].status === 'rejected' ? 'ada' : 'bob'
    await write(loser, await handle.get('guests'))
    assert.deepEqual(((await handle.get('guests')).value as string[]).sort(), ['ada', 'bob'])
  })

  it('takes writes from a delegate within its grant, and honours a revocation from then on', async () => {
    const grant = await net.grant({
      namespace: ns,
      audience: keyId(editor),
      prefix: 'pages/',
      expiresAt: Date.now() + 3_600_000,
      key: owner,
    })
    const asEditor = net.store(ns, { key: editor })
    assert.equal(
      (await asEditor.commit([{ key: 'pages/home', value: '<h1>' }], { grants: [grant] })).duplicate,
      false,
    )
    await rejectsWith(
      asEditor.commit([{ key: 'title', value: 'defaced' }], { grants: [grant] }),
      'GRANT_WIDENED',
    )
    await rejectsWith(asEditor.commit([{ key: 'pages/x', value: 1 }]), 'GRANT_MISSING')
    // another key cannot use the editor's grant
    await rejectsWith(
      net.store(ns, { key: await generateKey() }).commit([{ key: 'pages/x', value: 1 }], { grants: [grant] }),
      'GRANT_WRONG_AUDIENCE',
    )
    // the editor cannot revoke the owner's delegation to it... it issued nothing
    await rejectsWith(net.revoke(ns, { grant, key: editor }), 'REVOCATION_REFUSED')
    // the revocation is an entry of the history
    const revoked = await net.revoke(ns, { grant, key: owner })
    assert.equal(revoked.duplicate, false)
    assert.deepEqual(revoked.holders, [node.peerId])
    const entry = (await net.store(ns).history({ after: revoked.seq - 1, limit: 1 })).entries[0]
    assert.deepEqual([entry.kind, entry.id, entry.keys], ['revocation', revoked.id, []])
    await rejectsWith(
      asEditor.commit([{ key: 'pages/home', value: '<h2>' }], { grants: [grant] }),
      'GRANT_REVOKED',
    )
    assert.equal((await asEditor.get('pages/home')).value, '<h1>', 'the write before the revocation stands')
    const kept = await net.store(ns).revocations()
    assert.equal(kept.length, 1)
    // handing the same revocation again changes nothing
    const again = await net.store(ns).sendRevocation(kept[0])
    assert.deepEqual([again.duplicate, again.cid], [true, revoked.cid])
    assert.equal((await net.store(ns).revocations()).length, 1)
  })

  it('serves a private namespace to its owner only, with a signed read', async () => {
    const secret = (await net.createStore('diary', { key: owner })).ns
    await net.store(secret, { key: owner }).commit([{ key: 'day1', value: 'rain' }])
    assert.equal((await net.store(secret, { key: owner }).get('day1')).value, 'rain')
    assert.equal((await net.store(secret, { key: owner }).list()).keys.length, 1)
    const info = await net.store(secret).info()
    assert.equal(info.public, false, 'the descriptor itself is public')
    for (const handle of [net.store(secret), net.store(secret, { key: editor })]) {
      await rejectsWith(handle.get('day1'), 'READ_REFUSED')
      await rejectsWith(handle.list(), 'READ_REFUSED')
      await rejectsWith(handle.history(), 'READ_REFUSED')
      await rejectsWith(handle.keyHistory('day1'), 'READ_REFUSED')
    }
    // a signed read for another namespace, or garbage, is no read of this one
    const path = `/v1/stores/${secret}/keys/day1`
    const otherRead = toBase64(
      dagCbor.encode({ v: 1, ns, reader: keyId(owner), issuedAt: Date.now(), signature: new Uint8Array(64) }),
    )
    for (const reader of [otherRead, 'AAAA', 'not base64!']) {
      const res = await fetch(`${node.url}${path}?reader=${encodeURIComponent(reader)}`)
      assert.ok([400, 403].includes(res.status), reader)
    }
  })

  it('commits a function’s certified writes through the gateway, and refuses writes its receipts do not sign', async () => {
    const publisher = await generateKey()
    const fn = await net.deploy(
      "export function main(ns, ctx) { ctx.store.put(ns, 'x', 'certified'); return 1 }\nexport function idle() { return 1 }\n",
      { key: publisher, exports: ['main', 'idle'] },
    )
    const policyNs = (
      await net.createStore('fn-writes', {
        public: true,
        key: owner,
        policy: { minReplicas: 1, minQuorum: 1 },
      })
    ).ns
    const grant = await net.grant({
      namespace: policyNs,
      audience: { fn: fn.cid },
      expiresAt: Date.now() + 3_600_000,
      key: owner,
    })
    await net.store(policyNs, { key: owner }).keepGrants([grant])
    // this node is the one executor, and the one holder
    const result = await net.invoke(fn.cid, 'main', [policyNs], {
      replicas: 1,
      quorum: 1,
      trust: { minQuorum: 1 },
      key: await generateKey(),
    })
    assert.equal(result.commits.length, 1)
    const applied = result.commits[0]
    assert.ok(!('error' in applied) && applied.duplicate === false && applied.id === result.certificate.id)
    assert.deepEqual(await net.store(policyNs).get('x'), {
      ns: policyNs,
      key: 'x',
      value: 'certified',
      version: applied.seq,
      at: applied.seq,
    })
    // the same certificate again, even with another value written, is the run already applied
    const output = structuredClone(result.output)
    output.store![0].writes[0].value = 'forged'
    const replayed = await net.store(policyNs).send(
      createFunctionCommit({
        request: result.certificate.id,
        effects: output.store![0],
        certificate: result.certificate,
        output,
      }),
    )
    assert.deepEqual([replayed.duplicate, replayed.seq], [true, applied.seq])
    // a run that wrote nothing, given writes afterwards: its receipt does not sign them
    const idle = await net.invoke(fn.cid, 'idle', [], {
      replicas: 1,
      quorum: 1,
      trust: { minQuorum: 1 },
      key: await generateKey(),
    })
    assert.deepEqual(idle.commits, [])
    const added = { ...idle.output, store: output.store }
    await assert.rejects(
      net.store(policyNs).send(
        createFunctionCommit({
          request: idle.certificate.id,
          effects: output.store![0],
          certificate: idle.certificate,
          output: added,
        }),
      ),
      (e: CovenantError) => e.code === 'INVALID_CERTIFICATE' && /does not match/.test(e.message),
    )
    assert.equal((await net.store(policyNs).get('x')).value, 'certified')
  })

  it('answers every bad input with a typed error, and keeps serving', async () => {
    const handle = net.store(ns, { key: owner })
    await rejectsWith(net.store('not-a-namespace').get('k'), 'INVALID_INPUT')
    await rejectsWith(
      net.store('bafyreigh2akiscaildc4ms2m5rutkxqbzmnvsk6oygiuzjsaw7sgu3fv4i').info(),
      'NAMESPACE_NOT_FOUND',
    )
    await rejectsWith(handle.get('title', { at: 10_000 }), 'INVALID_INPUT')
    await rejectsWith(handle.get('..'), 'NOT_FOUND')
    await rejectsWith(handle.commit([{ key: '..', value: 1 }]), 'INVALID_INPUT')
    await rejectsWith(
      handle.commit([{ key: 'k', value: 1 }], { reads: [{ key: 'k', version: -1 }] }),
      'INVALID_INPUT',
    )
    const post = (body: unknown, path = routePath(commitRoute, { ns })) =>
      fetch(`${node.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (res) => ({
        status: res.status,
        code: ((await res.json()) as { error?: { code: string } }).error?.code,
      }))
    assert.deepEqual(await post({ commit: 'not base64!' }), { status: 400, code: 'INVALID_INPUT' })
    assert.deepEqual(await post({ commit: toBase64(new Uint8Array([0xff, 0x00])) }), {
      status: 400,
      code: 'ENTRY_INVALID',
    })
    assert.deepEqual(await post({ commit: toBase64(dagCbor.encode({ hello: 'world' })) }), {
      status: 400,
      code: 'ENTRY_INVALID',
    })
    const elsewhere = await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'k', value: 1 }] })
    const otherNs = (await net.createStore('other', { public: true, key: owner })).ns
    assert.deepEqual(
      await post({ commit: toBase64(dagCbor.encode(elsewhere)) }, routePath(commitRoute, { ns: otherNs })),
      {
        status: 400,
        code: 'INVALID_INPUT',
      },
    )
    // a commit whose writes were changed after the writer signed them
    const tampered = { ...elsewhere, writes: [{ key: 'k', value: 'evil' }] }
    await rejectsWith(handle.send(tampered), 'GRANT_FORGED')
    // a commit too large
    const huge = 'x'.repeat(1024 * 1024 + 10)
    await rejectsWith(handle.commit([{ key: 'big', value: huge }]), 'STORE_LIMIT')
    // a descriptor signed by someone else, or a version 2 as a genesis
    const res = await fetch(`${node.url}/v1/stores`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        descriptor: { v: 1, owner: keyId(owner), name: 'x', signature: toBase64(new Uint8Array(64)) },
      }),
    })
    assert.equal(res.status, 400)
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'NAMESPACE_INVALID')
    // still serving
    assert.equal((await handle.commit([{ key: 'after', value: true }])).duplicate, false)
  })

  it('parses every store reply with its schema: a node that answers something else gets PROTOCOL_ERROR', async () => {
    let answer = ''
    const odd = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(answer)
    })
    await new Promise<void>((res) => odd.listen(0, '127.0.0.1', res))
    try {
      const c = await connect({ node: `http://127.0.0.1:${(odd.address() as AddressInfo).port}` })
      const h = c.store(ns, { key: owner })
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['createStore', () => c.createStore('x', { key: owner })],
        ['info', () => h.info()],
        ['get', () => h.get('k')],
        ['list', () => h.list()],
        ['history', () => h.history()],
        ['keyHistory', () => h.keyHistory('k')],
        ['commit', () => h.commit([{ key: 'k', value: 1 }])],
        ['revocations', () => h.revocations()],
      ]
      for (const body of ['', 'null', '{"ns": 5}', '{"value": {"a": 1}, "version": -1}']) {
        answer = body
        for (const [what, call] of calls) await rejectsWith(call(), 'PROTOCOL_ERROR', `${what} ${body}`)
      }
      // a node that names another namespace than the one signed
      answer = JSON.stringify({ ns, holders: [], wanted: 3, head: { seq: 0, cid: ns, at: 0 } })
      await rejectsWith(c.createStore('not-site', { key: owner }), 'PROTOCOL_ERROR')
    } finally {
      await new Promise((res) => odd.close(res))
    }
  })
})
