/** The caller's view from several nodes' peer lists: a majority decides who is a peer and who is alive. */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import type { PeerInfo } from '../../src/api/index.ts'
import { viewFromPeerLists } from '../../src/client/index.ts'
import { type SignedCovenant, signCovenant, signedCovenantToJSON } from '../../src/covenant/index.ts'
import { executingCovenant, makeNodes, type TestNode } from '../fixtures/exec-cluster.ts'

function entry(covenant: SignedCovenant | null, id = covenant?.peer ?? '', alive = true): PeerInfo {
  return {
    id,
    addrs: [],
    alive,
    lastSeen: 0,
    self: false,
    covenant: covenant === null ? null : signedCovenantToJSON(covenant),
    conflicts: 0,
  }
}

describe('the view from several nodes', () => {
  let nodes: TestNode[]
  before(async () => {
    nodes = await makeNodes(5)
  })

  it('keeps the peers more than half of the nodes list, alive if more than half say so', () => {
    const [a, b, c, d] = nodes
    const view = viewFromPeerLists([
      [entry(a.covenant), entry(b.covenant), entry(c.covenant, c.peer, false), entry(d.covenant)],
      [entry(a.covenant), entry(b.covenant, b.peer, false), entry(c.covenant, c.peer, false)],
      [entry(a.covenant), entry(b.covenant), entry(c.covenant)],
    ])
    assert.deepEqual([...view.peers.keys()].sort(), [a.peer, b.peer, c.peer].sort())
    assert.equal(view.peers.get(a.peer)?.alive, true)
    assert.equal(view.peers.get(b.peer)?.alive, true)
    assert.equal(view.peers.get(c.peer)?.alive, false)
  })

  it('counts only covenants that verify and name the peer listed; keeps the highest version', () => {
    const [a, b, c] = nodes
    const newer = signCovenant(a.key, executingCovenant({ maxFuel: 200 }), 2)
    const tampered = { ...signCovenant(b.key, executingCovenant(), 9), version: 10 }
    const view = viewFromPeerLists([
      [entry(newer), entry(tampered), entry(c.covenant, a.peer)],
      [entry(a.covenant), entry(tampered), entry(c.covenant, a.peer)],
      [entry(a.covenant), entry(b.covenant), entry(null, c.peer)],
    ])
    // a: listed by all three, v2 the highest that verifies; b: only one verifying listing; c: never
    // under its own id with a covenant
    assert.deepEqual([...view.peers.keys()], [a.peer])
    assert.equal(view.peers.get(a.peer)?.covenant.version, 2)
  })

  it('counts a node that does not answer as listing nothing, and trusts a single node for its word', () => {
    const [a, b] = nodes
    const two = viewFromPeerLists([[entry(a.covenant), entry(b.covenant)], undefined])
    assert.equal(two.peers.size, 0, 'one of two is no majority')
    const one = viewFromPeerLists([[entry(a.covenant), entry(b.covenant)]])
    assert.equal(one.peers.size, 2)
  })
})
