/**
 * Field schemas shared by the exec messages: CIDs as strings, key ids, signatures and JSON values.
 * Kept free of `node:` imports so certificates can be checked in a browser.
 */
import { z } from 'zod'
import { parseCid, SignatureSchema } from '../content/index.ts'
import { isJsonValue, type JsonValue } from '../encoding/index.ts'
import { isKeyId } from '../keys/index.ts'

export { isJsonValue, type JsonValue, SignatureSchema }

/** Arguments and outputs are capped at 1 MiB each (DAG-CBOR bytes). */
export const MAX_JSON_BYTES = 1024 * 1024

export const JsonValueSchema = z.custom<JsonValue>(isJsonValue, {
  message: 'expected a JSON value (no undefined, NaN, Infinity, bytes or class instances)',
})

/** A CIDv1 sha2-256 string; `codec` narrows it to raw or dag-cbor. */
export function cidString(codec?: 'raw' | 'dag-cbor') {
  const code = codec === 'raw' ? 0x55 : codec === 'dag-cbor' ? 0x71 : undefined
  return z
    .string()
    .max(256)
    .refine(
      (s) => {
        try {
          const cid = parseCid(s)
          // Only the canonical (base32) spelling, so one request has one id string.
          return (code === undefined || cid.code === code) && cid.toString() === s
        } catch {
          return false
        }
      },
      { message: `expected a CIDv1 sha2-256${codec === undefined ? '' : ` ${codec}`} string in base32` },
    )
}

export const KeyIdSchema = z.string().max(128).refine(isKeyId, 'expected an Ed25519 key id')

/** A lower-case hex sha2-256 digest. */
export const Sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits')

export const ExportNameSchema = z
  .string()
  .max(128)
  .regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'an export name is a JavaScript identifier')

/** Whole milliseconds or counts that DAG-CBOR and JSON both carry exactly. */
export const SafeUintSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
