/**
 * Write invocations: how a key (not a function) writes. The writer signs a UCAN addressed to the
 * namespace, invoking `store/write` with the CID of exactly the writes and reads it commits, a
 * nonce and a short time window, and linking the grants it relies on. A holder refuses it outside
 * its window, and the datastore refuses a second use of its nonce.
 */
import { z } from 'zod'
import type { PrivateKey } from '../keys/index.ts'
import { MAX_GRANTS, STORE_WRITE, WriteGrantSchema } from './grant.ts'
import { CanonicalCidSchema, namespaceDid, namespaceResource } from './principals.ts'
import {
  decodeToken,
  issuerKey,
  issueToken,
  parseOptions,
  randomNonce,
  refuse,
  signatureVerifies,
  toSeconds,
} from './ucan.ts'

/** The widest time window a write invocation may span. */
export const MAX_INVOCATION_WINDOW_MS = 10 * 60_000
/** The window {@link invokeWrite} gives an invocation unless told otherwise. */
export const DEFAULT_INVOCATION_WINDOW_MS = 5 * 60_000
/** How far ahead of a holder's clock a writer's clock may be. */
export const MAX_INVOCATION_SKEW_MS = 60_000

/** A signed write invocation: its CID (the write's id) and its bytes. */
export interface WriteInvocation {
  cid: string
  bytes: Uint8Array
}

const InvokeWriteInitSchema = z.strictObject({
  namespace: CanonicalCidSchema,
  /** the CID of the writes and reads committed (the datastore's `effectsCid`) */
  effects: CanonicalCidSchema,
  /** the grants the write relies on; none when the owner writes */
  grants: z.array(WriteGrantSchema).max(MAX_GRANTS).default([]),
  nonce: z.string().min(8).max(128).optional(),
  /** ms since the epoch; @default Date.now() */
  now: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  windowMs: z.number().int().min(1000).max(MAX_INVOCATION_WINDOW_MS).default(DEFAULT_INVOCATION_WINDOW_MS),
})

export type InvokeWriteInit = z.input<typeof InvokeWriteInitSchema> & { issuer: PrivateKey }

/** Signs a write invocation valid from `now` for `windowMs`. */
export async function invokeWrite(init: InvokeWriteInit): Promise<WriteInvocation> {
  const { issuer, ...rest } = init
  const i = parseOptions(InvokeWriteInitSchema, rest, 'write invocation')
  const now = i.now ?? Date.now()
  const token = await issueToken(issuer, {
    audience: namespaceDid(i.namespace),
    capability: { with: namespaceResource(i.namespace), can: STORE_WRITE, nb: { effects: i.effects } },
    notBefore: toSeconds(now),
    expiration: toSeconds(now + i.windowMs),
    proofs: i.grants.map((g) => g.cid),
    nonce: i.nonce ?? randomNonce(),
  })
  return { cid: token.cid, bytes: token.bytes }
}

/** A write invocation checked for one namespace at one time. */
export interface VerifiedInvocation {
  cid: string
  /** the writer's key id */
  writer: string
  nonce: string
  /** the CID of the writes and reads it signs */
  effects: string
  /** the CIDs of the grants it links */
  proofs: string[]
  /** ms since the epoch */
  notBefore: number
  expiresAt: number
}

const InvocationCaveatsSchema = z.strictObject({ effects: CanonicalCidSchema })

/**
 * Checks a write invocation for `namespace` at `now`: its shape (GRANT_MALFORMED), its signature
 * (GRANT_FORGED), that it is addressed to this namespace (GRANT_WRONG_AUDIENCE), and that `now`
 * lies in its window, which may not be wider than {@link MAX_INVOCATION_WINDOW_MS}
 * (INVOCATION_OUTSIDE_WINDOW). Whether its nonce was used before is the datastore's to say.
 */
export function verifyWriteInvocation(
  bytes: unknown,
  ctx: { namespace: string; now: number },
): VerifiedInvocation {
  const token = decodeToken(bytes, 'the write invocation')
  if (token.capability.can !== STORE_WRITE)
    refuse(
      'GRANT_MALFORMED',
      `the invocation is for ${JSON.stringify(token.capability.can)}, not ${STORE_WRITE}`,
    )
  const caveats = InvocationCaveatsSchema.safeParse(token.capability.nb)
  if (!caveats.success)
    refuse('GRANT_MALFORMED', `the invocation has invalid caveats: ${z.prettifyError(caveats.error)}`)
  const writer = issuerKey(token, 'the write invocation')
  if (token.nonce === undefined || token.nonce.length < 8)
    refuse('GRANT_MALFORMED', 'a write invocation carries a nonce of at least 8 characters')
  if (token.notBefore === undefined || token.expiration === null)
    refuse('GRANT_MALFORMED', 'a write invocation states its time window (nbf and exp)')
  if (!signatureVerifies(token)) refuse('GRANT_FORGED', `the invocation's signature does not verify`)
  if (
    token.audience !== namespaceDid(ctx.namespace) ||
    token.capability.with !== namespaceResource(ctx.namespace)
  )
    refuse('GRANT_WRONG_AUDIENCE', `the invocation is addressed to ${token.audience}, not to this namespace`)
  const notBefore = token.notBefore * 1000
  const expiresAt = token.expiration * 1000
  if (expiresAt - notBefore > MAX_INVOCATION_WINDOW_MS)
    refuse(
      'INVOCATION_OUTSIDE_WINDOW',
      `the invocation's window is wider than ${MAX_INVOCATION_WINDOW_MS} ms`,
    )
  if (ctx.now < notBefore - MAX_INVOCATION_SKEW_MS)
    refuse('INVOCATION_OUTSIDE_WINDOW', 'the invocation is from the future')
  if (ctx.now >= expiresAt)
    refuse('INVOCATION_OUTSIDE_WINDOW', `the invocation's window closed ${ctx.now - expiresAt} ms ago`)
  return {
    cid: token.cid,
    writer,
    nonce: token.nonce,
    effects: caveats.data.effects,
    proofs: token.proofs,
    notBefore,
    expiresAt,
  }
}
