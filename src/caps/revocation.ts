/**
 * Revocations. A revocation is a UCAN signed by the revoker, invoking `ucan/revoke` on the
 * namespace with the revoked delegation's CID, and it carries the chain from that delegation up to
 * the owner. So any holder can check it without trusting whoever forwards it: the revoker signed
 * it, and the chain shows that the revoker issued the revoked delegation or one above it.
 */
import { z } from 'zod'
import { keyId, type PrivateKey } from '../keys/index.ts'
import { BytesSchema, checkChain, GrantChainSchema, WriteGrantSchema } from './grant.ts'
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

/** The ability a revocation invokes. */
export const UCAN_REVOKE = 'ucan/revoke'

export const RevocationSchema = z.strictObject({
  /** the signed revocation token */
  ucan: BytesSchema,
  /** the revoked delegation first, then its proofs up to the owner's */
  chain: GrantChainSchema,
})
/** A revocation as it travels between holders. */
export type Revocation = z.infer<typeof RevocationSchema>

export interface VerifiedRevocation {
  /** the revocation token's CID */
  cid: string
  /** the revoked delegation's CID */
  revoked: string
  /** the revoker's key id */
  revoker: string
  /** ms since the epoch from which it holds */
  effectiveAt: number
}

const RevokeInitSchema = z.strictObject({
  namespace: CanonicalCidSchema,
  /** a grant that contains the delegation to revoke */
  grant: WriteGrantSchema,
  /** the CID of the delegation to revoke; @default the grant's leaf */
  delegation: CanonicalCidSchema.optional(),
  /** ms since the epoch; @default Date.now() */
  effectiveAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
})

export type RevokeInit = z.input<typeof RevokeInitSchema> & { issuer: PrivateKey }

/**
 * Revokes a delegation of `grant` (its leaf unless `delegation` names another). Only the
 * delegation's issuer, or an issuer above it in the chain, may revoke it (REVOCATION_REFUSED).
 */
export async function revoke(init: RevokeInit): Promise<Revocation> {
  const { issuer, ...rest } = init
  const i = parseOptions(RevokeInitSchema, rest, 'revocation')
  const links = checkChain(i.grant.chain, { namespace: i.namespace })
  const at = i.delegation === undefined ? 0 : links.findIndex((l) => l.token.cid === i.delegation)
  if (at < 0) refuse('REVOCATION_REFUSED', `the grant does not contain delegation ${i.delegation}`)
  const revoker = keyId(issuer)
  if (!links.slice(at).some((l) => l.issuer === revoker))
    refuse(
      'REVOCATION_REFUSED',
      `${revoker} issued neither delegation ${links[at].token.cid} nor one above it`,
    )
  const revoked = links[at].token.cid
  const token = await issueToken(issuer, {
    audience: namespaceDid(i.namespace),
    capability: { with: namespaceResource(i.namespace), can: UCAN_REVOKE, nb: { ucan: revoked } },
    expiration: null,
    notBefore: toSeconds(i.effectiveAt ?? Date.now()),
    proofs: [revoked],
    nonce: randomNonce(),
  })
  return { ucan: token.bytes, chain: i.grant.chain.slice(at) }
}

const RevokeCaveatsSchema = z.strictObject({ ucan: CanonicalCidSchema })

/**
 * Checks a revocation for the namespace `namespace` owned by `owner`: its chain as
 * {@link checkChain} does (expiry aside: an expired delegation may still be revoked), the
 * revocation's shape (GRANT_MALFORMED), signature (GRANT_FORGED) and address
 * (GRANT_WRONG_AUDIENCE), and that it revokes the chain's first delegation and is signed by one of
 * the chain's issuers (REVOCATION_REFUSED).
 */
export function verifyRevocation(
  value: unknown,
  ctx: { namespace: string; owner: string },
): VerifiedRevocation {
  const parsed = RevocationSchema.safeParse(value)
  if (!parsed.success) refuse('GRANT_MALFORMED', `malformed revocation: ${z.prettifyError(parsed.error)}`)
  const links = checkChain(parsed.data.chain, ctx)
  const token = decodeToken(parsed.data.ucan, 'the revocation')
  if (token.capability.can !== UCAN_REVOKE)
    refuse(
      'GRANT_MALFORMED',
      `the revocation invokes ${JSON.stringify(token.capability.can)}, not ${UCAN_REVOKE}`,
    )
  const caveats = RevokeCaveatsSchema.safeParse(token.capability.nb)
  if (!caveats.success)
    refuse('GRANT_MALFORMED', `the revocation has invalid caveats: ${z.prettifyError(caveats.error)}`)
  if (token.notBefore === undefined) refuse('GRANT_MALFORMED', 'a revocation states when it holds from (nbf)')
  const revoker = issuerKey(token, 'the revocation')
  if (!signatureVerifies(token)) refuse('GRANT_FORGED', `the revocation's signature does not verify`)
  if (
    token.audience !== namespaceDid(ctx.namespace) ||
    token.capability.with !== namespaceResource(ctx.namespace)
  )
    refuse('GRANT_WRONG_AUDIENCE', 'the revocation is addressed to another namespace')
  const revoked = caveats.data.ucan
  if (revoked !== links[0].token.cid)
    refuse(
      'REVOCATION_REFUSED',
      `the revocation names ${revoked} but carries the chain of ${links[0].token.cid}`,
    )
  if (!links.some((l) => l.issuer === revoker))
    refuse('REVOCATION_REFUSED', `${revoker} issued neither delegation ${revoked} nor one above it`)
  return { cid: token.cid, revoked, revoker, effectiveAt: token.notBefore * 1000 }
}
