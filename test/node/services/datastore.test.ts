/**
 * Datastores on ONE devnet of 7 real node processes (k = 3): a namespace's holders are the three
 * nodes closest to its id. The node keys are made before the devnet starts, so the test knows
 * every namespace's holders in advance and plans who is who: which node is the gateway callers
 * use, and which two carry devnet faults of the datastore service. CRASHER dies (SIGKILL) as a
 * primary right after the first other holder applied a commit's entry; FLAKY dies (SIGKILL) when a
 * primary offers it an entry to apply. Each case's namespace is picked so that a faulty node holds
 * it only where the case wants it to. The primary killed mid-commit is tried with a key's commit
 * and with a function's (a certified run's writes, the tamper-resistant path).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { delegateWrite, revoke } from '../../../src/caps/index.ts'
import {
  type CovenantClient,
  certificateFromJSON,
  connect,
  createFunctionCommit,
  generateKey,
  keyId,
  type PrivateKey,
} from '../../../src/client/index.ts'
import {
  type Commit,
  createKeyCommit,
  createNamespace,
  createRevocationCommit,
  namespaceId,
  STORE_PROTOCOL,
} from '../../../src/datastore/index.ts'
import type { CovenantError } from '../../../src/errors/index.ts'
import type { Certificate, Output } from '../../../src/exec/index.ts'
import { createNet, type Net } from '../../../src/net/index.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'
import {
  holderOrder,
  plannedNodeKeys,
  localHead as storeHead,
  converged as storesConverged,
} from '../../fixtures/stores.ts'

const NODES = 7
/** A function that writes one key and reads nothing. */
const WRITE_ONE = 'export function put(ns, key, value, ctx) { ctx.store.put(ns, key, value); return value }\n'

/** Who is who, and the namespace name of each case, with its nodes closest first. */
interface Plan {
  gateway: number
  crasher: number
  flaky: number
  main: string
  revocation: string
  crashPrimary: string
  crashFunction: string
  crashFollower: string
}

/**
 * Finds roles and names so that: the gateway holds none of the namespaces it forwards to; FLAKY
 * is a holder only of the crash-follower case's namespace (never of the first four nodes of any
 * other, so not even as a stand-in); CRASHER is the primary only of the crash-primary case's (and
 * not next in line where a primary is killed), and of the function-commit case's.
 */
function planFor(order: (name: string) => number[]): Plan | undefined {
  const names = Array.from({ length: 500 }, (_, i) => `ns-${i}`)
  const orders = new Map(names.map((n) => [n, order(n)]))
  const top = (o: number[], n: number, i: number) => o.slice(0, n).includes(i)
  for (let gateway = 0; gateway < NODES; gateway++)
    for (let crasher = 0; crasher < NODES; crasher++)
      for (let flaky = 0; flaky < NODES; flaky++) {
        if (new Set([gateway, crasher, flaky]).size < 3) continue
        const used = new Set<string>()
        const find = (fits: (o: number[]) => boolean) => {
          const name = names.find((n) => !used.has(n) && fits(orders.get(n)!))
          if (name !== undefined) used.add(name)
          return name
        }
        const main = find((o) => !top(o, 4, flaky) && o[0] !== crasher && !top(o, 3, gateway))
        const revocation = find((o) => !top(o, 4, flaky) && !top(o, 2, crasher) && !top(o, 4, gateway))
        const crashPrimary = find((o) => o[0] === crasher && !top(o, 4, flaky) && !top(o, 4, gateway))
        const crashFunction = find((o) => o[0] === crasher && !top(o, 4, flaky) && !top(o, 4, gateway))
        const crashFollower = find(
          (o) => (o[1] === flaky || o[2] === flaky) && o[0] !== crasher && o[0] !== gateway,
        )
        if (main && revocation && crashPrimary && crashFunction && crashFollower)
          return { gateway, crasher, flaky, main, revocation, crashPrimary, crashFunction, crashFollower }
      }
  return undefined
}

describe('datastores on a 7-node devnet', { timeout: 300_000 }, () => {
  let devnet: TestDevnet
  let owner: PrivateKey
  let ids: string[]
  let plan: Plan
  let nets: CovenantClient[]
  let prober: Net
  let GATEWAY: number
  const peer = (i: number) => ids[i]
  const index = (id: string) => ids.indexOf(id)

  /** Every node, closest to the namespace `name` of the owner first. */
  const order = (name: string): number[] => holderOrder(owner, name, ids)

  const localHead = (i: number, ns: string) => storeHead({ nets, ids }, i, ns)
  /** Waits until each of `holders` holds `ns` itself at the same head; returns that head. */
  const converged = (ns: string, holders: number[]) => storesConverged({ nets, ids }, ns, holders)

  const rejectsWith = (p: Promise<unknown>, code: string) =>
    assert.rejects(p, (e: CovenantError) => e.code === code, code)

  before(async () => {
    owner = await generateKey()
    const { dir } = await plannedNodeKeys(NODES, (drawn) => {
      ids = drawn
      const found = planFor(order)
      if (found !== undefined) plan = found
      return found !== undefined
    })
    GATEWAY = plan.gateway
    devnet = await startTestDevnet({
      dir,
      nodes: NODES,
      faults: { [plan.crasher]: 'store-crash-after-first-ack', [plan.flaky]: 'store-crash-on-append' },
    })
    assert.deepEqual(
      devnet.nodes.map((n) => n.peerId),
      ids,
    )
    nets = await Promise.all(devnet.nodes.map((n) => connect({ node: n.http })))
    prober = createNet({ privateKey: await generateKey() })
    await prober.start()
    for (const n of devnet.nodes)
      await prober.addAddresses(n.peerId, [n.multiaddrs[0].replace(/\/p2p\/.*$/, '')])
  })
  after(async () => {
    await prober?.stop()
    await devnet?.cleanup()
  })

  let main: { ns: string; order: number[] }

  it('creates a namespace through a node that does not hold it; its 3 holders hold it and every node reads it at any version', async () => {
    const picked = { name: plan.main, order: order(plan.main) }
    const created = await nets[GATEWAY].createStore(picked.name, { public: true, key: owner })
    main = { ns: created.ns, order: picked.order }
    const holders = picked.order.slice(0, 3)
    assert.deepEqual(created.holders.map(index), holders)
    const site = nets[GATEWAY].store(main.ns, { key: owner })
    const first = await site.commit([
      { key: 'title', value: 'Guests' },
      { key: 'count', value: 0 },
    ])
    assert.deepEqual(first.holders.map(index), holders, 'the primary first, every holder applied it')
    const second = await site.commit([{ key: 'title', value: 'Guestbook' }])
    assert.equal(second.seq, 2)
    // every holder answers from its own copy, with the same head
    const head = await converged(main.ns, holders)
    assert.equal(head.seq, 2)
    assert.equal(head.cid, second.cid)
    // any node reads any version
    for (let i = 0; i < NODES; i++) {
      const store = nets[i].store(main.ns)
      assert.equal((await store.get('title')).value, 'Guestbook', `node ${i}`)
      assert.equal((await store.get('title', { at: 1 })).value, 'Guests', `node ${i}`)
      assert.equal((await store.get('title', { at: 0 })).value, null, `node ${i}`)
      assert.deepEqual(
        (await store.history()).entries.map((e) => e.cid),
        [first.cid, second.cid],
        `node ${i}`,
      )
    }
    const info = await nets[GATEWAY].store(main.ns).info()
    assert.deepEqual(info.holders.map(index), holders)
    assert.equal(index(info.servedBy), holders[0], 'a node that does not hold it asks the primary')
  })

  it('lets one of two writers racing through different nodes win; the other gets WRITE_CONFLICT and nothing is lost', async () => {
    const writers = [
      nets[GATEWAY].store(main.ns, { key: owner }),
      nets[main.order[2]].store(main.ns, { key: owner }),
    ]
    await writers[0].commit([{ key: 'guests', value: [] }])
    for (let round = 0; round < 3; round++) {
      const seen = await writers[0].get('guests')
      const add = (w: number, read: typeof seen) =>
        writers[w].commit([{ key: 'guests', value: [...(read.value as string[]), `w${w}-r${round}`] }], {
          reads: [{ key: 'guests', version: read.version }],
        })
      const results = await Promise.allSettled([add(0, seen), add(1, seen)])
      const lost = results.flatMap((r, w) =>
        r.status === 'rejected' ? [{ w, e: r.reason as CovenantError }] : [],
      )
      assert.equal(lost.length, 1, `round ${round}: exactly one writer loses`)
      assert.equal(lost[0].e.code, 'WRITE_CONFLICT')
      // the loser reads again and lands its write
      await add(lost[0].w, await writers[lost[0].w].get('guests'))
    }
    const guests = (await nets[3].store(main.ns).get('guests')).value as string[]
    assert.deepEqual(guests.sort(), ['w0-r0', 'w0-r1', 'w0-r2', 'w1-r0', 'w1-r1', 'w1-r2'].sort())
    await converged(main.ns, main.order.slice(0, 3))
  })

  it('applies the same commit once, even sent through two nodes at the same time', async () => {
    const commit = await createKeyCommit({ issuer: owner, ns: main.ns, writes: [{ key: 'once', value: 1 }] })
    const [a, b] = await Promise.all([
      nets[GATEWAY].store(main.ns).send(commit),
      nets[3].store(main.ns).send(commit),
    ])
    assert.deepEqual([a.duplicate, b.duplicate].sort(), [false, true])
    assert.equal(a.seq, b.seq)
    assert.equal(a.cid, b.cid)
    const again = await nets[4].store(main.ns).send(commit)
    assert.equal(again.duplicate, true)
    assert.equal(again.seq, a.seq)
    const history = await nets[GATEWAY].store(main.ns).history({ limit: 1000 })
    assert.equal(history.entries.filter((e) => e.id === commit.id).length, 1)
  })

  it('answers garbage and forged messages on /covenant/store/1.0.0 with typed errors, and keeps serving', async () => {
    const target = main.order[0]
    const raw = async (bytes: Uint8Array, prefixed: boolean): Promise<{ error?: { code: string } }> => {
      const stream = await prober.libp2p.dialProtocol(
        multiaddr(devnet.nodes[target].multiaddrs[0]),
        STORE_PROTOCOL,
      )
      const lp = lpStream(stream)
      if (prefixed) await lp.write(bytes)
      else stream.send(bytes)
      return dagCbor.decode((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray())
    }
    const ask = (msg: unknown) => prober.request(peer(target), STORE_PROTOCOL, msg, { timeoutMs: 10_000 })
    assert.equal((await raw(new Uint8Array([0xde, 0xad, 0xbe, 0xef]), true)).error?.code, 'PROTOCOL_ERROR')
    assert.equal(
      (await raw(dagCbor.encode({ type: 'drop', ns: main.ns }), true)).error?.code,
      'PROTOCOL_ERROR',
    )
    assert.equal(
      (await raw(new Uint8Array([0x80, 0x80, 0x80, 0x20]), false)).error?.code,
      'MESSAGE_TOO_LARGE',
    )
    await rejectsWith(ask({ type: 'head', ns: 'not-a-cid' }), 'PROTOCOL_ERROR')
    await rejectsWith(ask({ type: 'head', ns: namespaceId(keyId(owner), 'nowhere') }), 'NAMESPACE_NOT_FOUND')
    // entries are taken only from a holder; a forged one would be refused anyway
    const entry = (
      (await ask({ type: 'entries', ns: main.ns, after: 0, limit: 1 })) as { entries: Uint8Array[] }
    ).entries[0]
    const forged = new Uint8Array(entry)
    forged[forged.length - 3] ^= 1
    for (const type of ['check', 'append'])
      await rejectsWith(ask({ type, ns: main.ns, entry: forged }), 'NOT_A_HOLDER')
    // a commit whose writes were changed after the writer signed them
    const commit = await createKeyCommit({ issuer: owner, ns: main.ns, writes: [{ key: 'k', value: 1 }] })
    await rejectsWith(
      ask({ type: 'commit', commit: { ...commit, writes: [{ key: 'k', value: 2 }] } }),
      'GRANT_FORGED',
    )
    await rejectsWith(ask({ type: 'commit', commit: { hello: 'world' } }), 'ENTRY_INVALID')
    // a genesis signed by someone else
    const { descriptor } = createNamespace(owner, { name: 'forged', public: true })
    await rejectsWith(ask({ type: 'create', genesis: { ...descriptor, public: false } }), 'NAMESPACE_INVALID')
    // a revocation of a grant on another namespace, and one that is not a revocation at all
    const stranger = await generateKey()
    const elsewhere = createNamespace(stranger, { name: 'elsewhere', public: true })
    const foreign = await revoke({
      issuer: stranger,
      namespace: elsewhere.id,
      grant: await delegateWrite({
        issuer: stranger,
        audience: keyId(owner),
        namespace: elsewhere.id,
        expiresAt: Date.now() + 60_000,
      }),
    })
    await rejectsWith(
      ask({ type: 'commit', commit: createRevocationCommit(main.ns, foreign) }),
      'GRANT_WRONG_AUDIENCE',
    )
    const notOne = {
      ...createRevocationCommit(main.ns, foreign),
      proof: { revocation: { ucan: new Uint8Array(3), chain: [] } },
    }
    await rejectsWith(ask({ type: 'commit', commit: notOne }), 'ENTRY_INVALID')
    // still serving
    assert.equal(
      (await nets[GATEWAY].store(main.ns, { key: owner }).commit([{ key: 'alive', value: true }])).duplicate,
      false,
    )
  })

  it('honours a revocation on every holder, one that was down when it happened included', async () => {
    const picked = { name: plan.revocation, order: order(plan.revocation) }
    const [A, B, C, D] = picked.order
    const ns = (await nets[GATEWAY].createStore(picked.name, { public: true, key: owner })).ns
    const editor = await generateKey()
    const grant = await nets[GATEWAY].grant({
      namespace: ns,
      audience: keyId(editor),
      prefix: 'pages/',
      expiresAt: Date.now() + 3_600_000,
      key: owner,
    })
    const asEditor = (via: number) => nets[via].store(ns, { key: editor })
    await asEditor(GATEWAY).commit([{ key: 'pages/a', value: 1 }], { grants: [grant] })
    await converged(ns, [A, B, C])

    await devnet.kill(B, 'SIGKILL')
    const revoked = await nets[GATEWAY].revoke(ns, { grant, key: owner })
    assert.ok(!revoked.holders.map(index).includes(B), 'the holder that is down did not get it')
    assert.equal(index(revoked.holders[0]), A, 'through the primary')
    await rejectsWith(
      asEditor(GATEWAY).commit([{ key: 'pages/b', value: 2 }], { grants: [grant] }),
      'GRANT_REVOKED',
    )

    // back up, it learns the revocation from the other holders
    await devnet.restart(B)
    await waitFor(
      'the restarted holder to keep the revocation',
      async () => {
        if ((await localHead(B, ns)) === undefined) return undefined
        const kept = await nets[B].store(ns).revocations()
        return kept.length === 1 ? true : undefined
      },
      90_000,
    )
    await converged(ns, [A, B, C])

    // with the primary gone, the restarted holder is the primary: it refuses the revoked writer itself
    await devnet.kill(A, 'SIGKILL')
    await waitFor('the gateway to see the primary gone', async () =>
      (await nets[GATEWAY].store(ns).info()).holders.map(index)[0] === B ? true : undefined,
    )
    await rejectsWith(
      asEditor(GATEWAY).commit([{ key: 'pages/c', value: 3 }], { grants: [grant] }),
      'GRANT_REVOKED',
    )
    const ownerWrite = await nets[GATEWAY].store(ns, { key: owner }).commit([{ key: 'after', value: 1 }])
    assert.equal(index(ownerWrite.holders[0]), B)
    assert.equal((await nets[GATEWAY].store(ns).get('pages/b')).value, null)
    assert.equal((await nets[GATEWAY].store(ns).get('pages/a')).value, 1, 'the write before it stands')

    // the node that became a holder pulled the whole namespace and its revocations
    const head = await converged(ns, [B, C, D])
    assert.equal(head.cid, ownerWrite.cid)
    assert.equal((await nets[D].store(ns).revocations()).length, 1)

    // the old primary comes back: it catches up, and the stand-in hands the namespace back and drops it
    await devnet.restart(A)
    await converged(ns, [A, B, C])
    await waitFor(
      'the stand-in to drop its copy',
      async () => {
        const text = await (await fetch(`${devnet.nodes[D].http}/metrics`)).text()
        return /^covenant_store_dropped_total [1-9]/m.test(text) ? true : undefined
      },
      90_000,
    )
  })

  /**
   * Sends `commit` (which writes k = "v") to `ns`, whose primary (CRASHER) dies once the first
   * follower applied it: every live holder ends with it, once; the primary comes back and catches
   * up from the others; the same commit again is a no-op.
   */
  const primaryKilledMidCommit = async (ns: string, order: number[], commit: Commit) => {
    const [P, F1, F2, N] = order
    const outcome = await Promise.allSettled([nets[GATEWAY].store(ns).send(commit)])
    await waitFor('the primary to die', async () =>
      devnet.nodes[P].process === undefined ? true : undefined,
    )
    const live = [F1, F2, N]
    const head = await converged(ns, live)
    for (const i of live) {
      const history = await nets[i].store(ns).history()
      assert.deepEqual(
        history.entries.map((e) => [e.kind, e.id]),
        [[commit.kind, commit.id]],
        `node ${i}`,
      )
      assert.equal((await nets[i].store(ns).get('k')).value, 'v', `node ${i}`)
    }
    if (outcome[0].status === 'fulfilled') assert.equal(outcome[0].value.cid, head.cid)
    await devnet.restart(P)
    await converged(ns, [P, F1, F2])
    const again = await nets[GATEWAY].store(ns).send(commit)
    assert.equal(again.duplicate, true)
    assert.equal(again.cid, head.cid)
  }

  it('a primary killed mid-commit: the entry ends on all live holders (or none), and the restarted primary catches up', async () => {
    const picked = { name: plan.crashPrimary, order: order(plan.crashPrimary) }
    const ns = (await nets[GATEWAY].createStore(picked.name, { public: true, key: owner })).ns
    const commit = await createKeyCommit({ issuer: owner, ns, writes: [{ key: 'k', value: 'v' }] })
    await primaryKilledMidCommit(ns, picked.order, commit)
  })

  it('a primary killed mid-commit of a function’s certified write: the write ends on all live holders (or none), and the restarted primary catches up', async () => {
    const picked = { name: plan.crashFunction, order: order(plan.crashFunction) }
    const P = picked.order[0]
    const net = nets[GATEWAY]
    const { cid: fn } = await net.deploy(WRITE_ONE, { key: owner, exports: ['put'] })
    const ns = (await net.createStore(picked.name, { public: true, key: owner })).ns
    // No grant kept in the namespace (keeping one is a commit, which would kill the primary
    // first): each run is certified and its commit refused before anything is applied anywhere.
    // The hard case is a run the primary itself signed (the holders that pull the entry after it
    // died must still count it): callers with fresh keys (the selection follows the caller's
    // ticket) until one's run has it among the signers, or the last run tried.
    let details: { certificate: unknown; output: Output } | undefined
    let certificate: Certificate | undefined
    for (let attempt = 0, late = 0; attempt < 12; attempt++) {
      const refused = (await net
        .invoke(fn, 'put', [ns, 'k', 'v'], { key: await generateKey() })
        .catch((e: unknown) => e)) as CovenantError
      // a loaded machine can miss a call's deadline (ci14, load 40): that run is not the case
      if (refused.code === 'DEADLINE_EXCEEDED' && late++ < 3) {
        attempt--
        continue
      }
      assert.equal(refused.code, 'GRANT_MISSING')
      details = refused.details as { certificate: unknown; output: Output }
      certificate = certificateFromJSON(details.certificate)
      if (certificate.receipts.some((r) => r.executor === peer(P))) break
    }
    assert.ok(devnet.nodes[P].process !== undefined, 'a refused commit did not reach the fault')
    if (details === undefined || certificate === undefined) throw new Error('no run')
    // the caller hands the certified run to the holders itself, with the owner's grant; the
    // restarted primary checks the run itself when it catches up
    const grant = await net.grant({
      namespace: ns,
      audience: { fn },
      expiresAt: Date.now() + 3_600_000,
      key: owner,
    })
    const commit = createFunctionCommit({
      request: certificate.id,
      effects: details.output.store![0],
      certificate,
      output: details.output,
      grants: [grant],
    })
    await primaryKilledMidCommit(ns, picked.order, commit)
  })

  it('a holder killed mid-commit: the commit lands on the live holders, and the restarted holder catches up', async () => {
    const picked = { name: plan.crashFollower, order: order(plan.crashFollower) }
    const holders = picked.order.slice(0, 3)
    const P = holders[0]
    const ns = (await nets[GATEWAY].createStore(picked.name, { public: true, key: owner })).ns
    const result = await nets[GATEWAY].store(ns, { key: owner }).commit([{ key: 'k', value: 'v' }])
    assert.equal(index(result.holders[0]), P)
    assert.ok(!result.holders.map(index).includes(plan.flaky), 'the holder that died did not apply it')
    await waitFor('the holder to die', async () =>
      devnet.nodes[plan.flaky].process === undefined ? true : undefined,
    )
    await devnet.restart(plan.flaky)
    const head = await converged(ns, holders)
    assert.equal(head.cid, result.cid)
    assert.equal((await nets[plan.flaky].store(ns).get('k')).value, 'v')
  })
})
