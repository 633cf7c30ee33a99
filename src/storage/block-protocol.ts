/** The block protocol's messages: put, get and has of blocks between nodes. */
import { z } from 'zod'
import { MAX_BLOCK_BYTES, TagsSchema } from '../content/index.ts'

/** Put, get and has of blocks between nodes. */
export const BLOCK_PROTOCOL = '/covenant/block/1.0.0'

/** Most CIDs in one `has` request. */
export const MAX_HAS_CIDS = 256
/** Largest block-protocol message: one block plus its envelope. */
export const MAX_BLOCK_MESSAGE_BYTES = MAX_BLOCK_BYTES + 16 * 1024

const cidText = z.string().min(1).max(128)
const blockBytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length <= MAX_BLOCK_BYTES, {
  message: `expected bytes, at most ${MAX_BLOCK_BYTES}`,
})

/** Requests on `/covenant/block/1.0.0`. */
export const blockRequestSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('put'), cid: cidText, bytes: blockBytes, tags: TagsSchema }),
  z.strictObject({ type: z.literal('get'), cid: cidText }),
  z.strictObject({ type: z.literal('has'), cids: z.array(cidText).max(MAX_HAS_CIDS) }),
])
export type BlockRequest = z.infer<typeof blockRequestSchema>

export const putReplySchema = z.strictObject({ stored: z.literal(true) })
export const getReplySchema = z.strictObject({ bytes: blockBytes, tags: TagsSchema })
export const hasReplySchema = z.strictObject({ has: z.array(z.boolean()).max(MAX_HAS_CIDS) })
