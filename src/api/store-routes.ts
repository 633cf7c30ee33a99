/**
 * Datastores over HTTP: create a namespace, commit to it, read it at any version, revoke a grant.
 * Any node serves every route: from its own copy when it holds the namespace, else by asking the
 * holders. Values are JSON; what carries signatures and capability chains (a commit, a
 * revocation, a signed read) travels as base64 of its DAG-CBOR bytes, its only exact spelling.
 */
import { z } from 'zod'
import {
  CommitReplySchema,
  HeadSchema,
  HistoryItemSchema,
  KeyVersionSchema,
  MAX_ENTRY_BYTES,
  WritePolicySchema,
} from '../datastore/index.ts'
import type { RouteSpec } from './route.ts'

/** Padded base64 of at most `bytes` bytes. */
function base64Of(bytes: number) {
  return z
    .string()
    .max(Math.ceil(bytes / 3) * 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64')
}

const NsParam = z.string().min(1).max(128)
const Seq = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Limit = z.coerce.number().int().min(1).max(1000)
/** A private namespace's signed read (`signRead`), base64 of its DAG-CBOR. */
const Reader = base64Of(1024).optional()

/** `:ns` in a path; what it names is checked by the handler. */
export const StoreParamsSchema = z.strictObject({ ns: NsParam })
/** `:ns` and `:key` (URI-encoded in the path). */
export const StoreKeyParamsSchema = z.strictObject({ ns: NsParam, key: z.string().min(1).max(2048) })

/** A signed namespace descriptor in JSON: its fields as they are, `signature` in base64. */
export const DescriptorJSONSchema = z.looseObject({ signature: base64Of(64) })
export type DescriptorJSON = z.infer<typeof DescriptorJSONSchema>

export const CreateStoreBodySchema = z.strictObject({ descriptor: DescriptorJSONSchema })

export const CreateStoreReplySchema = z.object({
  ns: z.string(),
  /** the holders that confirmed holding it, closest first */
  holders: z.array(z.string()),
  /** how many holders were wanted (k) */
  wanted: z.number().int().min(1),
  head: HeadSchema,
})
export type CreateStoreReply = z.infer<typeof CreateStoreReplySchema>

/** `POST /v1/stores`: hold a new namespace from its owner-signed genesis descriptor (version 1). */
export const createStoreRoute = {
  method: 'POST',
  path: '/v1/stores',
  body: CreateStoreBodySchema,
  reply: CreateStoreReplySchema,
} as const satisfies RouteSpec

export const StoreInfoSchema = z.object({
  ns: z.string(),
  owner: z.string(),
  name: z.string(),
  public: z.boolean(),
  /** the descriptor's version: 1, then one more for each policy change */
  version: z.number().int().min(1),
  policy: WritePolicySchema,
  descriptor: DescriptorJSONSchema,
  /** the head of the holder that answered */
  head: HeadSchema,
  /** the holders in the answering node's view, the primary first */
  holders: z.array(z.string()),
  /** the node whose copy answered: the one asked, when it holds the namespace */
  servedBy: z.string(),
})
export type StoreInfo = z.infer<typeof StoreInfoSchema>

/** `GET /v1/stores/:ns`: the descriptor, policy and head. */
export const storeInfoRoute = {
  method: 'GET',
  path: '/v1/stores/:ns',
  params: StoreParamsSchema,
  reply: StoreInfoSchema,
} as const satisfies RouteSpec

export const GetKeyQuerySchema = z.strictObject({
  /** the namespace version to read at @default the head */
  at: Seq.optional(),
  reader: Reader,
})

export const GetKeyReplySchema = z.object({
  ns: z.string(),
  key: z.string(),
  ...KeyVersionSchema.shape,
  /** the namespace version read at */
  at: z.number().int().min(0),
})
export type GetKeyReply = z.infer<typeof GetKeyReplySchema>

/** `GET /v1/stores/:ns/keys/:key?at=N`: a key at the head or at version N; `null` if absent. */
export const getKeyRoute = {
  method: 'GET',
  path: '/v1/stores/:ns/keys/:key',
  params: StoreKeyParamsSchema,
  query: GetKeyQuerySchema,
  reply: GetKeyReplySchema,
} as const satisfies RouteSpec

export const ListKeysQuerySchema = z.strictObject({
  prefix: z.string().max(512).default(''),
  at: Seq.optional(),
  /** the key the previous page ended at */
  after: z.string().max(512).default(''),
  limit: Limit.default(100),
  reader: Reader,
})

export const ListKeysReplySchema = z.object({
  ns: z.string(),
  at: z.number().int().min(0),
  keys: z.array(z.object({ key: z.string(), ...KeyVersionSchema.shape })),
  /** `after` for the next page, null at the end */
  next: z.string().nullable(),
})
export type ListKeysReply = z.infer<typeof ListKeysReplySchema>

/** `GET /v1/stores/:ns/keys?prefix=&at=&after=&limit=`: the keys present under a prefix, in UTF-8 order. */
export const listKeysRoute = {
  method: 'GET',
  path: '/v1/stores/:ns/keys',
  params: StoreParamsSchema,
  query: ListKeysQuerySchema,
  reply: ListKeysReplySchema,
} as const satisfies RouteSpec

export const HistoryQuerySchema = z.strictObject({
  after: Seq.default(0),
  limit: Limit.default(100),
  reader: Reader,
})

export const StoreHistoryReplySchema = z.object({
  ns: z.string(),
  head: HeadSchema,
  entries: z.array(HistoryItemSchema),
  /** `after` for the next page, null at the end */
  next: z.number().int().nullable(),
})
export type StoreHistoryReply = z.infer<typeof StoreHistoryReplySchema>

/** `GET /v1/stores/:ns/history?after=&limit=`: the namespace's entries, oldest first. */
export const historyRoute = {
  method: 'GET',
  path: '/v1/stores/:ns/history',
  params: StoreParamsSchema,
  query: HistoryQuerySchema,
  reply: StoreHistoryReplySchema,
} as const satisfies RouteSpec

export const KeyHistoryQuerySchema = z.strictObject({
  /** only versions before this one */
  before: Seq.optional(),
  limit: Limit.default(100),
  reader: Reader,
})

export const StoreKeyHistoryReplySchema = z.object({
  ns: z.string(),
  key: z.string(),
  /** newest first; a `null` value is a deletion */
  versions: z.array(z.object(KeyVersionSchema.shape)),
  /** `before` for the next page, null at the end */
  next: z.number().int().nullable(),
})
export type StoreKeyHistoryReply = z.infer<typeof StoreKeyHistoryReplySchema>

/** `GET /v1/stores/:ns/keys/:key/history?before=&limit=`: a key's versions, newest first. */
export const keyHistoryRoute = {
  method: 'GET',
  path: '/v1/stores/:ns/keys/:key/history',
  params: StoreKeyParamsSchema,
  query: KeyHistoryQuerySchema,
  reply: StoreKeyHistoryReplySchema,
} as const satisfies RouteSpec

/** A commit (`createKeyCommit`, …) as base64 of its DAG-CBOR. */
export const CommitBodySchema = z.strictObject({ commit: base64Of(MAX_ENTRY_BYTES) })

export { CommitReplySchema }

/** `POST /v1/stores/:ns/commit`: apply a commit on the namespace's holders, through its primary. */
export const commitRoute = {
  method: 'POST',
  path: '/v1/stores/:ns/commit',
  params: StoreParamsSchema,
  body: CommitBodySchema,
  reply: CommitReplySchema,
  bodyLimit: Math.ceil(MAX_ENTRY_BYTES / 3) * 4 + 1024,
} as const satisfies RouteSpec

const MAX_REVOCATION_BYTES = 128 * 1024

/** A revocation (`revoke`) as base64 of its DAG-CBOR. */
export const RevokeBodySchema = z.strictObject({ revocation: base64Of(MAX_REVOCATION_BYTES) })

/**
 * `POST /v1/stores/:ns/revocations`: record a revocation in the namespace's history, as a commit
 * through its primary (the reply is a commit's: `id` is the revocation's CID). Every holder honours
 * it for every entry after it.
 */
export const revokeRoute = {
  method: 'POST',
  path: '/v1/stores/:ns/revocations',
  params: StoreParamsSchema,
  body: RevokeBodySchema,
  reply: CommitReplySchema,
  bodyLimit: Math.ceil(MAX_REVOCATION_BYTES / 3) * 4 + 1024,
} as const satisfies RouteSpec

export const RevocationsQuerySchema = z.strictObject({
  /** the CID the previous page ended at */
  after: z.string().max(128).default(''),
  limit: Limit.default(100),
  reader: Reader,
})

export const StoreRevocationsReplySchema = z.object({
  ns: z.string(),
  /** each as base64 of its DAG-CBOR, by CID, with the seq of the entry that records it */
  revocations: z.array(z.object({ cid: z.string(), seq: z.number().int().min(1), revocation: z.string() })),
  next: z.string().nullable(),
})

/** `GET /v1/stores/:ns/revocations`: the revocations in a holder's history (the answering node's, if it holds the namespace). */
export const revocationsRoute = {
  method: 'GET',
  path: '/v1/stores/:ns/revocations',
  params: StoreParamsSchema,
  query: RevocationsQuerySchema,
  reply: StoreRevocationsReplySchema,
} as const satisfies RouteSpec
