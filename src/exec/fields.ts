/**
 * Field schemas shared by the exec messages: CIDs as strings, key ids, signatures and JSON values.
 * Kept free of `node:` imports so certificates can be checked in a browser.
 */
import { z } from 'zod'
import { cidString, ExportNameSchema } from '../content/index.ts'
import { isJsonValue, type JsonValue } from '../encoding/index.ts'
import { KeyIdSchema, SignatureSchema } from '../keys/index.ts'

export { cidString, ExportNameSchema, isJsonValue, type JsonValue, KeyIdSchema, SignatureSchema }

/** Arguments and outputs are capped at 1 MiB each (DAG-CBOR bytes). */
export const MAX_JSON_BYTES = 1024 * 1024

export const JsonValueSchema = z.custom<JsonValue>(isJsonValue, {
  message: 'expected a JSON value (no undefined, NaN, Infinity, bytes or class instances)',
})

/** A lower-case hex sha2-256 digest. */
export const Sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits')

/** Whole milliseconds or counts that DAG-CBOR and JSON both carry exactly. */
export const SafeUintSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
