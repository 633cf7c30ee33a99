import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import { bytesFieldsFromJSON, bytesFieldsToJSON } from '../encoding/index.ts'
import { CovenantError, issueCode } from '../errors/index.ts'
import {
  canonicalBytes,
  KeyIdSchema,
  keyId,
  type PrivateKey,
  SignatureJSONSchema,
  SignatureSchema,
  signValue,
  verifyValue,
} from '../keys/index.ts'
import { type CovenantConfig, type CovenantConfigInput, CovenantConfigSchema } from './covenant-config.ts'

/** Signed covenants are small; anything larger is refused before decoding. */
export const MAX_SIGNED_COVENANT_BYTES = 256 * 1024

/** A node's covenant as it publishes it: its config, signed by the node's key. */
export const SignedCovenantSchema = z.strictObject({
  peer: KeyIdSchema,
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  issuedAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  config: CovenantConfigSchema,
  signature: SignatureSchema,
})

export type SignedCovenant = z.output<typeof SignedCovenantSchema>

/** A signed covenant as the HTTP API shows it: the signature in base64. */
export const SignedCovenantJSONSchema = SignedCovenantSchema.extend({ signature: SignatureJSONSchema })
export type SignedCovenantJSON = z.output<typeof SignedCovenantJSONSchema>

// The signed payload is the normalized config (defaults applied, sizes as numbers), which has no
// optional fields, so DAG-CBOR never meets an undefined.
function payload(sc: Omit<SignedCovenant, 'signature'>): Omit<SignedCovenant, 'signature'> {
  return { peer: sc.peer, version: sc.version, issuedAt: sc.issuedAt, config: sc.config }
}

function normalize(config: CovenantConfig | CovenantConfigInput): CovenantConfig {
  const parsed = CovenantConfigSchema.safeParse(config)
  if (!parsed.success)
    throw new CovenantError('COVENANT_INVALID', `invalid covenant: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

export function signCovenant(
  key: PrivateKey,
  config: CovenantConfig | CovenantConfigInput,
  version: number,
  issuedAt: number = Date.now(),
): SignedCovenant {
  if (!Number.isSafeInteger(version) || version < 1)
    throw new CovenantError('INVALID_INPUT', 'a covenant version is an integer ≥ 1')
  if (!Number.isSafeInteger(issuedAt) || issuedAt < 0)
    throw new CovenantError('INVALID_INPUT', 'issuedAt is a timestamp in ms')
  const body = { peer: keyId(key), version, issuedAt, config: normalize(config) }
  return { ...body, signature: new Uint8Array(signValue(key, body)) }
}

/**
 * Validates a signed covenant received from anywhere (a peer, the DHT, a file): its shape
 * (PROTOCOL_ERROR; INVALID_KEY_ID for a peer id in another spelling) and its signature by `peer`
 * (INVALID_SIGNATURE).
 */
export function verifySignedCovenant(sc: unknown): SignedCovenant {
  const parsed = SignedCovenantSchema.safeParse(sc)
  if (!parsed.success)
    throw new CovenantError(
      issueCode(parsed.error, 'PROTOCOL_ERROR'),
      `invalid signed covenant: ${z.prettifyError(parsed.error)}`,
    )
  const v = parsed.data
  if (!verifyValue(v.peer, payload(v), v.signature))
    throw new CovenantError('INVALID_SIGNATURE', `covenant signature does not verify for ${v.peer}`)
  return v
}

export function encodeSignedCovenant(sc: SignedCovenant): Uint8Array {
  return dagCbor.encode({ ...payload(sc), signature: sc.signature })
}

/** Decodes and verifies a signed covenant sent as DAG-CBOR. */
export function decodeSignedCovenant(bytes: Uint8Array): SignedCovenant {
  if (bytes.length > MAX_SIGNED_COVENANT_BYTES)
    throw new CovenantError('PROTOCOL_ERROR', `signed covenant of ${bytes.length} bytes is too large`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new CovenantError('PROTOCOL_ERROR', 'signed covenant is not valid DAG-CBOR', { cause: err })
  }
  return verifySignedCovenant(value)
}

export function signedCovenantToJSON(sc: SignedCovenant): SignedCovenantJSON {
  return bytesFieldsToJSON({ ...payload(sc), signature: sc.signature })
}

/** The inverse of {@link signedCovenantToJSON}, verifying the result (PROTOCOL_ERROR, INVALID_SIGNATURE). */
export function signedCovenantFromJSON(json: unknown): SignedCovenant {
  return verifySignedCovenant(bytesFieldsFromJSON(json, ['signature']))
}

/**
 * The version to sign `config` under: 1 for a first covenant, the previous version if the config
 * is unchanged (a restarted node keeps its version), otherwise the previous version + 1.
 */
export function nextCovenantVersion(
  previous: SignedCovenant | undefined,
  config: CovenantConfig | CovenantConfigInput,
): number {
  if (previous === undefined) return 1
  const a = canonicalBytes(normalize(previous.config))
  const b = canonicalBytes(normalize(config))
  const same = a.length === b.length && a.every((x, i) => x === b[i])
  return same ? previous.version : previous.version + 1
}
