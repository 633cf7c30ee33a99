/**
 * Content: CIDs, verified blocks, the block store, and the signed manifest that names a deployed
 * function.
 *
 * Every CID is CIDv1 with sha2-256; code and data blocks use the `raw` codec, manifests
 * `dag-cbor`. Nothing here trusts bytes it did not hash: the block store verifies a block when it
 * is written and again when it is read, and a manifest is accepted only with its publisher's
 * signature.
 *
 * @example
 * ```ts
 * const code = new TextEncoder().encode('export const add = (a, b) => a + b')
 * const codeCid = cidForBytes(code)                    // raw codec
 * const store = openBlockStore({ path: '.covenant/blocks.db' })
 * store.put(codeCid, code, { tags: ['math'] })
 * const { cid, bytes } = createManifest(key, { code: codeCid, size: code.length, exports: ['add'] })
 * store.put(cid, bytes)
 * decodeManifest(store.get(cid)!).exports              // ['add']
 * parseCid(cid.toString()).equals(cid)                 // true
 * ```
 */
export { CID } from 'multiformats/cid'
export type { BlockMeta, BlockStore, BlockStoreInit, StoredBlockInfo } from './block-store.ts'
export { BLOCK_STORE_SCHEMA_VERSION, openBlockStore } from './block-store.ts'
export type { BlockCodec } from './cid.ts'
export {
  asSupportedCid,
  assertBlock,
  cidForBytes,
  cidString,
  DAG_CBOR_CODEC,
  isSupportedCid,
  MAX_BLOCK_BYTES,
  parseCid,
  RAW_CODEC,
  SHA2_256_CODE,
  verifyBlock,
} from './cid.ts'
export type { Manifest, ManifestInit, ManifestJSON } from './manifest.ts'
export {
  CidSchema,
  createManifest,
  decodeManifest,
  ExportNameSchema,
  MAX_EXPORTS,
  MAX_MANIFEST_BYTES,
  ManifestJSONSchema,
  ManifestSchema,
  manifestToJSON,
} from './manifest.ts'
export { MAX_TAGS, normalizeTags, TagSchema, TagsSchema } from './tags.ts'
