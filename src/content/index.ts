/**
 * Content: CIDs, verified blocks, the block store, and the signed manifest that names a deployed
 * function.
 *
 * Every CID is CIDv1 with sha2-256; code and data blocks use the `raw` codec, manifests
 * `dag-cbor`. Nothing here trusts bytes it did not hash: the block store verifies a block when it
 * is written and again when it is read, and a manifest is accepted only with its publisher's
 * signature. A block's tags come only from signed manifests: a manifest's own, and, for the block
 * a manifest names, the labels ({@link manifestLabel}) the store was given for it.
 *
 * @example
 * ```ts
 * const code = new TextEncoder().encode('export const add = (a, b) => a + b')
 * const codeCid = cidForBytes(code)                    // raw codec
 * const store = openBlockStore({ path: '.covenant/blocks.db' })
 * const { cid, bytes } = createManifest(key, { code: codeCid, size: code.length, exports: ['add'], tags: ['math'] })
 * store.put(codeCid, code, { labels: [manifestLabel(bytes)] })
 * store.put(cid, bytes)
 * store.info(codeCid)!.tags                            // ['math'], from the signed manifest
 * decodeManifest(store.get(cid)!).exports              // ['add']
 * parseCid(cid.toString()).equals(cid)                 // true
 * ```
 */
export { CID } from 'multiformats/cid'
export type { BlockMeta, BlockStore, BlockStoreInit, StoredBlockInfo } from './block-store.ts'
export { BLOCK_STORE_SCHEMA_VERSION, MAX_BLOCK_LABELS, openBlockStore } from './block-store.ts'
export type { BlockCodec } from './cid.ts'
export {
  asSupportedCid,
  assertBlock,
  canonicalCodec,
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
export type { Manifest, ManifestInit, ManifestJSON, ManifestLabel } from './manifest.ts'
export {
  CidSchema,
  createManifest,
  decodeManifest,
  ExportNameSchema,
  MAX_EXPORTS,
  MAX_MANIFEST_BYTES,
  ManifestJSONSchema,
  ManifestSchema,
  manifestLabel,
  manifestToJSON,
  ownLabel,
  ownTags,
} from './manifest.ts'
export { MAX_TAGS, normalizeTags, TagSchema, TagsSchema } from './tags.ts'
