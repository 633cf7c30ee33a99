import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { cidForBytes } from '../../src/content/index.ts'
import { signCovenant } from '../../src/covenant/index.ts'
import {
  createRequest,
  createView,
  rankExecutors,
  type SelectionRequest,
  selectExecutors,
  selectionKey,
} from '../../src/exec/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { executingCovenant, makeNodes, type TestNode, viewOf } from '../fixtures/exec-cluster.ts'

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest()

/** Brute force from the documented rule, with an independent sha256 and BigInt distances. */
function bruteForce(request: SelectionRequest, peers: string[]): string[] {
  const ticket = sha(
    `covenant/ticket/v1\0${request.caller}\0${request.ticket.epoch}\0${request.ticket.nonce}`,
  )
  const key = sha(`covenant/select/v1\0${ticket.toString('hex')}\0${request.fn}\0${request.export}`)
  const dist = (p: string) => {
    const pos = sha(peerIdFromString(p).toMultihash().bytes)
    return BigInt(`0x${Buffer.from(pos.map((b, i) => b ^ key[i])).toString('hex')}`)
  }
  return [...peers].sort((a, b) => (dist(a) < dist(b) ? -1 : 1))
}

const fn = cidForBytes(new TextEncoder().encode('a manifest'), 'dag-cbor').toString()

describe('selectExecutors', () => {
  let nodes: TestNode[]
  let publisher: string
  let caller: PrivateKey
  const manifest = () => ({ tags: [], publisher })
  before(async () => {
    nodes = await makeNodes(12)
    publisher = keyId(await generateKey())
    caller = await generateKey()
  })

  it('orders the eligible peers by XOR distance to the selection key and chooses the first k', () => {
    const view = viewOf(nodes)
    for (const exportName of ['add', 'sub', 'mul', 'div']) {
      const { request } = createRequest(caller, { fn, export: exportName, k: 3 })
      const s = selectExecutors({ view, request, manifest: manifest(), minEligibleFraction: 0.5 })
      assert.deepEqual(
        s.ordered,
        bruteForce(
          request,
          nodes.map((n) => n.peer),
        ),
      )
      assert.deepEqual(s.ranked, s.ordered)
      assert.deepEqual(s.chosen, s.ordered.slice(0, 3))
      assert.deepEqual(s.excluded, [])
      assert.equal(s.executing, 12)
      // Anyone with the same covenants, in any order, recomputes the same group.
      const reversed = createView([...nodes].reverse().map((n) => n.covenant))
      assert.deepEqual(rankExecutors(reversed, request, manifest()).ordered, s.ordered)
    }
  })

  it('cannot be steered by grinding nonces: only a new ticket moves the selection', () => {
    // The attack: try request nonces (and arguments, and timestamps) until one puts wanted
    // nodes first. Before tickets, the selection key was the request id, so every try moved it.
    const view = viewOf(nodes)
    const first = createRequest(caller, { fn, export: 'add', args: [0] })
    const group = selectExecutors({
      view,
      request: first.request,
      manifest: manifest(),
      minEligibleFraction: 0.5,
    })
    const ids = new Set<string>()
    for (let i = 0; i < 200; i++) {
      const { request, id } = createRequest(caller, {
        fn,
        export: 'add',
        args: [i],
        nonce: `grinding-${i}`,
        timestamp: first.request.timestamp + i,
      })
      ids.add(id)
      assert.deepEqual(selectionKey(request), selectionKey(first.request))
      assert.deepEqual(
        selectExecutors({ view, request, manifest: manifest(), minEligibleFraction: 0.5 }).chosen,
        group.chosen,
      )
    }
    assert.equal(ids.size, 200, 'two hundred distinct requests')
    // another export (or function) is another key: the same caller does not reach the same nodes everywhere
    const other = createRequest(caller, { fn, export: 'sub' }).request
    assert.notDeepEqual(selectionKey(other), selectionKey(first.request))
  })

  it('excludes, with reasons, peers whose covenant does not verify or refuses this request', async () => {
    const [refuser, disabled, tagRefuser, pubRefuser, small, forged, dead, twice, ...rest] =
      await makeNodes(10)
    const mk = (node: TestNode, execute: Parameters<typeof executingCovenant>[0], version = 2) =>
      signCovenant(node.key, executingCovenant(execute), version)
    const view = createView(
      [
        mk(refuser, { allowedPublishers: [keyId(await generateKey())] }),
        mk(disabled, { enabled: false }),
        mk(tagRefuser, { refusedTags: ['nsfw'] }),
        mk(pubRefuser, { refusedPublishers: [publisher] }),
        mk(small, { maxMemoryMiB: 32 }),
        // a covenant whose signature no longer covers it
        { ...forged.covenant, version: 7 },
        dead.covenant,
        // listed twice: the highest version counts
        mk(twice, { maxFuel: 200 }, 3),
        twice.covenant,
        ...rest.map((n) => n.covenant),
      ],
      { alive: (peer) => peer !== dead.peer },
    )
    assert.deepEqual(
      view.excluded.map((e) => e.peer),
      [forged.peer],
    )
    assert.match(view.excluded[0].reason, /does not verify/)
    assert.equal(view.peers.get(twice.peer)?.covenant.version, 3)
    const { request } = createRequest(caller, { fn, export: 'f', k: 2 })
    const s = rankExecutors(view, request, { tags: ['nsfw', 'games'], publisher })
    assert.deepEqual(new Set(s.ordered), new Set(rest.map((n) => n.peer)))
    assert.deepEqual(new Set(s.ranked), new Set([...rest, dead].map((n) => n.peer)))
    const reasons = new Map(s.excluded.map((e) => [e.peer, e.reason]))
    assert.match(reasons.get(refuser.peer)!, /allowed publishers/)
    assert.match(reasons.get(disabled.peer)!, /does not execute/)
    assert.match(reasons.get(tagRefuser.peer)!, /refuses tag "nsfw"/)
    assert.match(reasons.get(pubRefuser.peer)!, /refuses publisher/)
    assert.match(reasons.get(small.peer)!, /at most 32 MiB/)
    assert.match(reasons.get(twice.peer)!, /at most 200 fuel/)
    assert.match(reasons.get(dead.peer)!, /not reachable/)
    // of the nine in the view, the disabled one and the dead one do not count as executing
    assert.equal(s.executing, 7)
  })

  it('throws NO_EXECUTORS with every reason when fewer than k may execute', async () => {
    const few = await makeNodes(3, executingCovenant({ maxFuel: 200 }))
    const view = viewOf([...few, nodes[0], nodes[1]])
    const { request } = createRequest(caller, { fn, export: 'f', k: 3, fuel: 2000 })
    assert.throws(
      () => selectExecutors({ view, request, manifest: manifest(), minEligibleFraction: 0 }),
      (err: { code: string; details: { eligible: string[]; excluded: Array<{ reason: string }> } }) => {
        assert.equal(err.code, 'NO_EXECUTORS')
        assert.deepEqual(new Set(err.details.eligible), new Set([nodes[0].peer, nodes[1].peer]))
        assert.equal(err.details.excluded.length, 3)
        assert.match(err.details.excluded[0].reason, /at most 200 fuel/)
        return true
      },
    )
  })

  it('refuses a limit that carves the permissive few out of the network (NO_EXECUTORS)', async () => {
    // Most nodes run a default covenant (64 MiB); two permissive ones allow 1 GiB. Asking for
    // just more than the default leaves only those two: whoever runs them would be the quorum.
    const permissive = await makeNodes(2, executingCovenant({ maxMemoryMiB: 1024 }))
    const defaults = await makeNodes(6, executingCovenant({ maxMemoryMiB: 64 }))
    const view = viewOf([...permissive, ...defaults])
    assert.throws(() => createRequest(caller, { fn, export: 'f', k: 2, q: 2, memoryMiB: 65 }), {
      code: 'INVALID_REQUEST',
      message: /tiers/,
    })
    const { request } = createRequest(caller, { fn, export: 'f', k: 2, q: 2, memoryMiB: 128 })
    assert.deepEqual(
      new Set(rankExecutors(view, request, manifest()).ordered),
      new Set(permissive.map((n) => n.peer)),
    )
    assert.throws(() => selectExecutors({ view, request, manifest: manifest(), minEligibleFraction: 0.5 }), {
      code: 'NO_EXECUTORS',
      message: /only 2 of the 8 live executing peers/,
    })
    // at the default tier every node is eligible
    const fair = createRequest(caller, { fn, export: 'f', k: 2, q: 2 }).request
    assert.equal(
      selectExecutors({ view, request: fair, manifest: manifest(), minEligibleFraction: 0.5 }).ordered.length,
      8,
    )
  })
  it('ranks a request once per view, and never serves one ranking for another request, manifest or view', async () => {
    const view = viewOf(nodes)
    const { request } = createRequest(caller, { fn, export: 'add', k: 3 })
    const first = rankExecutors(view, request, manifest())
    // the same selection again (another nonce, other args: selection reads neither) is the same ranking
    const again = createRequest(caller, { fn, export: 'add', args: [1, 2], k: 3 }).request
    assert.equal(rankExecutors(view, again, manifest()), first)
    assert.ok(Object.isFrozen(first.ordered) && Object.isFrozen(first.excluded))
    assert.throws(() => (first.ordered as string[]).push('12D3KooWextra'))
    // what selection does read gives a ranking of its own
    const [tagRefuser, ...rest] = nodes
    const refusing = createView([
      signCovenant(tagRefuser.key, executingCovenant({ refusedTags: ['nsfw'] }), 2),
      ...rest.map((n) => n.covenant),
    ])
    const clean = rankExecutors(refusing, request, manifest())
    const tagged = rankExecutors(refusing, request, { tags: ['nsfw'], publisher })
    assert.ok(clean.ordered.includes(tagRefuser.peer))
    assert.ok(!tagged.ordered.includes(tagRefuser.peer))
    assert.equal(rankExecutors(refusing, request, manifest()), clean)
    const otherTier = createRequest(caller, { fn, export: 'add', k: 3, fuel: 20_000 }).request
    assert.notEqual(rankExecutors(view, otherTier, manifest()), first)
    const otherExport = createRequest(caller, { fn, export: 'sub', k: 3 }).request
    // its own ranking, right for its own key; not "another order": two keys rank 12 random peers
    // alike in 1.4% of cases (simulated), when they agree on every bit the peers' trie branches on
    const otherRanking = rankExecutors(view, otherExport, manifest())
    assert.notEqual(otherRanking, first)
    assert.deepEqual(
      otherRanking.ordered,
      bruteForce(
        otherExport,
        nodes.map((n) => n.peer),
      ),
    )
    // a view without one of the peers (it died) is a new view, ranked anew
    const without = viewOf(nodes, [nodes.find((n) => n.peer === first.ordered[0])!])
    assert.deepEqual(rankExecutors(without, request, manifest()).ordered, first.ordered.slice(1))
  })
})
