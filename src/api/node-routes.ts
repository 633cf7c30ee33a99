/** The node's own routes: health, identity, peer table, metrics. */
import { z } from 'zod'
import { SignedCovenantJSONSchema } from '../covenant/index.ts'
import type { RouteSpec } from './route.ts'

export const HealthReplySchema = z.object({
  ok: z.literal(true),
  peerId: z.string(),
  /** live peers in its peer table */
  peersAlive: z.number().int().min(0),
})

/** `GET /health`: is the node up. */
export const healthRoute = {
  method: 'GET',
  path: '/health',
  reply: HealthReplySchema,
} as const satisfies RouteSpec

export const NodeInfoSchema = z.object({
  peerId: z.string(),
  multiaddrs: z.array(z.string()),
  /** its signed covenant; the client checks the signature */
  covenant: SignedCovenantJSONSchema,
  /** holders per block (k) */
  replicas: z.number().int().min(1),
})
export type NodeInfo = z.infer<typeof NodeInfoSchema>

/** `GET /v1/node`: the node's id, addresses and signed covenant. */
export const nodeRoute = {
  method: 'GET',
  path: '/v1/node',
  reply: NodeInfoSchema,
} as const satisfies RouteSpec

export const PeerInfoSchema = z.object({
  id: z.string(),
  addrs: z.array(z.string()),
  alive: z.boolean(),
  /** ms timestamp of its last verified hello */
  lastSeen: z.number(),
  /** this is the node answering */
  self: z.boolean(),
  /** its signed covenant, null until a hello brought one */
  covenant: SignedCovenantJSONSchema.nullable(),
  /** conflict evidence this node holds against the peer */
  conflicts: z.number().int().min(0),
})
export type PeerInfo = z.infer<typeof PeerInfoSchema>

export const PeersReplySchema = z.object({ peers: z.array(PeerInfoSchema) })

/** `GET /v1/peers`: the node's peer table, itself first. */
export const peersRoute = {
  method: 'GET',
  path: '/v1/peers',
  reply: PeersReplySchema,
} as const satisfies RouteSpec

/** `GET /metrics`: Prometheus text. */
export const metricsRoute = { method: 'GET', path: '/metrics', reply: 'text' } as const satisfies RouteSpec
