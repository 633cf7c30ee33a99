/**
 * The store protocol's messages, `/covenant/store/1.0.0`: how a namespace's holders replicate it
 * and how any node asks a holder for a commit or a read. One request, one reply, length-prefixed
 * DAG-CBOR like every Covenant protocol (a commit's requests and one-key reads travel on a
 * session, the others on a stream each); why a node will not answer travels as the protocol's
 * error reply. Every entry, descriptor and revocation a message carries is checked by
 * the receiver itself (they are self-certifying), so a message is never taken on the sender's word.
 */
import { z } from 'zod'
import { CanonicalCidSchema, RevocationSchema } from '../caps/index.ts'
import { isJsonValue, type JsonValue } from '../encoding/index.ts'
import { KeySchema, MAX_ENTRY_BYTES } from './entry.ts'
import { SignedDescriptorSchema } from './namespace.ts'

export const STORE_PROTOCOL = '/covenant/store/1.0.0'

/** The largest request: a commit or an entry (one block) with its envelope. */
export const MAX_STORE_MESSAGE_BYTES = MAX_ENTRY_BYTES + 64 * 1024
/** What a page of entries, keys or versions may add up to; one item larger than this goes alone. */
export const STORE_PAGE_BYTES = 4 * 1024 * 1024
/** The largest reply: a page, or one entry of the largest size. */
export const MAX_STORE_REPLY_BYTES = MAX_ENTRY_BYTES + STORE_PAGE_BYTES + 64 * 1024

const Ns = CanonicalCidSchema
const Seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Limit = z.number().int().min(1).max(1000)
const Bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length <= MAX_ENTRY_BYTES, {
  message: `expected bytes, at most ${MAX_ENTRY_BYTES}`,
})
const Json = z.custom<JsonValue>(isJsonValue, { message: 'expected a JSON value' })
/** A reader's signed read (see `signRead`), for a private namespace; checked by the holder. */
const Reader = z.unknown().optional()

/** Requests on `/covenant/store/1.0.0`. */
export const StoreRequestSchema = z.discriminatedUnion('type', [
  /** to any holder: apply this commit as the namespace's primary (the receiver replicates it) */
  z.strictObject({ type: z.literal('commit'), commit: z.unknown() }),
  /** to a holder: hold this namespace from its genesis descriptor */
  z.strictObject({ type: z.literal('create'), genesis: z.unknown() }),
  /** from the primary to a holder: would you apply this entry? (every check, nothing applied) */
  z.strictObject({ type: z.literal('check'), ns: Ns, entry: Bytes }),
  /** from the primary to a holder: apply this entry, which must extend your head */
  z.strictObject({ type: z.literal('append'), ns: Ns, entry: Bytes }),
  /** your head, with the CID of your entry at `at` when you have one */
  z.strictObject({ type: z.literal('head'), ns: Ns, at: Seq.optional() }),
  /** your entries after `after`, oldest first, as many as fit a page */
  z.strictObject({ type: z.literal('entries'), ns: Ns, after: Seq, limit: Limit }),
  /**
   * which entry you hold at `seq`, and which one you promised a primary there: how a holder whose
   * history forked finds the branch a majority holds. One that has neither promises no primary
   * an entry at `seq` for a while (it is being decided).
   */
  z.strictObject({
    type: z.literal('branch'),
    ns: Ns,
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  }),
  /** the CIDs of your entries after `after`: how two holders find where their histories part */
  z.strictObject({ type: z.literal('cids'), ns: Ns, after: Seq, limit: Limit }),
  /** the revocations in your history, by CID, after `after` (a read) */
  z.strictObject({
    type: z.literal('revocations'),
    ns: Ns,
    after: z.string().max(128),
    limit: Limit,
    reader: Reader,
  }),
  /** I hold entries of this namespace you may lack: compare with me */
  z.strictObject({ type: z.literal('nudge'), ns: Ns }),
  /** reads, served by a holder from its own copy */
  z.strictObject({ type: z.literal('info'), ns: Ns }),
  z.strictObject({ type: z.literal('get'), ns: Ns, key: KeySchema, at: Seq.optional(), reader: Reader }),
  z.strictObject({
    type: z.literal('list'),
    ns: Ns,
    prefix: z.string().max(512),
    at: Seq.optional(),
    after: z.string().max(512),
    limit: Limit,
    reader: Reader,
  }),
  z.strictObject({ type: z.literal('history'), ns: Ns, after: Seq, limit: Limit, reader: Reader }),
  z.strictObject({
    type: z.literal('keyHistory'),
    ns: Ns,
    key: KeySchema,
    before: Seq.optional(),
    limit: Limit,
    reader: Reader,
  }),
])
export type StoreRequest = z.infer<typeof StoreRequestSchema>

export const HeadSchema = z.strictObject({ seq: Seq, cid: CanonicalCidSchema, at: Seq })

/** What `append`, `create` and `head` answer. */
export const HeadReplySchema = z.strictObject({
  head: HeadSchema,
  /** the CID of the entry at the `at` asked (the genesis descriptor's at 0), null if beyond the head */
  cidAt: CanonicalCidSchema.nullable(),
})
export type HeadReply = z.infer<typeof HeadReplySchema>

export const CommitReplySchema = z.strictObject({
  ns: CanonicalCidSchema,
  seq: Seq,
  /** the entry's CID */
  cid: CanonicalCidSchema,
  /** the commit's id: the write invocation's CID, the request id, or the descriptor's CID */
  id: CanonicalCidSchema,
  /** true if it was applied before: nothing changed, this is the earlier result */
  duplicate: z.boolean(),
  /** the holders known to have applied it, the primary first */
  holders: z.array(z.string().max(128)).max(64),
})
export type CommitReply = z.infer<typeof CommitReplySchema>

/** What `branch` answers: the CID of the entry held at the seq asked, and of the one promised there (null for none). */
export const BranchReplySchema = z.strictObject({
  cid: CanonicalCidSchema.nullable(),
  promised: CanonicalCidSchema.nullable(),
})

export const EntriesReplySchema = z.strictObject({ entries: z.array(Bytes).max(1000) })
export const CidsReplySchema = z.strictObject({
  cids: z.array(z.strictObject({ seq: Seq, cid: CanonicalCidSchema })).max(1000),
})
export const RevocationsReplySchema = z.strictObject({
  revocations: z
    .array(z.strictObject({ cid: CanonicalCidSchema, seq: Seq, revocation: RevocationSchema }))
    .max(1000),
  /** where the next page starts (`after`), null at the end */
  next: CanonicalCidSchema.nullable(),
})
export const OkReplySchema = z.strictObject({ ok: z.literal(true) })

/** A namespace as a holder describes it. */
export const InfoReplySchema = z.strictObject({
  descriptor: SignedDescriptorSchema,
  head: HeadSchema,
})

export const KeyVersionSchema = z.strictObject({
  value: Json.nullable(),
  /** the seq of the entry that last wrote the key, 0 if none did */
  version: Seq,
})

/** `get`: the key at version `at` of the namespace. */
export const GetReplySchema = z.strictObject({ ...KeyVersionSchema.shape, at: Seq })

export const ListReplySchema = z.strictObject({
  at: Seq,
  keys: z.array(z.strictObject({ key: KeySchema, ...KeyVersionSchema.shape })).max(1000),
  /** where the next page starts (`after`), null at the end */
  next: KeySchema.nullable(),
})

export const HistoryItemSchema = z.strictObject({
  seq: z.number().int().min(1),
  cid: CanonicalCidSchema,
  kind: z.enum(['function', 'key', 'policy', 'revocation']),
  id: CanonicalCidSchema,
  at: Seq,
  keys: z.array(KeySchema).max(256),
})

export const HistoryReplySchema = z.strictObject({
  head: HeadSchema,
  entries: z.array(HistoryItemSchema).max(1000),
  /** where the next page starts (`after`), null at the end */
  next: Seq.nullable(),
})

export const KeyHistoryReplySchema = z.strictObject({
  versions: z.array(KeyVersionSchema).max(1000),
  /** where the next page starts (`before`), null at the end */
  next: Seq.nullable(),
})
