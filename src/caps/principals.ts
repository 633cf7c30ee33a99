/**
 * Who a capability names, as DIDs: a key is `did:key:z6Mk…` (its Ed25519 public key), a function
 * is `did:covenant:fn:<manifest CID>`, a namespace `did:covenant:ns:<namespace id>`.
 *
 * Every id has exactly one spelling. A key id is canonical as `keys` defines it (`isKeyId`), and a
 * CID parses from upper or lower case; an id that is not the canonical spelling is refused, so one
 * key or one function can never hold two sets of rights.
 */
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { base58btc } from 'multiformats/bases/base58'
import { z } from 'zod'
import { canonicalCodec, DAG_CBOR_CODEC } from '../content/index.ts'
import { CovenantError } from '../errors/index.ts'
import { isKeyId, KeyIdSchema } from '../keys/index.ts'

const KEY_DID_PREFIX = 'did:key:'
const FN_DID_PREFIX = 'did:covenant:fn:'
const NS_DID_PREFIX = 'did:covenant:ns:'
const NS_RESOURCE_PREFIX = 'covenant:ns/'
/** multicodec `ed25519-pub` (0xed) as a varint */
const ED25519_PUB = [0xed, 0x01]
const MAX_ID_TEXT = 128

/** Who may write: a key (by key id) or a function (by manifest CID). */
export type Writer = { key: string } | { fn: string }

/** The canonical key id of an Ed25519 public key: its libp2p peer id in base58btc (`12D3KooW…`). */
function keyIdOfPublicKey(raw: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(raw)).toString()
}

/** The 32 raw bytes of the Ed25519 key named by `id`, if `id` is a canonical Ed25519 key id. */
function publicKeyOf(id: string): Uint8Array | undefined {
  return isKeyId(id) ? peerIdFromString(id).publicKey?.raw : undefined
}

/** True if `text` is a CIDv1 sha2-256 dag-cbor CID in its one canonical (base32) spelling. */
export function isCanonicalCid(text: unknown): text is string {
  // through content's memo of canonical CID texts: every entry, commit and store message names
  // the same few (its namespace, the head), and reading one costs more than a lookup
  return typeof text === 'string' && canonicalCodec(text) === DAG_CBOR_CODEC
}

/** A function's manifest CID or a namespace id: a canonical dag-cbor CID string. */
export const CanonicalCidSchema = z
  .string()
  .max(MAX_ID_TEXT)
  .refine(isCanonicalCid, 'expected a CIDv1 sha2-256 dag-cbor CID in base32')

/** The `did:key` of a key id. Throws INVALID_INPUT for an id that is not canonical. */
export function keyDid(id: string): string {
  const raw = publicKeyOf(id)
  if (raw === undefined)
    throw new CovenantError('INVALID_INPUT', `not a canonical Ed25519 key id: ${JSON.stringify(String(id))}`)
  return KEY_DID_PREFIX + base58btc.encode(new Uint8Array([...ED25519_PUB, ...raw]))
}

/**
 * The key id of an Ed25519 `did:key`, or `undefined` if `did` is not one, or not in its canonical
 * spelling (the round trip must give back the same text).
 */
export function keyIdOfDid(did: string): string | undefined {
  if (typeof did !== 'string' || !did.startsWith(KEY_DID_PREFIX) || did.length > MAX_ID_TEXT) return undefined
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(did.slice(KEY_DID_PREFIX.length))
  } catch {
    return undefined
  }
  if (bytes.length !== 34 || bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) return undefined
  const id = keyIdOfPublicKey(bytes.subarray(2))
  return keyDid(id) === did ? id : undefined
}

/** The DID a function is named by in a capability: `did:covenant:fn:<manifest CID>`. */
export function functionDid(fn: string): string {
  if (!isCanonicalCid(fn))
    throw new CovenantError('INVALID_INPUT', `not a canonical function CID: ${JSON.stringify(String(fn))}`)
  return FN_DID_PREFIX + fn
}

/** The DID of a namespace, the audience of write invocations and revocations. */
export function namespaceDid(namespace: string): string {
  return NS_DID_PREFIX + checkNamespace(namespace)
}

/** The resource a `store/write` capability names: `covenant:ns/<namespace id>`. */
export function namespaceResource(namespace: string): string {
  return NS_RESOURCE_PREFIX + checkNamespace(namespace)
}

function checkNamespace(namespace: string): string {
  if (!isCanonicalCid(namespace))
    throw new CovenantError('INVALID_INPUT', `not a namespace id: ${JSON.stringify(String(namespace))}`)
  return namespace
}

/** The DID of a writer. Throws INVALID_INPUT for a key id or CID that is not canonical. */
export function writerDid(writer: Writer): string {
  return 'key' in writer ? keyDid(writer.key) : functionDid(writer.fn)
}

/** The writer a DID names, or `undefined` if it names neither a key nor a function canonically. */
export function writerOfDid(did: string): Writer | undefined {
  const key = keyIdOfDid(did)
  if (key !== undefined) return { key }
  if (typeof did === 'string' && did.startsWith(FN_DID_PREFIX)) {
    const fn = did.slice(FN_DID_PREFIX.length)
    if (isCanonicalCid(fn)) return { fn }
  }
  return undefined
}

/** A writer as given by a caller: a key id string, or `{ fn }`, or `{ key }`. */
export const WriterSchema = z.union([
  z.strictObject({ key: KeyIdSchema }),
  z.strictObject({ fn: CanonicalCidSchema }),
])
