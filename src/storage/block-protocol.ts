/** The block protocol's messages: put, get and has of blocks between nodes. */
import { z } from 'zod'
import { MAX_BLOCK_BYTES, MAX_BLOCK_LABELS, MAX_MANIFEST_BYTES } from '../content/index.ts'

/** Put, get and has of blocks between nodes. */
export const BLOCK_PROTOCOL = '/covenant/block/1.0.0'

/** Most CIDs in one `has` request. */
export const MAX_HAS_CIDS = 256
/** Largest block-protocol message: one block, the manifests that label it, and an envelope. */
export const MAX_BLOCK_MESSAGE_BYTES = MAX_BLOCK_BYTES + MAX_BLOCK_LABELS * MAX_MANIFEST_BYTES + 16 * 1024

const cidText = z.string().min(1).max(128)
const bytesUpTo = (max: number) =>
  z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length <= max, {
    message: `expected bytes, at most ${max}`,
  })
const blockBytes = bytesUpTo(MAX_BLOCK_BYTES)
/**
 * Signed manifests that name the block: its tags travel only as these, so whoever receives a
 * block checks the publisher's signature instead of believing the sender.
 */
const manifests = z.array(bytesUpTo(MAX_MANIFEST_BYTES)).max(MAX_BLOCK_LABELS)

/** Requests on `/covenant/block/1.0.0`. */
export const blockRequestSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('put'),
    cid: cidText,
    bytes: blockBytes,
    manifests: manifests.default([]),
  }),
  z.strictObject({ type: z.literal('get'), cid: cidText }),
  z.strictObject({ type: z.literal('has'), cids: z.array(cidText).max(MAX_HAS_CIDS) }),
])
export type BlockRequest = z.infer<typeof blockRequestSchema>

export const putReplySchema = z.strictObject({ stored: z.literal(true) })
export const getReplySchema = z.strictObject({ bytes: blockBytes, manifests })
export const hasReplySchema = z.strictObject({ has: z.array(z.boolean()).max(MAX_HAS_CIDS) })
