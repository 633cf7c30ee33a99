/**
 * The framing every Covenant protocol shares, and its default limits. A protocol is one request
 * and one reply per stream, each a varint-length-prefixed DAG-CBOR value; the reply is
 * `{ result }` or `{ error }`. Each part names its own protocols next to their messages (peers:
 * hello, storage: block, exec: exec and conflict); only the DHT's id lives here, with the host.
 */
import { z } from 'zod'
import { ErrorJSONSchema } from '../errors/index.ts'

/** Private DHT protocol, so a Covenant network never mixes with the public IPFS DHT. */
export const KAD_PROTOCOL = '/covenant/kad/1.0.0'

/** Default largest inbound request, in bytes, when a handler sets none. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
/** Default largest reply a caller accepts. */
export const DEFAULT_MAX_REPLY_BYTES = 64 * 1024
/** Default concurrent inbound streams per protocol per connection. */
export const DEFAULT_MAX_INBOUND_STREAMS = 16
/** Default concurrent inbound requests per protocol for the whole node. */
export const DEFAULT_MAX_CONCURRENT = 64
/** Default concurrent inbound requests per protocol from one remote peer. */
export const DEFAULT_MAX_PER_PEER = 8
/** Default time a peer has to deliver its whole request once it opened the stream. */
export const DEFAULT_READ_TIMEOUT_MS = 5_000
/** Default time a handler has to answer a request it has read. */
export const DEFAULT_RUN_TIMEOUT_MS = 10_000
/** Default time a caller waits for dial + reply. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/** The reply envelope: exactly one of `result` or `error` (a typed error, see `errors`). */
export const replyEnvelopeSchema = z.union([
  z.strictObject({ error: ErrorJSONSchema }),
  z.strictObject({ result: z.unknown() }),
])
export type ReplyEnvelope = z.infer<typeof replyEnvelopeSchema>
