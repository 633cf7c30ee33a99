import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { z } from 'zod'
import { sha256 } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'

/** Multicodec of code and data blocks. */
export const RAW_CODEC = 0x55
/** Multicodec of manifests and other structured blocks. */
export const DAG_CBOR_CODEC = 0x71
/** Multihash code of sha2-256, the only hash Covenant accepts. */
export const SHA2_256_CODE = 0x12

export type BlockCodec = 'raw' | 'dag-cbor'

/** The largest block a node stores or serves: the bundle size limit. */
export const MAX_BLOCK_BYTES = 5 * 1024 * 1024

// A CIDv1 sha2-256 string is 59 characters in base32; this bound only stops absurd input early.
const MAX_CID_TEXT = 256

export function cidForBytes(bytes: Uint8Array, codec: BlockCodec = 'raw'): CID {
  const code = codec === 'raw' ? RAW_CODEC : DAG_CBOR_CODEC
  return CID.createV1(code, Digest.create(SHA2_256_CODE, sha256(bytes)))
}

/** True if `cid` is of the one kind Covenant uses: CIDv1, sha2-256, raw or dag-cbor. */
export function isSupportedCid(cid: CID): boolean {
  return (
    cid.version === 1 &&
    (cid.code === RAW_CODEC || cid.code === DAG_CBOR_CODEC) &&
    cid.multihash.code === SHA2_256_CODE &&
    cid.multihash.size === 32 &&
    cid.multihash.digest.length === 32
  )
}

/**
 * Accepts a CID object (from a decoded DAG-CBOR link, say) if it is of the supported kind, or
 * `undefined`. Never throws.
 */
export function asSupportedCid(value: unknown): CID | undefined {
  const cid = CID.asCID(value)
  return cid !== null && isSupportedCid(cid) ? cid : undefined
}

export function parseCid(text: string): CID {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_CID_TEXT)
    throw new CovenantError('INVALID_CID', 'not a valid CID: expected a CIDv1 string')
  let cid: CID
  try {
    cid = CID.parse(text)
  } catch (err) {
    throw new CovenantError('INVALID_CID', `not a valid CID: ${JSON.stringify(text.slice(0, 80))}`, {
      cause: err,
    })
  }
  if (!isSupportedCid(cid))
    throw new CovenantError(
      'INVALID_CID',
      `unsupported CID ${JSON.stringify(text.slice(0, 80))}: only CIDv1 sha2-256 raw or dag-cbor`,
    )
  return cid
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i]
  return diff === 0
}

/** True if `bytes` hash to `cid` (and `cid` is of the supported kind). Never throws. */
export function verifyBlock(cid: CID, bytes: Uint8Array): boolean {
  if (!isSupportedCid(cid) || !(bytes instanceof Uint8Array)) return false
  return equalBytes(sha256(bytes), cid.multihash.digest)
}

export function assertBlock(cid: CID, bytes: Uint8Array): void {
  if (!isSupportedCid(cid)) throw new CovenantError('INVALID_CID', `unsupported CID ${cid}`)
  if (!verifyBlock(cid, bytes)) throw new CovenantError('HASH_MISMATCH', `the bytes do not hash to ${cid}`)
}

/**
 * Canonical CID texts seen, with their codec: the same few CIDs (a function's manifest, a request
 * id) pass through every message of a call, and reading one (base32, then the multihash) costs
 * more than a lookup. Only texts that passed are kept; the check is a pure function of the text,
 * so a hit gives its answer. Bounded, the oldest forgotten first.
 */
const canonicalCids = new Map<string, number>()
const CANONICAL_CIDS_MAX = 4096

/** The codec of `s` if it is a supported CID in its canonical spelling, else undefined. */
export function canonicalCodec(s: string): number | undefined {
  const known = canonicalCids.get(s)
  if (known !== undefined) return known
  try {
    const cid = parseCid(s)
    // Only the canonical (base32) spelling, so one thing has one id string.
    if (cid.toString() !== s) return undefined
    if (canonicalCids.size >= CANONICAL_CIDS_MAX) canonicalCids.delete(canonicalCids.keys().next().value!)
    canonicalCids.set(s, cid.code)
    return cid.code
  } catch {
    return undefined
  }
}

/** A CID in a message: a CIDv1 sha2-256 string in its canonical base32; `codec` narrows it. */
export function cidString(codec?: BlockCodec) {
  const code = codec === 'raw' ? RAW_CODEC : codec === 'dag-cbor' ? DAG_CBOR_CODEC : undefined
  return z
    .string()
    .max(MAX_CID_TEXT)
    .refine(
      (s) => {
        const found = canonicalCodec(s)
        return found !== undefined && (code === undefined || found === code)
      },
      { message: `expected a CIDv1 sha2-256${codec === undefined ? '' : ` ${codec}`} string in base32` },
    )
}
