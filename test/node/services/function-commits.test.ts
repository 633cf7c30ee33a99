/**
 * Functions that write, on a real 5-node devnet (k = 3): the guestbook (examples/guestbook)
 * deployed, its namespace created and its function granted the keys it writes, as its owner sets
 * it up. Callers sign it through a gateway, which runs the function on the executors the selection
 * picks, reading at the versions the request fixes, and hands the certificate to the namespace's
 * holders, who check it against their own view and apply the writes (a function's deletes with
 * its puts too). Then every way around it: racing callers, a modified function, direct writes, a
 * run below the write policy, certifiers the policy does not vouch for, replays, forged receipts
 * and outputs, keys outside the network. Each is refused, and the guestbook is unchanged.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { GUESTBOOK_FUNCTION, type Guestbook, setUpGuestbook } from '../../../examples/guestbook/setup.ts'
import { invokeRoute } from '../../../src/api/index.ts'
import { bundleFile } from '../../../src/bundle/index.ts'
import {
  type CovenantClient,
  certificateFromJSON,
  connect,
  createFunctionCommit,
  generateKey,
  type PrivateKey,
} from '../../../src/client/index.ts'
import { createKeyCommit } from '../../../src/datastore/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import {
  type Certificate,
  type Output,
  outputHash,
  requestToJSON,
  signReceipt,
} from '../../../src/exec/index.ts'
import { keyId } from '../../../src/keys/index.ts'
import { SANDBOX_BUILD } from '../../../src/sandbox/index.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'

/** A function that moves a value from one key to another: a read, a put and a delete. */
const MOVE = `export async function move(ns, from, to, ctx) {
  const value = await ctx.store.get(ns, from)
  if (value === null || value === undefined) throw new Error(from + ' is empty')
  ctx.store.put(ns, to, value)
  ctx.store.delete(ns, from)
  return value
}
`

describe('functions that write, on a 5-node devnet', { timeout: 300_000 }, () => {
  let devnet: TestDevnet
  let net: CovenantClient
  let owner: PrivateKey
  let book: Guestbook
  /** a certified run whose writes were applied, and one whose commit was refused */
  let applied: { certificate: Certificate; output: Output; seq: number }
  let conflicted: { certificate: Certificate; output: Output }

  const rejectsWith = (p: Promise<unknown>, code: string, message?: RegExp) =>
    assert.rejects(
      p,
      (e: CovenantError) => e.code === code && (message === undefined || message.test(e.message)),
      code,
    )

  /** Signs the guestbook as `key`, fixing the namespace at its head. */
  const sign = (
    key: PrivateKey,
    name: string,
    text: string,
    extra: Parameters<CovenantClient['invoke']>[3] = {},
  ) => net.invoke(book.fn, 'sign', [book.ns, name, text], { stores: [book.ns], key, ...extra })

  /** What a reader sees of the guestbook: every entry and the count. */
  const contents = async (ns = book.ns) => {
    const view = net.store(ns)
    const [entries, count] = await Promise.all([view.list({ prefix: 'entries/' }), view.get('count')])
    return { entries: entries.keys.map((k) => k.value), count: count.value }
  }

  /**
   * The applied run's certificate sent again, and its very request through another gateway while
   * it is live: the executors answer what they answered (a function never runs twice for one
   * request), and the holders what they applied.
   */
  const replays = async () => {
    const { certificate, output, seq } = applied
    const again = await net
      .store(book.ns)
      .send(createFunctionCommit({ request: certificate.id, effects: output.store![0], certificate, output }))
    assert.deepEqual([again.duplicate, again.seq], [true, seq])
    const res = await fetch(`${devnet.nodes[1].http}${invokeRoute.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request: requestToJSON(certificate.request) }),
    })
    const reply = invokeRoute.reply.parse(await res.json())
    assert.equal(certificateFromJSON(reply.certificate).outputHash, certificate.outputHash)
    assert.deepEqual(
      reply.commits.map((c) => ('error' in c ? c.error.code : [c.duplicate, c.seq])),
      [[true, seq]],
    )
  }

  before(async () => {
    devnet = await startTestDevnet({ nodes: 5 })
    owner = await generateKey()
    net = await connect({ nodes: devnet.nodes.map((n) => n.http) })
    book = await setUpGuestbook(net, owner)
  })
  after(() => devnet?.cleanup())

  it('certifies a function’s write and applies it on every holder; replays of the certificate or the request change nothing', async () => {
    const ada = await generateKey()
    const result = await sign(ada, 'Ada', '  hello, world  ')
    assert.deepEqual(result.value, {
      n: 0,
      name: 'Ada',
      text: 'hello, world',
      author: keyId(ada),
      at: result.certificate.request.timestamp,
    })
    assert.equal(result.commits.length, 1)
    const commit = result.commits[0]
    assert.ok(!('error' in commit), 'applied')
    assert.equal(commit.id, result.certificate.id)
    applied = { certificate: result.certificate, output: result.output, seq: commit.seq }
    await replays()
    // each holder holds it in its own copy
    const { holders } = await net.store(book.ns).info()
    assert.equal(holders.length, 3)
    for (const holder of holders) {
      const node = devnet.nodes.find((n) => n.peerId === holder)!
      const own = (await connect({ node: node.http })).store(book.ns)
      const entry = await waitFor(`entry 0 on ${holder}`, async () => {
        const [info, got] = await Promise.all([own.info(), own.get('entries/00000000')])
        return info.servedBy === holder && got.value !== null ? got : undefined
      })
      assert.deepEqual(entry.value, result.value)
      assert.equal(entry.version, commit.seq)
    }
    // the function's mistakes are certified failures, which write nothing
    await rejectsWith(sign(ada, '', 'no name'), 'USER_ERROR', /name is empty/)
    await rejectsWith(sign(ada, 'Ada', 'x'.repeat(281)), 'USER_ERROR', /longer than 280/)
    // a read of a namespace the request does not fix is the function's failure too
    await rejectsWith(
      net.invoke(book.fn, 'sign', [book.ns, 'Ada', 'unfixed'], { key: ada }),
      'STORE_NOT_FIXED',
    )
    assert.deepEqual(await contents(), { entries: [result.value], count: 1 })
  })

  it('applies a function’s deletes with its puts, in one entry, on every holder', async () => {
    const { cid: fn } = await net.deploy(MOVE, { key: owner, exports: ['move'] })
    const { ns } = await net.createStore('parcels', { public: true, key: owner })
    const keeper = net.store(ns, { key: owner })
    const grant = await net.grant({
      namespace: ns,
      audience: { fn },
      prefix: 'box/',
      expiresAt: Date.now() + 3_600_000,
      key: owner,
    })
    await keeper.keepGrants([grant])
    const put = await keeper.commit([{ key: 'box/a', value: 'parcel' }])
    const gus = await generateKey()
    const move = (from: string, to: string) =>
      net.invoke(fn, 'move', [ns, from, to], { stores: [ns], key: gus })
    const moved = await move('box/a', 'box/b')
    assert.equal(moved.value, 'parcel')
    const commit = moved.commits[0]
    assert.ok(!('error' in commit), 'applied')
    assert.equal(commit.seq, put.seq + 1)
    const { holders } = await net.store(ns).info()
    for (const holder of holders) {
      const node = devnet.nodes.find((n) => n.peerId === holder)!
      const own = (await connect({ node: node.http })).store(ns)
      const b = await waitFor(`the move on ${holder}`, async () => {
        const [info, got] = await Promise.all([own.info(), own.get('box/b')])
        return info.servedBy === holder && got.value !== null ? got : undefined
      })
      assert.deepEqual([b.value, b.version], ['parcel', commit.seq], holder)
      // the key is gone at the entry that moved it, and still there at the version before
      assert.equal((await own.get('box/a')).value, null, holder)
      assert.equal((await own.get('box/a', { at: put.seq })).value, 'parcel', holder)
    }
    // moving the deleted key again: the function's certified failure, which writes nothing
    await rejectsWith(move('box/a', 'box/c'), 'USER_ERROR', /box\/a is empty/)
    assert.deepEqual(
      (await net.store(ns).list({ prefix: 'box/' })).keys.map((k) => [k.key, k.value]),
      [['box/b', 'parcel']],
    )
  })

  it('lets one of two callers racing on the same version win; the other gets WRITE_CONFLICT, and nothing is lost', async () => {
    const [bea, cal] = await Promise.all([generateKey(), generateKey()])
    const { head } = await net.store(book.ns).info()
    const reads = { [book.ns]: head.seq }
    const outcomes = await Promise.allSettled([
      sign(bea, 'Bea', 'first?', { reads }),
      sign(cal, 'Cal', 'first?', { reads }),
    ])
    const won = outcomes.filter((o) => o.status === 'fulfilled')
    const lost = outcomes.filter((o) => o.status === 'rejected')
    assert.equal(won.length, 1, 'one commit applies')
    assert.equal(lost.length, 1)
    const error = lost[0].reason as CovenantError
    assert.equal(error.code, 'WRITE_CONFLICT')
    const details = error.details as { certificate: unknown; output: Output; value: { name: string } }
    conflicted = { certificate: certificateFromJSON(details.certificate), output: details.output }
    // the loser reads again and signs
    const loser = details.value.name === 'Bea' ? bea : cal
    const retried = await sign(loser, details.value.name, 'second')
    assert.equal((retried.value as { n: number }).n, 2)
    const { entries, count } = await contents()
    assert.equal(count, 3)
    assert.deepEqual(entries.map((e) => (e as { name: string }).name).sort(), ['Ada', 'Bea', 'Cal'])
  })

  it('limits each author key to three entries a minute, whoever runs the function', async () => {
    const dan = await generateKey()
    for (const i of [1, 2, 3]) await sign(dan, 'Dan', `entry ${i}`)
    const before = await contents()
    await rejectsWith(sign(dan, 'Dan', 'entry 4'), 'USER_ERROR', /slow down/)
    assert.deepEqual(await contents(), before)
  })

  it('gives a modified copy of the function no right to write, and a key without a grant none either', async () => {
    const before = await contents()
    const mallory = await generateKey()
    // the same function without its checks: another CID, which holds no grant
    const { code } = await bundleFile(GUESTBOOK_FUNCTION)
    const unchecked = code.replace('if (inWindow.length >= RATE_COUNT)', 'if (false)')
    assert.notEqual(unchecked, code)
    const copy = await net.deploy(unchecked, { key: mallory, exports: ['sign'] })
    assert.notEqual(copy.cid, book.fn)
    const run = net.invoke(copy.cid, 'sign', [book.ns, 'Mallory', 'spam'], {
      stores: [book.ns],
      key: mallory,
    })
    await rejectsWith(run, 'GRANT_MISSING')
    // offering the real function's grant does not help: it names another function
    const error = (await run.catch((e: unknown) => e)) as CovenantError
    const { certificate, output } = error.details as { certificate: unknown; output: Output }
    const stolen = await net.grant({
      namespace: book.ns,
      audience: { fn: book.fn },
      prefix: 'entries/',
      expiresAt: Date.now() + 60_000,
      key: owner,
    })
    await rejectsWith(
      net.store(book.ns).send(
        createFunctionCommit({
          request: certificateFromJSON(certificate).id,
          effects: output.store![0],
          certificate: certificateFromJSON(certificate),
          output,
          grants: [stolen],
        }),
      ),
      'GRANT_WRONG_AUDIENCE',
    )
    // a key writes only with a grant of its own
    await rejectsWith(
      net
        .store(book.ns)
        .send(await createKeyCommit({ issuer: mallory, ns: book.ns, writes: [{ key: 'count', value: 0 }] })),
      'GRANT_MISSING',
    )
    assert.deepEqual(await contents(), before)
  })

  it('holds every run to the namespace’s write policy: k and q no lower than the owner’s', async () => {
    const before = await contents()
    const eve = await generateKey()
    await rejectsWith(sign(eve, 'Eve', 'two executors', { replicas: 2, quorum: 2 }), 'WRITE_POLICY_UNMET')
    await rejectsWith(
      sign(eve, 'Eve', 'one receipt', { replicas: 3, quorum: 1, trust: { minQuorum: 1 } }),
      'WRITE_POLICY_UNMET',
    )
    assert.deepEqual(await contents(), before)
  })

  it('counts only certifiers the policy’s vouchers vouch for', async () => {
    const labeler = await generateKey()
    const vouched = await setUpGuestbook(net, owner, {
      name: 'vouched-guestbook',
      policy: { minReplicas: 3, minQuorum: 2, certifiers: { vouchedBy: [keyId(labeler)] } },
    })
    const keeper = net.store(vouched.ns, { key: owner })
    const vouch = (by: PrivateKey, executor: string) =>
      net.vouch({ executor, expiresAt: Date.now() + 3_600_000, key: by }).then((v) => keeper.keepVouch(v))
    const fay = await generateKey()
    const signVouched = (text: string) =>
      net.invoke(vouched.fn, 'sign', [vouched.ns, 'Fay', text], { stores: [vouched.ns], key: fay })
    // nobody vouched yet; then the labeler for one node only, and the owner (not named) for all
    await rejectsWith(signVouched('unvouched'), 'WRITE_POLICY_UNMET')
    await vouch(labeler, devnet.nodes[0].peerId)
    for (const n of devnet.nodes) await vouch(owner, n.peerId)
    await rejectsWith(signVouched('one vouched'), 'WRITE_POLICY_UNMET')
    assert.deepEqual(await contents(vouched.ns), { entries: [], count: null })
    // vouched for, every node certifies
    for (const n of devnet.nodes.slice(1)) await vouch(labeler, n.peerId)
    const ok = await signVouched('vouched')
    assert.equal((ok.value as { n: number }).n, 0)
    assert.equal((await contents(vouched.ns)).count, 1)
  })

  it('refuses forged outputs and receipts, and receipts from keys outside the network', async () => {
    const before = await contents()
    const { certificate, output } = conflicted
    // the certified run whose commit lost: its output with another text, read at the current
    // version so that only the signatures can refuse it
    const current = (await net.store(book.ns).get('count')).version
    const forged = structuredClone(output)
    const effects = forged.store![0]
    effects.writes = effects.writes.map((w) =>
      w.key.startsWith('entries/') ? { ...w, value: { ...(w.value as object), text: 'forged' } } : w,
    )
    effects.reads = effects.reads.map((r) => (r.key === 'count' ? { ...r, version: current } : r))
    const send = (c: Certificate, o: Output) =>
      net
        .store(book.ns)
        .send(createFunctionCommit({ request: c.id, effects: o.store![0], certificate: c, output: o }))
    await rejectsWith(send(certificate, forged), 'INVALID_CERTIFICATE', /does not match/)
    // receipts re-signed by no one: the hash changed to the forged output's
    const rehashed = {
      ...certificate,
      outputHash: outputHash(forged),
      receipts: certificate.receipts.map((r) => ({ ...r, outputHash: outputHash(forged) })),
    }
    await rejectsWith(send(rehashed, forged), 'INVALID_CERTIFICATE', /does not verify/)
    // receipts signed by keys of the attacker's own, outside every node's view
    const strangers = await Promise.all([generateKey(), generateKey(), generateKey()])
    const own = {
      ...rehashed,
      receipts: strangers.map((key) =>
        signReceipt(key, {
          request: certificate.id,
          outputHash: outputHash(forged),
          fuel: 1,
          covenantVersion: 1,
          build: SANDBOX_BUILD,
        }),
      ),
    }
    await rejectsWith(send(own, forged), 'INVALID_CERTIFICATE', /view/)
    assert.deepEqual(await contents(), before)
  })

  it('commits a direct call’s writes from the SDK, as a gateway would have', async () => {
    const direct = await connect({ nodes: devnet.nodes.map((n) => n.http), direct: true })
    try {
      const grace = await generateKey()
      const result = await direct.invoke(book.fn, 'sign', [book.ns, 'Grace', 'called directly'], {
        stores: [book.ns],
        key: grace,
      })
      assert.deepEqual(
        result.commits.map((c) => ('error' in c ? c.error.code : c.id)),
        [result.certificate.id],
      )
      const { n } = result.value as { n: number }
      const entry = await net.store(book.ns).get(`entries/${String(n).padStart(8, '0')}`)
      assert.deepEqual(entry.value, result.value)
    } finally {
      await direct.close()
    }
  })
})
