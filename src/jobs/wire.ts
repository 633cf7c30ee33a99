/**
 * The jobs protocol's messages, `/covenant/jobs/1.0.0`: how a job's keepers hand each other jobs
 * and states, and how any node asks a keeper for one. One request, one reply per stream (or per
 * frame of a session of the protocol, which keepers use), length-prefixed DAG-CBOR like every
 * Covenant protocol; each message carries up to
 * {@link MAX_BATCH} items so a keeper with many jobs to pass on sends few messages. Records and
 * states travel as their canonical DAG-CBOR bytes; the receiver checks each itself.
 */
import { z } from 'zod'
import { cidString } from '../content/index.ts'

export const JOBS_PROTOCOL = '/covenant/jobs/1.0.0'

/** Items per message. */
export const MAX_BATCH = 256
/** The bytes of one record with its proof, or of one state: a certificate and an output each carry up to 1 MiB of JSON. */
export const MAX_ITEM_BYTES = 6 * 1024 * 1024
/** A sender packs items into messages of about this many bytes (one larger item goes alone). */
export const BATCH_BYTES = 2 * 1024 * 1024
/** The largest message or reply: a batch, or one item of the largest size, with its envelope. */
export const MAX_JOBS_MESSAGE_BYTES = MAX_ITEM_BYTES + BATCH_BYTES + 64 * 1024

const Id = cidString('dag-cbor')
const Bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length <= MAX_ITEM_BYTES, {
  message: `expected bytes, at most ${MAX_ITEM_BYTES}`,
})
const ErrorReply = z.strictObject({ code: z.string().max(64), message: z.string().max(4096) })

/** Requests on `/covenant/jobs/1.0.0`. */
export const JobsRequestSchema = z.discriminatedUnion('type', [
  /**
   * keep these jobs: each its doc (record and proof), with a state when handed over from another
   * keeper (a new job starts queued)
   */
  z.strictObject({
    type: z.literal('put'),
    jobs: z
      .array(z.strictObject({ doc: Bytes, state: Bytes.optional() }))
      .min(1)
      .max(MAX_BATCH),
  }),
  /** here are states of jobs you keep: keep whichever wins */
  z.strictObject({
    type: z.literal('offer'),
    states: z
      .array(z.strictObject({ id: Id, state: Bytes }))
      .min(1)
      .max(MAX_BATCH),
  }),
  /** your states of these jobs, with their docs if `docs` */
  z.strictObject({ type: z.literal('get'), ids: z.array(Id).min(1).max(MAX_BATCH), docs: z.boolean() }),
])
export type JobsRequest = z.infer<typeof JobsRequestSchema>

/** One job's outcome on the receiver: the state it keeps now, or why it would not keep the job. */
export const ItemReplySchema = z.union([
  /** it keeps exactly the state sent (for a new job, the queued one) */
  z.strictObject({ id: Id, kept: z.literal(true) }),
  /** it keeps another state, which wins over the one sent */
  z.strictObject({ id: Id, state: Bytes }),
  /** an offer for a job the receiver does not hold: send it with `put` */
  z.strictObject({ id: Id, missing: z.literal(true) }),
  z.strictObject({ id: Id.optional(), error: ErrorReply }),
])
export type ItemReply = z.infer<typeof ItemReplySchema>

export const ItemsReplySchema = z.strictObject({ results: z.array(ItemReplySchema).max(MAX_BATCH) })
export type ItemsReply = z.infer<typeof ItemsReplySchema>

export const GetReplySchema = z.strictObject({
  jobs: z.array(z.strictObject({ id: Id, state: Bytes, doc: Bytes.optional() })).max(MAX_BATCH),
})
export type GetReply = z.infer<typeof GetReplySchema>
