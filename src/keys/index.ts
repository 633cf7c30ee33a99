/**
 * Keys and signatures. Every actor in Covenant (node, caller, publisher) is an Ed25519 key, named
 * by the libp2p peer id of its public key, so a signature can be checked from the signer's id alone
 * (the id embeds the public key) — in Node and in a browser alike.
 *
 * What is signed is always the DAG-CBOR encoding of a value: DAG-CBOR is canonical (sorted map
 * keys, no floats ambiguity), so two parties encoding the same value get the same bytes.
 *
 * @example
 * ```ts
 * const key = await loadOrCreateKey('.covenant/caller.key')
 * const sig = signValue(key, { hello: 'world' })
 * verifyValue(keyId(key), { hello: 'world' }, sig) // true
 * ```
 */
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { sign, verify } from './ed25519.ts'

export type { PrivateKey }

export async function generateKey(): Promise<PrivateKey> {
  return generateKeyPair('Ed25519')
}

/** Ids of the keys this process signs with: a key never changes, and spelling its id costs more than a lookup. */
const ids = new WeakMap<PrivateKey, string>()

/** The id of a key: its libp2p peer id string (base58btc, embeds the Ed25519 public key). */
export function keyId(key: PrivateKey): string {
  let id = ids.get(key)
  if (id === undefined) {
    id = peerIdFromPrivateKey(key).toString()
    ids.set(key, id)
  }
  return id
}

export function encodeKey(key: PrivateKey): Uint8Array {
  return privateKeyToProtobuf(key)
}

/** Reads a key from its protobuf bytes; INVALID_INPUT unless they hold an Ed25519 private key. */
export function decodeKey(bytes: Uint8Array): PrivateKey {
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new CovenantError('INVALID_INPUT', 'the bytes are not a libp2p private key', { cause: err })
  }
  // Every actor is an Ed25519 key: another type would sign what no one accepts.
  if (key.type !== 'Ed25519')
    throw new CovenantError('INVALID_INPUT', `a ${key.type} key, where Covenant uses Ed25519 keys`)
  return key
}

/** Reads a key file, or creates one (mode 0600) if there is none. Node only. */
export async function loadOrCreateKey(file: string): Promise<PrivateKey> {
  // imported here, not at the top, so the rest of this module loads in a browser
  const { chmod, mkdir, readFile, writeFile } = await import('node:fs/promises')
  const { dirname } = await import('node:path')
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new CovenantError(
        'INVALID_INPUT',
        `cannot read the key file ${file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      )
  }
  if (bytes !== undefined) {
    try {
      return decodeKey(bytes)
    } catch (err) {
      // never overwrite it: it may be the only copy of an identity
      throw new CovenantError(
        'INVALID_INPUT',
        `${file} is not a valid private key file (${(err as Error).message}); move it away to make a new key`,
        {
          cause: err,
        },
      )
    }
  }
  const key = await generateKey()
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, encodeKey(key), { mode: 0o600 })
  await chmod(file, 0o600)
  return key
}

export function canonicalBytes(value: unknown): Uint8Array {
  return dagCbor.encode(value)
}

/**
 * Signatures this process made or checked, kept so that a message that passes through several
 * checks in one process (a request: the gateway, `invoke`, its own executor; a receipt: the
 * executor that signed it when it is the gateway too; a caller's own request in its certificate)
 * costs one Ed25519 check, not one per check. Only successes are kept, with the exact bytes they
 * cover, and a hit compares the bytes: the answer is the one the check would give, since a
 * signature check is a pure function of the key, the bytes and the signature. Bounded: small
 * messages only, the oldest forgotten first.
 */
const checked = new Map<string, Uint8Array>()
const CHECKED_MAX_ENTRIES = 4096
const CHECKED_MAX_BYTES = 4096

function checkedKey(signerId: string, signature: Uint8Array): string {
  let key = signerId
  for (const byte of signature) key += String.fromCharCode(byte)
  return key
}

function rememberChecked(signerId: string, bytes: Uint8Array, signature: Uint8Array): void {
  if (bytes.byteLength > CHECKED_MAX_BYTES) return
  if (checked.size >= CHECKED_MAX_ENTRIES) checked.delete(checked.keys().next().value as string)
  checked.set(checkedKey(signerId, signature), bytes.slice())
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

export function signBytes(key: PrivateKey, bytes: Uint8Array): Uint8Array {
  const signature = sign(key, bytes)
  rememberChecked(keyId(key), bytes, signature)
  return signature
}

export function signValue(key: PrivateKey, value: unknown): Uint8Array {
  return signBytes(key, canonicalBytes(value))
}

/** Checks a signature by the signer's id. Never throws: a malformed id or signature is `false`. */
export function verifyBytes(signerId: string, bytes: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (bytes.byteLength <= CHECKED_MAX_BYTES && signature instanceof Uint8Array) {
      const known = checked.get(checkedKey(signerId, signature))
      if (known !== undefined && sameBytes(known, bytes)) return true
    }
    const publicKey = publicKeyOf(signerId)
    if (publicKey === undefined || publicKey.type !== 'Ed25519') return false
    const ok = verify(publicKey, bytes, signature)
    if (ok) rememberChecked(signerId, bytes, signature)
    return ok
  } catch {
    return false
  }
}

export function verifyValue(signerId: string, value: unknown, signature: Uint8Array): boolean {
  let bytes: Uint8Array
  try {
    bytes = canonicalBytes(value)
  } catch {
    return false
  }
  return verifyBytes(signerId, bytes, signature)
}

const MAX_KEY_ID_TEXT = 128

/**
 * The one spelling of the key named by `text`, if `text` names an Ed25519 key in any spelling
 * libp2p reads (base58btc `12D3KooW…`, CIDv1 `bafz…` in base32 or `k51…` in base36).
 */
function spellingOf(text: unknown): { canonical: string } | undefined {
  if (typeof text !== 'string' || text.length > MAX_KEY_ID_TEXT) return undefined
  if (publicKeys.has(text)) return { canonical: text }
  try {
    const peer = peerIdFromString(text)
    if (peer.type !== 'Ed25519') return undefined
    const canonical = peer.toString()
    if (canonical === text) remember(text, peer.publicKey)
    return { canonical }
  } catch {
    return undefined
  }
}

/**
 * Ed25519 public keys by canonical key id: every message names keys by id, and reading one
 * (base58, then the multihash) costs more than comparing strings. Only canonical ids of Ed25519
 * keys are kept; bounded, the oldest forgotten first.
 */
const publicKeys = new Map<string, PublicKey>()
const MAX_KNOWN_KEYS = 4096

function remember(id: string, publicKey: PublicKey): void {
  if (publicKeys.size >= MAX_KNOWN_KEYS) publicKeys.delete(publicKeys.keys().next().value as string)
  publicKeys.set(id, publicKey)
}

function publicKeyOf(signerId: string): PublicKey | undefined {
  const known = publicKeys.get(signerId)
  if (known !== undefined) return known
  const peer = peerIdFromString(signerId)
  if (peer.type === 'Ed25519' && peer.toString() === signerId) remember(signerId, peer.publicKey)
  return peer.publicKey
}

/**
 * True if `id` is an Ed25519 key id in its one canonical spelling: the libp2p peer id in base58btc
 * (`12D3KooW…`), as {@link keyId} writes it. libp2p also reads the same key from its CIDv1
 * spellings; Covenant does not, so a key id can be compared, counted and stored as a string and
 * one key can never pass for several.
 */
export function isKeyId(id: unknown): id is string {
  return spellingOf(id)?.canonical === id
}

/**
 * Returns `text` if it is a canonical key id; throws INVALID_KEY_ID otherwise, naming the
 * canonical spelling when `text` is another spelling of a key.
 */
export function canonicalKeyId(text: unknown): string {
  const spelling = spellingOf(text)
  if (spelling?.canonical === text) return text as string
  const shown = JSON.stringify(String(text).slice(0, MAX_KEY_ID_TEXT))
  throw new CovenantError(
    'INVALID_KEY_ID',
    spelling === undefined
      ? `${shown} is not an Ed25519 key id`
      : `${shown} is another spelling of the key ${spelling.canonical}: only that spelling is accepted`,
  )
}

/**
 * A key id in a message: an Ed25519 key id in its canonical spelling. A refusal names
 * INVALID_KEY_ID (see `issueCode` in errors), whatever the message's own refusal code.
 */
export const KeyIdSchema = z.string().refine(isKeyId, {
  message: 'expected an Ed25519 key id in its one canonical spelling (base58btc, 12D3KooW…)',
  params: { code: 'INVALID_KEY_ID' },
})

/** An Ed25519 signature: 64 bytes. */
export const SignatureSchema = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length === 64, {
  message: 'expected a 64-byte Ed25519 signature',
})

/** An Ed25519 signature in a JSON form: 64 bytes in padded base64 (88 characters). */
export const SignatureJSONSchema = z
  .string()
  .regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a 64-byte Ed25519 signature in base64')
