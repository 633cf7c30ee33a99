import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { cidForBytes } from '../../src/content/index.ts'
import { signCovenant } from '../../src/covenant/index.ts'
import { type SelectionCandidate, selectExecutors } from '../../src/exec/executor-selection.ts'
import { generateKey, keyId } from '../../src/keys/index.ts'
import { candidatesOf, executingCovenant, makeNodes, type TestNode } from '../fixtures/exec-cluster.ts'

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest()

/** Brute force from the documented rule: XOR of sha256(request id CID bytes) and sha256(peer multihash). */
function bruteForce(requestId: string, peers: string[]): string[] {
  const target = sha(CID.parse(requestId).bytes)
  const dist = (p: string) => {
    const pos = sha(peerIdFromString(p).toMultihash().bytes)
    return BigInt(`0x${Buffer.from(pos.map((b, i) => b ^ target[i])).toString('hex')}`)
  }
  return [...peers].sort((a, b) => (dist(a) < dist(b) ? -1 : 1))
}

const limits = { fuel: 1000, memoryMiB: 64, timeoutMs: 1000 }
const idOf = (i: number) => cidForBytes(new TextEncoder().encode(`request ${i}`), 'dag-cbor').toString()

describe('selectExecutors', () => {
  let nodes: TestNode[]
  let publisher: string
  before(async () => {
    nodes = await makeNodes(12)
    publisher = keyId(await generateKey())
  })

  it('orders the eligible peers by XOR distance to the request id and chooses the first k', () => {
    for (let i = 0; i < 20; i++) {
      const requestId = idOf(i)
      const s = selectExecutors({
        requestId,
        manifest: { tags: [], publisher },
        limits,
        candidates: candidatesOf(nodes),
        k: 3,
        q: 2,
      })
      assert.deepEqual(
        s.ordered,
        bruteForce(
          requestId,
          nodes.map((n) => n.peer),
        ),
      )
      assert.deepEqual(s.chosen, s.ordered.slice(0, 3))
      assert.deepEqual(s.excluded, [])
      // Anyone with the same covenants, in any order, recomputes the same group.
      const again = selectExecutors({
        requestId,
        manifest: { tags: [], publisher },
        limits,
        candidates: [...candidatesOf(nodes)].reverse(),
        k: 3,
      })
      assert.deepEqual(again.ordered, s.ordered)
    }
  })

  it('excludes, with reasons, peers whose covenant does not verify or refuses this request', async () => {
    const [refuser, disabled, tagRefuser, pubRefuser, small, forged, dead, ...rest] = await makeNodes(9)
    const mk = async (node: TestNode, execute: Parameters<typeof executingCovenant>[0]) =>
      signCovenant(node.key, executingCovenant(execute), 2)
    const candidates: SelectionCandidate[] = [
      {
        peer: refuser.peer,
        covenant: await mk(refuser, { allowedPublishers: [keyId(await generateKey())] }),
      },
      { peer: disabled.peer, covenant: await mk(disabled, { enabled: false }) },
      { peer: tagRefuser.peer, covenant: await mk(tagRefuser, { refusedTags: ['nsfw'] }) },
      { peer: pubRefuser.peer, covenant: await mk(pubRefuser, { refusedPublishers: [publisher] }) },
      { peer: small.peer, covenant: await mk(small, { maxMemoryMiB: 32 }) },
      // A covenant whose signature was altered, and one presented under another peer's name.
      { peer: forged.peer, covenant: { ...forged.covenant, version: 7 } },
      { peer: dead.peer, covenant: dead.covenant, alive: false },
      { peer: rest[0].peer, covenant: rest[1].covenant },
      { peer: rest[1].peer, covenant: rest[1].covenant },
      { peer: rest[1].peer, covenant: rest[1].covenant },
    ]
    const s = selectExecutors({
      requestId: idOf(1),
      manifest: { tags: ['nsfw', 'games'], publisher },
      limits,
      candidates,
      k: 3,
      q: 1,
    })
    assert.deepEqual(s.ordered, [rest[1].peer])
    const reasons = new Map(s.excluded.map((e) => [e.peer, e.reason]))
    assert.match(reasons.get(refuser.peer)!, /allowed publishers/)
    assert.match(reasons.get(disabled.peer)!, /does not execute/)
    assert.match(reasons.get(tagRefuser.peer)!, /refuses tag "nsfw"/)
    assert.match(reasons.get(pubRefuser.peer)!, /refuses publisher/)
    assert.match(reasons.get(small.peer)!, /at most 32 MiB/)
    assert.match(reasons.get(forged.peer)!, /does not verify/)
    assert.match(reasons.get(dead.peer)!, /not reachable/)
    assert.match(reasons.get(rest[0].peer)!, /another peer/)
    assert.equal(s.excluded.length, 9)
  })

  it('throws NO_EXECUTORS with every reason when fewer than q are eligible', async () => {
    const few = await makeNodes(3, executingCovenant({ maxFuel: 10 }))
    const ok = nodes.slice(0, 1)
    assert.throws(
      () =>
        selectExecutors({
          requestId: idOf(2),
          manifest: { tags: [], publisher },
          limits,
          candidates: [...candidatesOf(few), ...candidatesOf(ok)],
          k: 3,
          q: 2,
        }),
      (err: { code: string; details: { eligible: string[]; excluded: Array<{ reason: string }> } }) => {
        assert.equal(err.code, 'NO_EXECUTORS')
        assert.deepEqual(err.details.eligible, [ok[0].peer])
        assert.equal(err.details.excluded.length, 3)
        assert.match(err.details.excluded[0].reason, /at most 10 fuel/)
        return true
      },
    )
  })
})
