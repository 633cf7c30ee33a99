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
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { sign, verify } from './ed25519.ts'

export type { PrivateKey }

export async function generateKey(): Promise<PrivateKey> {
  return generateKeyPair('Ed25519')
}

/** The id of a key: its libp2p peer id string (base58btc, embeds the Ed25519 public key). */
export function keyId(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString()
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

export function signBytes(key: PrivateKey, bytes: Uint8Array): Uint8Array {
  return sign(key, bytes)
}

export function signValue(key: PrivateKey, value: unknown): Uint8Array {
  return signBytes(key, canonicalBytes(value))
}

/** Checks a signature by the signer's id. Never throws: a malformed id or signature is `false`. */
export function verifyBytes(signerId: string, bytes: Uint8Array, signature: Uint8Array): boolean {
  try {
    const publicKey = peerIdFromString(signerId).publicKey
    if (publicKey === undefined || publicKey.type !== 'Ed25519') return false
    return verify(publicKey, bytes, signature)
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
  try {
    const peer = peerIdFromString(text)
    return peer.type === 'Ed25519' ? { canonical: peer.toString() } : undefined
  } catch {
    return undefined
  }
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
