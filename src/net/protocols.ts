/**
 * Protocol ids and wire limits. Every Covenant protocol is one request and one reply per stream,
 * each a varint-length-prefixed DAG-CBOR value; the reply is `{ result }` or `{ error }`.
 */
import { z } from 'zod'

/** Private DHT protocol, so a Covenant network never mixes with the public IPFS DHT. */
export const KAD_PROTOCOL = '/covenant/kad/1.0.0'
/** Peers exchange signed covenants, listen addresses and known peers. */
export const HELLO_PROTOCOL = '/covenant/hello/1.0.0'
/** Put, get and has of blocks between nodes. */
export const BLOCK_PROTOCOL = '/covenant/block/1.0.0'

/** Default largest inbound request, in bytes, when a handler sets none. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
/** Default largest reply a caller accepts. */
export const DEFAULT_MAX_REPLY_BYTES = 64 * 1024
/** Default concurrent inbound streams per protocol per connection. */
export const DEFAULT_MAX_INBOUND_STREAMS = 16
/** Default concurrent inbound requests per protocol for the whole node. */
export const DEFAULT_MAX_CONCURRENT = 64
/** Default time a peer has to send its request and the handler to answer. */
export const DEFAULT_INBOUND_TIMEOUT_MS = 10_000
/** Default time a caller waits for dial + reply. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/** A typed error on the wire. */
export const wireErrorSchema = z.object({
  code: z.string().max(64),
  message: z.string().max(4096),
})

/** The reply envelope: exactly one of `result` or `error`. */
export const replyEnvelopeSchema = z.union([
  z.object({ error: wireErrorSchema }).strict(),
  z.object({ result: z.unknown() }).strict(),
])
export type ReplyEnvelope = z.infer<typeof replyEnvelopeSchema>
