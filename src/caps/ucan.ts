/**
 * UCAN tokens through `@ipld/dag-ucan`: UCAN 0.9 in its IPLD form (DAG-CBOR), the format ucanto
 * reads and writes. Signing and checking go through Covenant's own Ed25519 keys, so checking is
 * synchronous (it runs inside a datastore transaction) and works in a browser.
 *
 * Only the canonical DAG-CBOR form is accepted: the JWT form dag-ucan also parses, any byte
 * string that does not re-encode to itself, and a signature with bytes past its stated length are
 * refused, so a token has one byte spelling and one CID.
 */
import * as UCAN from '@ipld/dag-ucan'
import * as Signature from '@ipld/dag-ucan/signature'
import { z } from 'zod'
import { cidForBytes, parseCid } from '../content/index.ts'
import { toHex } from '../encoding/index.ts'
import { CovenantError, type ErrorCode } from '../errors/index.ts'
import { keyId, type PrivateKey, signBytes, verifyBytes } from '../keys/index.ts'
import { keyDid, keyIdOfDid } from './principals.ts'

/** A delegation, invocation or revocation is small; anything larger is refused before decoding. */
export const MAX_UCAN_BYTES = 8 * 1024
/** The most proofs one token may link. */
export const MAX_PROOFS = 16
/** The most nonce characters a token may carry. */
export const MAX_NONCE_CHARS = 128

export interface Capability {
  with: string
  can: string
  nb: Record<string, unknown>
}

/** A decoded, canonical token; nothing about its signature or meaning is checked yet. */
export interface Token {
  /** the token's CID (dag-cbor, sha2-256, base32): what proofs and revocations name */
  cid: string
  bytes: Uint8Array
  issuer: string
  audience: string
  /** Covenant tokens carry exactly one capability */
  capability: Capability
  proofs: string[]
  /** seconds since the epoch; `null` never expires */
  expiration: number | null
  notBefore: number | undefined
  nonce: string | undefined
  view: UCAN.View
}

/** Throws the CovenantError `code`: every refusal in this part goes through here. */
export function refuse(code: ErrorCode, message: string, cause?: unknown): never {
  throw new CovenantError(code, message, { cause })
}

function malformed(message: string, cause?: unknown): never {
  refuse('GRANT_MALFORMED', message, cause)
}

/** The options of an issuing call, checked against `schema` (INVALID_INPUT). */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value)
  if (!parsed.success) refuse('INVALID_INPUT', `invalid ${what}: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/**
 * Decodes one token from bytes; `what` names it in messages. Throws GRANT_MALFORMED for anything
 * that is not a canonical DAG-CBOR UCAN 0.9.1 with exactly one capability.
 */
export function decodeToken(bytes: unknown, what: string): Token {
  if (!(bytes instanceof Uint8Array)) malformed(`${what} is not bytes`)
  if (bytes.length > MAX_UCAN_BYTES)
    malformed(`${what} is ${bytes.length} bytes, more than the ${MAX_UCAN_BYTES} allowed`)
  let view: UCAN.View
  try {
    view = UCAN.decode(bytes)
  } catch (err) {
    malformed(`${what} is not a UCAN`, err)
  }
  try {
    if ((view.model as { jwt?: unknown }).jwt !== undefined || !sameBytes(UCAN.encode(view), bytes))
      malformed(`${what} is not in canonical DAG-CBOR form`)
    // dag-ucan reads a signature's stated length and ignores bytes after it, so padded copies of
    // one signed token would verify under other CIDs, and a revocation (which names one CID)
    // would miss them: the signature is exactly its algorithm, its length and that many bytes.
    const signature = view.signature
    if (!sameBytes(Signature.create(signature.code, signature.raw), signature))
      malformed(`${what}'s signature is not in its canonical form`)
  } catch (err) {
    if (err instanceof CovenantError) throw err
    malformed(`${what} is not a UCAN`, err)
  }
  if (view.version !== UCAN.VERSION)
    malformed(`${what} is UCAN ${view.version}, only ${UCAN.VERSION} is read`)
  const capabilities = view.capabilities as unknown[]
  if (capabilities.length !== 1) malformed(`${what} must carry exactly one capability`)
  const cap = capabilities[0] as { with: string; can: string; nb?: unknown }
  const nb = cap.nb ?? {}
  if (!isPlainObject(nb)) malformed(`${what}'s caveats are not a map`)
  const extra = Object.keys(cap).filter((k) => k !== 'with' && k !== 'can' && k !== 'nb')
  if (extra.length > 0) malformed(`${what}'s capability has unknown fields: ${extra.join(', ')}`)
  if (view.proofs.length > MAX_PROOFS) malformed(`${what} links more than ${MAX_PROOFS} proofs`)
  const nonce = view.nonce
  if (nonce !== undefined && nonce.length > MAX_NONCE_CHARS) malformed(`${what}'s nonce is too long`)
  let issuer: string
  let audience: string
  try {
    issuer = view.issuer.did()
    audience = view.audience.did()
  } catch (err) {
    malformed(`${what} names an unreadable DID`, err)
  }
  return {
    cid: cidForBytes(bytes, 'dag-cbor').toString(),
    bytes,
    issuer,
    audience,
    capability: { with: cap.with, can: cap.can, nb },
    proofs: view.proofs.map((p) => String(p)),
    expiration: view.model.exp,
    notBefore: view.notBefore,
    nonce,
    view,
  }
}

/** The key id of a token's issuer; only keys sign Covenant tokens. Throws GRANT_MALFORMED. */
export function issuerKey(token: Token, what: string): string {
  const id = keyIdOfDid(token.issuer)
  if (id === undefined) malformed(`${what} is issued by ${token.issuer}, which is not an Ed25519 did:key`)
  return id
}

/** True if the token is signed by its issuer's key (an Ed25519 `did:key`), with EdDSA. Never throws. */
export function signatureVerifies(token: Token): boolean {
  const id = keyIdOfDid(token.issuer)
  if (id === undefined) return false
  const verifier = {
    did: () => token.issuer as UCAN.DID,
    verify: (payload: Uint8Array, signature: UCAN.Signature): boolean =>
      signature.code === Signature.EdDSA && verifyBytes(id, payload, signature.raw),
  }
  try {
    return UCAN.verifySignature(token.view, verifier) === true
  } catch {
    return false
  }
}

export interface IssueInit {
  audience: string
  capability: Capability
  /** seconds since the epoch, or `null` for never */
  expiration: number | null
  /** seconds since the epoch */
  notBefore?: number
  /** CIDs of the tokens this one rests on */
  proofs?: readonly string[]
  nonce?: string
}

/** Signs a token with `key`. */
export async function issueToken(key: PrivateKey, init: IssueInit): Promise<Token> {
  const issuer: UCAN.Signer<UCAN.DID, typeof Signature.EdDSA> = {
    did: () => keyDid(keyId(key)) as UCAN.DID,
    signatureAlgorithm: 'EdDSA',
    signatureCode: Signature.EdDSA,
    sign: <T>(payload: UCAN.ByteView<T>) =>
      Signature.create(Signature.EdDSA, signBytes(key, payload)) as UCAN.SignatureView<
        T,
        typeof Signature.EdDSA
      >,
  }
  // Proof links are our multiformats CIDs; dag-ucan's own (older) multiformats reads them by their
  // `/` field, which both versions share, so only the static types differ.
  const proofs = (init.proofs ?? []).map((p) => parseCid(p)) as unknown as UCAN.Link[]
  const view = await UCAN.issue({
    issuer,
    audience: { did: () => init.audience as UCAN.DID },
    capabilities: [init.capability as unknown as UCAN.Capability],
    expiration: init.expiration === null ? Number.POSITIVE_INFINITY : init.expiration,
    notBefore: init.notBefore,
    proofs,
    nonce: init.nonce,
  })
  return decodeToken(UCAN.encode(view), 'the issued token')
}

/** A fresh random nonce: two otherwise equal tokens then differ, so revoking one spares the other. */
export function randomNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(12)))
}

/** Whole seconds since the epoch at or before `ms`: a token never outlives what was asked. */
export function toSeconds(ms: number): number {
  return Math.floor(ms / 1000)
}
