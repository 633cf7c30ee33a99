/** Blocks and functions: what storage serves over HTTP. */
import { z } from 'zod'
import { MAX_BLOCK_BYTES, MAX_MANIFEST_BYTES, ManifestJSONSchema } from '../content/index.ts'
import type { RouteSpec } from './route.ts'

/** `:cid` in a path; what it names is checked by the handler (INVALID_CID). */
export const CidParamsSchema = z.strictObject({ cid: z.string().min(1).max(128) })

/**
 * `PUT /v1/blocks` takes no query. It once took `?tags=`; a block's tags now come only from the
 * signed manifest that names it (`POST /v1/functions`), so a caller still sending them is told so.
 */
export const PutBlockQuerySchema = z.strictObject(
  {},
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `takes no query (${issue.keys.join(', ')}): a block's tags come only from the signed manifest that names it (POST /v1/functions)`
        : undefined,
  },
)

export const PutBlockReplySchema = z.object({
  cid: z.string(),
  /** peers that confirmed holding it, closest first */
  holders: z.array(z.string()),
  /** how many holders were wanted (k) */
  wanted: z.number().int().min(1),
})
export type PutBlockReply = z.infer<typeof PutBlockReplySchema>

/** `PUT /v1/blocks`: stores the raw body (any content type) on its k holders, without tags. */
export const putBlockRoute = {
  method: 'PUT',
  path: '/v1/blocks',
  query: PutBlockQuerySchema,
  body: 'bytes',
  reply: PutBlockReplySchema,
  bodyLimit: MAX_BLOCK_BYTES,
} as const satisfies RouteSpec

/** `GET /v1/blocks/:cid`: the block's bytes, from here or the network, hash-checked. */
export const getBlockRoute = {
  method: 'GET',
  path: '/v1/blocks/:cid',
  params: CidParamsSchema,
  reply: 'bytes',
} as const satisfies RouteSpec

/** Response headers of {@link getBlockRoute}. */
export const BLOCK_TAGS_HEADER = 'x-covenant-tags'
export const BLOCK_SOURCE_HEADER = 'x-covenant-source'

export const HoldersReplySchema = z.object({ cid: z.string(), holders: z.array(z.string()) })

/** `GET /v1/blocks/:cid/holders`: live peers that hold the block, closest first. */
export const blockHoldersRoute = {
  method: 'GET',
  path: '/v1/blocks/:cid/holders',
  params: CidParamsSchema,
  reply: HoldersReplySchema,
} as const satisfies RouteSpec

/** Body of `POST /v1/functions`: the bundled module and its signed manifest (DAG-CBOR, base64). */
export const DeployBodySchema = z.strictObject({
  code: z.string().max(MAX_BLOCK_BYTES),
  manifest: z
    .string()
    .max(Math.ceil((MAX_MANIFEST_BYTES * 4) / 3) + 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
})
export type DeployBody = z.infer<typeof DeployBodySchema>

export const DeployReplySchema = z.object({
  /** the manifest CID: the function's name */
  cid: z.string(),
  codeCid: z.string(),
  holders: z.array(z.string()),
  codeHolders: z.array(z.string()),
  wanted: z.number().int().min(1),
})
export type DeployReply = z.infer<typeof DeployReplySchema>

/** `POST /v1/functions`: stores a function's code and manifest. */
export const deployRoute = {
  method: 'POST',
  path: '/v1/functions',
  body: DeployBodySchema,
  reply: DeployReplySchema,
  // the code as JSON text, with room for escapes
  bodyLimit: 3 * MAX_BLOCK_BYTES,
} as const satisfies RouteSpec

export const FunctionInfoSchema = z.object({
  cid: z.string(),
  manifest: ManifestJSONSchema,
  holders: z.array(z.string()),
})
export type FunctionInfo = z.infer<typeof FunctionInfoSchema>

/** `GET /v1/functions/:cid`: a function's manifest and holders. */
export const getFunctionRoute = {
  method: 'GET',
  path: '/v1/functions/:cid',
  params: CidParamsSchema,
  reply: FunctionInfoSchema,
} as const satisfies RouteSpec

/** Body of `POST /v1/functions/inspect`: a module as pasted, JavaScript or TypeScript. */
export const InspectBodySchema = z.strictObject({
  code: z.string().max(MAX_BLOCK_BYTES),
  /** strip TypeScript types first @default false */
  typescript: z.boolean().default(false),
})

export const InspectReplySchema = z.object({
  /** the module as JavaScript: what to deploy (the code itself, or with its types stripped) */
  code: z.string(),
  exports: z.array(z.string()),
  /** every module it names, as written; one it imports when it loads makes a deploy fail */
  imports: z.array(
    z.object({
      path: z.string(),
      kind: z.enum(['import-statement', 'dynamic-import', 'require-call', 'require-resolve']),
    }),
  ),
})
export type InspectReply = z.infer<typeof InspectReplySchema>

/**
 * `POST /v1/functions/inspect`: reads a module's exports and imports (for a browser, which has no
 * bundler). Resolves nothing and runs nothing: the node only parses the text.
 */
export const inspectRoute = {
  method: 'POST',
  path: '/v1/functions/inspect',
  body: InspectBodySchema,
  reply: InspectReplySchema,
  bodyLimit: 3 * MAX_BLOCK_BYTES,
} as const satisfies RouteSpec

export const StorageQuerySchema = z.strictObject({
  /** at most this many held blocks, in CID order @default 100 */
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** the blocks after this CID (paging) */
  after: z.string().max(128).optional(),
})

/** Why this node holds a block, in the placement rule's terms. */
export const HeldWhySchema = z.discriminatedUnion('role', [
  /** one of the k closest live nodes whose covenant accepts it: `rank` 1 is the closest */
  z.object({ role: z.literal('holder'), rank: z.number().int().min(1) }),
  /** k closer willing nodes exist; it goes once they confirm their copies */
  z.object({ role: z.literal('surplus'), rank: z.number().int().min(1) }),
  /** this node's covenant no longer accepts it; it goes once k holders confirm theirs */
  z.object({ role: z.literal('refused') }),
  /** kept whatever the rule says */
  z.object({ role: z.literal('pinned') }),
])

export const StorageReplySchema = z.object({
  /** bytes held, against the covenant's `store.maxBytes` */
  usedBytes: z.number().int().min(0),
  maxBytes: z.number().int().min(0),
  storeEnabled: z.boolean(),
  /** holders per block (k) */
  replicas: z.number().int().min(1),
  /** blocks held in all */
  blocks: z.number().int().min(0),
  /** a page of them, in CID order, each with why it is here */
  held: z.array(
    z.object({
      cid: z.string(),
      size: z.number().int().min(0),
      tags: z.array(z.string()),
      /** ms timestamp of when it was stored here */
      storedAt: z.number(),
      why: HeldWhySchema,
    }),
  ),
  repair: z.object({
    intervalMs: z.number().int().min(0),
    /** the last repair round, null before the first */
    last: z
      .object({
        at: z.number(),
        ms: z.number().min(0),
        checked: z.number().int().min(0),
        pushed: z.number().int().min(0),
        dropped: z.number().int().min(0),
      })
      .nullable(),
    /**
     * Blocks whose desired holders had not all confirmed a copy after the last round: `push` when
     * this node pushes them, `wait` when a closer holder does.
     */
    queue: z.array(
      z.object({ cid: z.string(), missing: z.array(z.string()), action: z.enum(['push', 'wait']) }),
    ),
  }),
})
export type StorageReply = z.infer<typeof StorageReplySchema>

/** `GET /v1/storage?limit=N&after=CID`: what this node stores, why, against which limit, and its repair queue. */
export const storageRoute = {
  method: 'GET',
  path: '/v1/storage',
  query: StorageQuerySchema,
  reply: StorageReplySchema,
} as const satisfies RouteSpec
