/**
 * The caller's view of the network, built from what several nodes say (`GET /v1/peers`) so that
 * no single node — the gateway least of all — decides which keys count as executors. A peer is
 * kept if more than half of the nodes asked list it with a covenant that verifies (the highest
 * verifying version among them), and counts as alive if more than half say so. A node that does
 * not answer counts as listing nothing. With one node, the view is that node's word.
 */
import type { PeerInfo } from '../api/index.ts'
import { SignedCovenantSchema } from '../covenant/index.ts'
import { bytesFieldsFromJSON } from '../encoding/index.ts'
import { createView, type View, verifiedCovenant } from '../exec/index.ts'

/** The view the peer lists of `asked` nodes make; `undefined` stands for a node that did not answer. */
export function viewFromPeerLists(lists: ReadonlyArray<readonly PeerInfo[] | undefined>): View {
  const asked = lists.length
  const listedBy = new Map<string, number>()
  const aliveBy = new Map<string, number>()
  const covenants = new Map<string, unknown[]>()
  for (const list of lists) {
    const seen = new Set<string>()
    for (const entry of list ?? []) {
      if (entry.covenant === null || seen.has(entry.id)) continue
      const parsed = SignedCovenantSchema.safeParse(bytesFieldsFromJSON(entry.covenant, ['signature']))
      if (!parsed.success || parsed.data.peer !== entry.id) continue
      try {
        verifiedCovenant(parsed.data)
      } catch {
        continue
      }
      seen.add(entry.id)
      listedBy.set(entry.id, (listedBy.get(entry.id) ?? 0) + 1)
      if (entry.alive) aliveBy.set(entry.id, (aliveBy.get(entry.id) ?? 0) + 1)
      const forPeer = covenants.get(entry.id) ?? []
      forPeer.push(parsed.data)
      covenants.set(entry.id, forPeer)
    }
  }
  const kept: unknown[] = []
  for (const [peer, votes] of listedBy) if (votes > asked / 2) kept.push(...(covenants.get(peer) ?? []))
  return createView(kept, { alive: (peer) => (aliveBy.get(peer) ?? 0) > asked / 2 })
}
