/**
 * A node's view of the network with the peers it knows but believes dead kept in it, as dead: what
 * a run is judged against after the fact. A holder or a keeper that takes a run after one of its
 * signers died still finds that signer where the selection put it, instead of refusing the run
 * until it is old; a dead peer ranked ahead of the signers is skipped at no cost, as when it is
 * left out. Built on first use and kept until `forget` (call it when the peer table changes).
 */
import { createView, type View } from '../exec/index.ts'
import type { NodeComponents } from './service.ts'

export function knownView(c: Pick<NodeComponents, 'peerId' | 'covenant' | 'peers'>): {
  view: () => View
  forget: () => void
} {
  let known: View | undefined
  return {
    view: () =>
      (known ??= createView([c.covenant(), ...c.peers.list().map((p) => p.covenant)], {
        alive: (id) => id === c.peerId || c.peers.get(id)?.alive === true,
      })),
    forget: () => {
      known = undefined
    },
  }
}
