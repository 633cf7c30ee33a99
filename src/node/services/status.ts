/** The node's own routes: health, its identity and covenant, its peer table, and its metrics. */
import { Gauge } from 'prom-client'
import { healthRoute, metricsRoute, nodeRoute, type PeerInfo, peersRoute } from '../../api/index.ts'
import { signedCovenantToJSON } from '../../covenant/index.ts'
import { route } from '../http.ts'
import type { NodeComponents, NodeService } from '../service.ts'

export type StatusServiceComponents = Pick<
  NodeComponents,
  'net' | 'peers' | 'storage' | 'covenant' | 'http' | 'metrics' | 'conflicts'
>

/** Serves what a node says about itself. */
export function statusService(c: StatusServiceComponents): NodeService {
  const { net, peers, http, metrics } = c
  new Gauge({
    name: 'covenant_peers_alive',
    help: 'live peers in the peer table',
    registers: [metrics.registry],
    collect() {
      this.set(peers.live().length)
    },
  })

  route(http, healthRoute, async function health() {
    return { ok: true as const, peerId: net.peerId, peersAlive: peers.live().length }
  })

  route(http, nodeRoute, async function nodeInfo() {
    return {
      peerId: net.peerId,
      multiaddrs: net.multiaddrs(),
      covenant: signedCovenantToJSON(c.covenant()),
      replicas: c.storage.options.replicas,
    }
  })

  route(http, peersRoute, async function peerTable() {
    const counts = c.conflicts.counts()
    const self: PeerInfo = {
      id: net.peerId,
      addrs: net.multiaddrs(),
      alive: true,
      lastSeen: Date.now(),
      self: true,
      covenant: signedCovenantToJSON(c.covenant()),
      conflicts: counts.get(net.peerId) ?? 0,
    }
    const others = peers.list().map(
      (p): PeerInfo => ({
        id: p.id,
        addrs: p.addrs,
        alive: p.alive,
        lastSeen: p.lastSeen,
        self: false,
        covenant: p.covenant === undefined ? null : signedCovenantToJSON(p.covenant),
        conflicts: counts.get(p.id) ?? 0,
      }),
    )
    return { peers: [self, ...others] }
  })

  route(http, metricsRoute, async function prometheus(_input, reply) {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })

  return { name: 'status' }
}
