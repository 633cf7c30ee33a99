import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { z } from 'zod'
import { bytesFieldsToJSON } from '../encoding/index.ts'
import { CovenantError, issueCode } from '../errors/index.ts'
import {
  KeyIdSchema,
  keyId,
  type PrivateKey,
  SignatureJSONSchema,
  SignatureSchema,
  signValue,
  verifyValue,
} from '../keys/index.ts'
import { asSupportedCid, cidForBytes, cidString, DAG_CBOR_CODEC, MAX_BLOCK_BYTES, RAW_CODEC } from './cid.ts'
import { normalizeTags, TagsSchema } from './tags.ts'

/** The most exports one manifest may list. */
export const MAX_EXPORTS = 256
/** Manifests are small; anything larger is refused before decoding. */
export const MAX_MANIFEST_BYTES = 64 * 1024

/** A CIDv1 sha2-256 raw/dag-cbor link, as decoded from DAG-CBOR. */
export const CidSchema = z.custom<CID>((v) => asSupportedCid(v) !== undefined, {
  message: 'expected a CIDv1 sha2-256 link',
})

/** The name of a function's export: a JavaScript identifier. */
export const ExportNameSchema = z
  .string()
  .max(128)
  .regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'an export name is a JavaScript identifier')

const ManifestBodyShape = {
  v: z.literal(1),
  code: CidSchema.refine((c) => c.code === RAW_CODEC, 'the code block must use the raw codec'),
  exports: z
    .array(ExportNameSchema)
    .min(1)
    .max(MAX_EXPORTS)
    .refine((e) => new Set(e).size === e.length, 'exports must be unique'),
  tags: TagsSchema,
  publisher: KeyIdSchema,
  name: z.string().min(1).max(128).optional(),
  size: z.number().int().min(0).max(MAX_BLOCK_BYTES),
  /**
   * Only in manifests made before 0.1 dropped it: a manifest names its content, not the moment it
   * was signed, so the same code, exports, tags, name and publisher always give the same CID.
   * Still read (and its signature checked) so functions deployed earlier keep working.
   */
  createdAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
}

/** A deployed function: its code block, exports and tags, signed by its publisher. */
export const ManifestSchema = z.strictObject({
  ...ManifestBodyShape,
  signature: SignatureSchema,
})

export type Manifest = z.infer<typeof ManifestSchema>

/** A manifest as the HTTP API shows it: the code CID as a string, the signature in base64. */
export const ManifestJSONSchema = ManifestSchema.extend({
  code: cidString('raw'),
  signature: SignatureJSONSchema,
})
export type ManifestJSON = z.infer<typeof ManifestJSONSchema>

export interface ManifestInit {
  code: CID
  size: number
  exports: string[]
  tags?: string[]
  name?: string
}

function unsigned(m: Omit<Manifest, 'signature'> & { signature?: unknown }): Omit<Manifest, 'signature'> {
  // DAG-CBOR cannot encode undefined: leave absent fields out rather than setting them to undefined.
  const { signature: _, ...rest } = m
  if (rest.name === undefined) delete rest.name
  if (rest.createdAt === undefined) delete rest.createdAt
  return rest
}

export function createManifest(
  key: PrivateKey,
  init: ManifestInit,
): { manifest: Manifest; bytes: Uint8Array; cid: CID } {
  const body = z.strictObject(ManifestBodyShape).safeParse(
    unsigned({
      v: 1,
      code: init.code,
      exports: init.exports,
      tags: normalizeTags(init.tags ?? []),
      publisher: keyId(key),
      name: init.name,
      size: init.size,
    }),
  )
  if (!body.success)
    throw new CovenantError('INVALID_INPUT', `invalid manifest: ${z.prettifyError(body.error)}`)
  // A plain Uint8Array: the signer may return a Buffer, which compares and serializes differently.
  const manifest: Manifest = { ...body.data, signature: new Uint8Array(signValue(key, body.data)) }
  const bytes = dagCbor.encode(manifest)
  return { manifest, bytes, cid: cidForBytes(bytes, 'dag-cbor') }
}

/**
 * Decodes and checks a manifest: its shape (PROTOCOL_ERROR; INVALID_KEY_ID for a publisher written
 * in another spelling, which would slip past `refusedPublishers`) and its publisher's signature
 * (INVALID_SIGNATURE).
 */
export function decodeManifest(bytes: Uint8Array): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES)
    throw new CovenantError('PROTOCOL_ERROR', `manifest of ${bytes.length} bytes is larger than allowed`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new CovenantError('PROTOCOL_ERROR', 'manifest is not valid DAG-CBOR', { cause: err })
  }
  const parsed = ManifestSchema.safeParse(value)
  if (!parsed.success)
    throw new CovenantError(
      issueCode(parsed.error, 'PROTOCOL_ERROR'),
      `invalid manifest: ${z.prettifyError(parsed.error)}`,
    )
  const m = parsed.data
  if (!verifyValue(m.publisher, unsigned(m), m.signature))
    throw new CovenantError('INVALID_SIGNATURE', `manifest signature does not verify for ${m.publisher}`)
  return m
}

export function manifestToJSON(m: Manifest): ManifestJSON {
  return bytesFieldsToJSON({ ...m, code: m.code.toString() })
}

/**
 * A signed manifest read as the label of the block it names: the tags its publisher gave that
 * block, and the manifest bytes that prove it to anyone the block is handed to. Tags reach a block
 * only this way; nobody can add or drop them without a publisher's signature.
 */
export interface ManifestLabel {
  /** the block the manifest names (its code) */
  block: CID
  /** the manifest's own CID */
  manifest: CID
  tags: string[]
  bytes: Uint8Array
}

/** Reads signed manifest bytes as a label (PROTOCOL_ERROR, INVALID_SIGNATURE like {@link decodeManifest}). */
export function manifestLabel(bytes: Uint8Array): ManifestLabel {
  const m = decodeManifest(bytes)
  return { block: m.code, manifest: cidForBytes(bytes, 'dag-cbor'), tags: m.tags, bytes }
}

/** A manifest block's label for the code it names; none for any other block. */
export function ownLabel(cid: CID, bytes: Uint8Array): ManifestLabel[] {
  if (cid.code !== DAG_CBOR_CODEC) return []
  try {
    return [manifestLabel(bytes)]
  } catch {
    return []
  }
}

/** The tags a block carries by itself: a signed manifest's own tags; any other block has none. */
export function ownTags(cid: CID, bytes: Uint8Array): string[] {
  if (cid.code !== DAG_CBOR_CODEC) return []
  try {
    return decodeManifest(bytes).tags
  } catch {
    return []
  }
}
