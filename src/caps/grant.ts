/**
 * Write grants: UCAN delegation chains of `store/write` on a namespace, narrowed by a key prefix.
 *
 * A grant travels as its chain of tokens, leaf first: `chain[0]` is addressed to the writer, each
 * token links the next as its one proof, and the last is issued by the namespace's owner. A
 * re-delegation may only narrow: the same namespace, the same or a longer prefix, the same or an
 * earlier expiry, the same or a later start.
 */
import { z } from 'zod'
import { fromBase64, sha256, toBase64, toHex } from '../encoding/index.ts'
import { KeyIdSchema, keyId, type PrivateKey } from '../keys/index.ts'
import {
  CanonicalCidSchema,
  keyDid,
  namespaceResource,
  type Writer,
  WriterSchema,
  writerDid,
  writerOfDid,
} from './principals.ts'
import {
  decodeToken,
  issuerKey,
  issueToken,
  MAX_UCAN_BYTES,
  parseOptions,
  randomNonce,
  refuse,
  signatureVerifies,
  type Token,
  toSeconds,
} from './ucan.ts'

/** The ability a write grant carries. */
export const STORE_WRITE = 'store/write'
/** The longest chain of delegations accepted, owner's included. */
export const MAX_CHAIN_LENGTH = 8
/** The longest key (and so prefix), in UTF-8 bytes. */
export const MAX_KEY_BYTES = 512

const utf8 = new TextEncoder()

/**
 * A key prefix, or a key: well-formed Unicode (no lone surrogate, so a prefix of a string is a
 * prefix of its UTF-8 bytes), no control characters, at most {@link MAX_KEY_BYTES} bytes.
 */
export const KeyPrefixSchema = z
  .string()
  .max(MAX_KEY_BYTES)
  .refine((s) => s.isWellFormed(), 'a key must be well-formed Unicode')
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'a key must not contain control characters')
  .refine((s) => utf8.encode(s).length <= MAX_KEY_BYTES, `a key is at most ${MAX_KEY_BYTES} UTF-8 bytes`)

/** Bytes, typed as every Uint8Array (a token's bytes may sit in a shared buffer). */
export const BytesSchema = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected bytes' })

/** A grant as it travels: its tokens' bytes, leaf first. */
export const GrantChainSchema = z
  .array(BytesSchema)
  .min(1)
  .max(MAX_CHAIN_LENGTH, `a chain has at most ${MAX_CHAIN_LENGTH} delegations`)
export type GrantChain = z.infer<typeof GrantChainSchema>

/** A write grant: the CID of its leaf delegation and the chain that proves it. */
export const WriteGrantSchema = z.strictObject({ cid: CanonicalCidSchema, chain: GrantChainSchema })
export type WriteGrant = z.infer<typeof WriteGrantSchema>

const WriteCaveatsSchema = z.strictObject({ prefix: KeyPrefixSchema })

/** One delegation of a chain, decoded. */
export interface Delegation {
  token: Token
  prefix: string
  /** the issuer's key id */
  issuer: string
  /** the audience: a key or a function */
  audience: Writer
}

function parseDelegation(bytes: unknown, index: number): Delegation {
  const what = `delegation ${index}`
  const token = decodeToken(bytes, what)
  if (token.capability.can !== STORE_WRITE)
    refuse('GRANT_MALFORMED', `${what} is for ${JSON.stringify(token.capability.can)}, not ${STORE_WRITE}`)
  const caveats = WriteCaveatsSchema.safeParse(token.capability.nb)
  if (!caveats.success)
    refuse('GRANT_MALFORMED', `${what} has invalid caveats: ${z.prettifyError(caveats.error)}`)
  if (token.expiration === null) refuse('GRANT_MALFORMED', `${what} never expires; a write grant must`)
  const audience = writerOfDid(token.audience)
  if (audience === undefined)
    refuse('GRANT_MALFORMED', `${what} is addressed to ${token.audience}, neither a key nor a function`)
  return { token, prefix: caveats.data.prefix, issuer: issuerKey(token, what), audience }
}

export interface ChainContext {
  namespace: string
  /** the namespace owner's key id; without it the chain's root is not checked (an issuer's own check) */
  owner?: string
}

/**
 * Chains that passed {@link checkChain}, by their bytes and context. What it checks is a function
 * of those alone, and a namespace's holder meets the same standing grant in every commit it
 * checks, twice (finding the grants that hold, then authorizing the write): decoding, re-encoding,
 * hashing and signature checks cost about 1 ms a time (docs/apps.md, performance). Time,
 * revocations and the audience are checked on every use, by the callers. Bounded, oldest out first.
 */
const checkedChains = new Map<string, readonly Delegation[]>()
const CHECKED_CHAINS = 1024

function chainKey(chain: unknown, ctx: ChainContext): string | undefined {
  if (
    !Array.isArray(chain) ||
    chain.length > MAX_CHAIN_LENGTH ||
    !chain.every((b) => b instanceof Uint8Array && b.length <= MAX_UCAN_BYTES)
  )
    return undefined
  return [ctx.namespace, ctx.owner ?? '', ...chain.map((b) => toHex(sha256(b)))].join(' ')
}

/**
 * Decodes a chain and checks everything that holds at any time: the shape (GRANT_MALFORMED), every
 * signature (GRANT_FORGED), that each token's proof is the next one and its issuer that one's
 * audience (GRANT_BROKEN_CHAIN), that each step only narrows (GRANT_WIDENED), that it names this
 * namespace (GRANT_WRONG_AUDIENCE), and that the owner issued the root (GRANT_BROKEN_CHAIN). The
 * delegations returned are shared: read them, never change them.
 */
export function checkChain(chain: unknown, ctx: ChainContext): readonly Delegation[] {
  const key = chainKey(chain, ctx)
  const known = key === undefined ? undefined : checkedChains.get(key)
  if (known !== undefined) return known
  const links = checkChainOnce(chain, ctx)
  if (key !== undefined) {
    if (checkedChains.size >= CHECKED_CHAINS)
      checkedChains.delete(checkedChains.keys().next().value as string)
    checkedChains.set(key, links)
  }
  return links
}

function checkChainOnce(chain: unknown, ctx: ChainContext): Delegation[] {
  const parsed = GrantChainSchema.safeParse(chain)
  if (!parsed.success) refuse('GRANT_MALFORMED', `malformed grant chain: ${z.prettifyError(parsed.error)}`)
  const links = parsed.data.map(parseDelegation)
  links.forEach((link, i) => {
    if (!signatureVerifies(link.token))
      refuse('GRANT_FORGED', `the signature of delegation ${i} (${link.token.cid}) does not verify`)
  })
  links.forEach((link, i) => {
    const next = links[i + 1]
    if (next === undefined) {
      if (link.token.proofs.length > 0)
        refuse('GRANT_BROKEN_CHAIN', `delegation ${i} rests on a proof the chain does not include`)
      return
    }
    if (link.token.proofs.length !== 1 || link.token.proofs[0] !== next.token.cid)
      refuse('GRANT_BROKEN_CHAIN', `delegation ${i} does not rest on delegation ${i + 1}`)
    if (next.token.audience !== link.token.issuer)
      refuse(
        'GRANT_BROKEN_CHAIN',
        `delegation ${i} is issued by ${link.issuer}, not by who ${i + 1} delegates to`,
      )
    checkNarrows(link, next, `delegation ${i}`)
  })
  const resource = namespaceResource(ctx.namespace)
  if (links[0].token.capability.with !== resource)
    refuse('GRANT_WRONG_AUDIENCE', `the grant is for ${links[0].token.capability.with}, not ${resource}`)
  const root = links[links.length - 1]
  if (ctx.owner !== undefined && root.issuer !== ctx.owner)
    refuse(
      'GRANT_BROKEN_CHAIN',
      `the chain starts at ${root.issuer}, not at the namespace owner ${ctx.owner}`,
    )
  return links
}

/** Throws GRANT_WIDENED unless `child` asks for no more than `parent` grants. */
function checkNarrows(
  child: Pick<Delegation, 'prefix'> & { token: Pick<Token, 'capability' | 'expiration' | 'notBefore'> },
  parent: Delegation,
  what: string,
): void {
  if (child.token.capability.with !== parent.token.capability.with)
    refuse('GRANT_WIDENED', `${what} names another namespace than its proof`)
  if (!child.prefix.startsWith(parent.prefix))
    refuse(
      'GRANT_WIDENED',
      `${what} grants prefix ${JSON.stringify(child.prefix)}, wider than its proof's ${JSON.stringify(parent.prefix)}`,
    )
  const childExp = child.token.expiration ?? Number.POSITIVE_INFINITY
  if (childExp > (parent.token.expiration ?? Number.POSITIVE_INFINITY))
    refuse('GRANT_WIDENED', `${what} expires after its proof`)
  if ((child.token.notBefore ?? 0) < (parent.token.notBefore ?? 0))
    refuse('GRANT_WIDENED', `${what} starts before its proof`)
}

/** A grant checked for one writer at one time. */
export interface VerifiedGrant {
  /** the leaf delegation's CID */
  cid: string
  writer: Writer
  prefix: string
  /** ms since the epoch */
  expiresAt: number
  /** every delegation's CID, leaf first */
  delegations: string[]
  /** every issuer's key id, leaf first; the last is the owner */
  issuers: string[]
}

/** Says whether the delegation `cid` was revoked at or before `at` (ms). */
export type IsRevoked = (cid: string, at: number) => boolean

export interface VerifyGrantContext {
  namespace: string
  owner: string
  /** who uses the grant */
  writer: Writer
  /** the time the grant must hold at, ms */
  now: number
  isRevoked?: IsRevoked
}

/**
 * Checks a grant for `writer` at `now`: everything {@link checkChain} checks, then that every
 * delegation is valid at `now` (GRANT_NOT_YET_VALID, GRANT_EXPIRED), none is revoked
 * (GRANT_REVOKED), and the leaf is addressed to `writer` (GRANT_WRONG_AUDIENCE).
 */
export function verifyGrant(chain: unknown, ctx: VerifyGrantContext): VerifiedGrant {
  const links = checkChain(chain, { namespace: ctx.namespace, owner: ctx.owner })
  for (const link of links) {
    const { notBefore, expiration, cid } = link.token
    if (notBefore !== undefined && ctx.now < notBefore * 1000)
      refuse(
        'GRANT_NOT_YET_VALID',
        `delegation ${cid} is valid only from ${new Date(notBefore * 1000).toISOString()}`,
      )
    if (expiration !== null && ctx.now >= expiration * 1000)
      refuse('GRANT_EXPIRED', `delegation ${cid} expired at ${new Date(expiration * 1000).toISOString()}`)
  }
  for (const link of links)
    if (ctx.isRevoked?.(link.token.cid, ctx.now) === true)
      refuse('GRANT_REVOKED', `delegation ${link.token.cid} has been revoked`)
  const leaf = links[0]
  if (leaf.token.audience !== writerDid(ctx.writer))
    refuse(
      'GRANT_WRONG_AUDIENCE',
      `the grant is addressed to ${leaf.token.audience}, not to ${writerDid(ctx.writer)}`,
    )
  return {
    cid: leaf.token.cid,
    writer: leaf.audience,
    prefix: leaf.prefix,
    expiresAt: (leaf.token.expiration as number) * 1000,
    delegations: links.map((l) => l.token.cid),
    issuers: links.map((l) => l.issuer),
  }
}

export interface AuthorizeWriteInit extends Omit<VerifyGrantContext, 'writer'> {
  writer: Writer
  /** the grants the writer offers, each a chain; none is needed when the owner writes itself */
  grants: readonly unknown[]
  /** every key the write touches */
  keys: readonly string[]
}

/** The most grants one write may offer. */
export const MAX_GRANTS = 16

/**
 * Decides whether `writer` may write every key in `keys` of the namespace at `now`. The owner's
 * key may write anything without a grant. Anyone else needs grants (GRANT_MISSING); every grant
 * offered must verify for this writer ({@link verifyGrant}'s codes), and every key must lie under
 * the prefix of one of them (GRANT_WIDENED).
 */
export function authorizeWrite(init: AuthorizeWriteInit): { grants: VerifiedGrant[] } {
  if ('key' in init.writer && init.writer.key === init.owner) return { grants: [] }
  if (init.grants.length === 0)
    refuse('GRANT_MISSING', `${writerDid(init.writer)} holds no grant to write this namespace`)
  if (init.grants.length > MAX_GRANTS) refuse('GRANT_MALFORMED', `more than ${MAX_GRANTS} grants offered`)
  const grants = init.grants.map((chain) => verifyGrant(chain, init))
  for (const key of init.keys)
    if (!grants.some((g) => key.startsWith(g.prefix)))
      refuse('GRANT_WIDENED', `no grant covers key ${JSON.stringify(key)}`)
  return { grants }
}

const DelegateWriteInitSchema = z.strictObject({
  audience: z.union([KeyIdSchema, WriterSchema]),
  namespace: CanonicalCidSchema,
  prefix: KeyPrefixSchema.default(''),
  /** ms since the epoch; kept to the whole second at or before it */
  expiresAt: z.number().int().min(1000).max(Number.MAX_SAFE_INTEGER),
  /** ms since the epoch */
  notBefore: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  nonce: z.string().min(1).max(128).optional(),
  proof: WriteGrantSchema.optional(),
})

export type DelegateWriteInit = z.input<typeof DelegateWriteInitSchema> & { issuer: PrivateKey }

/**
 * Delegates `store/write` on keys under `prefix` of `namespace` to a key or a function, until
 * `expiresAt`. The namespace owner delegates without `proof`; a holder of a grant re-delegates a
 * narrower right by passing the grant it holds as `proof`, and is refused here already
 * (GRANT_WRONG_AUDIENCE, GRANT_WIDENED) if it is not that grant's audience or asks for more.
 */
export async function delegateWrite(init: DelegateWriteInit): Promise<WriteGrant> {
  const { issuer, ...rest } = init
  const i = parseOptions(DelegateWriteInitSchema, rest, 'delegation')
  const audience: Writer = typeof i.audience === 'string' ? { key: i.audience } : i.audience
  const capability = { with: namespaceResource(i.namespace), can: STORE_WRITE, nb: { prefix: i.prefix } }
  const expiration = toSeconds(i.expiresAt)
  const notBefore = i.notBefore === undefined ? undefined : Math.ceil(i.notBefore / 1000)
  let parent: readonly Delegation[] = []
  if (i.proof !== undefined) {
    parent = checkChain(i.proof.chain, { namespace: i.namespace })
    if (parent[0].token.cid !== i.proof.cid)
      refuse('GRANT_MALFORMED', 'the proof grant’s cid is not its leaf delegation')
    if (parent[0].token.audience !== keyDid(keyId(issuer)))
      refuse('GRANT_WRONG_AUDIENCE', 'the proof grant is not addressed to the issuer')
    checkNarrows(
      { prefix: i.prefix, token: { capability, expiration, notBefore } },
      parent[0],
      'the new delegation',
    )
  }
  const token = await issueToken(issuer, {
    audience: writerDid(audience),
    capability,
    expiration,
    notBefore,
    proofs: parent.length > 0 ? [parent[0].token.cid] : [],
    nonce: i.nonce ?? randomNonce(),
  })
  return { cid: token.cid, chain: [token.bytes, ...parent.map((d) => d.token.bytes)] }
}

/** The largest base64 text of one delegation. */
const MAX_TOKEN_BASE64 = 12 * 1024

/** A grant in JSON (a file a writer keeps, an argument on a command line): its tokens in base64. */
export const WriteGrantJSONSchema = z.strictObject({
  cid: CanonicalCidSchema,
  chain: z
    .array(
      z
        .string()
        .max(MAX_TOKEN_BASE64)
        .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
    )
    .min(1)
    .max(MAX_CHAIN_LENGTH),
})
export type WriteGrantJSON = z.infer<typeof WriteGrantJSONSchema>

/** The JSON form of a grant. */
export function grantToJSON(grant: WriteGrant): WriteGrantJSON {
  return { cid: grant.cid, chain: grant.chain.map((t) => toBase64(t)) }
}

/**
 * Reads a grant's JSON form: GRANT_MALFORMED unless it has that shape and `cid` names its leaf.
 * Whether the chain holds is for {@link checkChain} and {@link verifyGrant} to say.
 */
export function grantFromJSON(json: unknown): WriteGrant {
  const parsed = WriteGrantJSONSchema.safeParse(json)
  if (!parsed.success) refuse('GRANT_MALFORMED', `malformed grant: ${z.prettifyError(parsed.error)}`)
  const chain = parsed.data.chain.map((text) => fromBase64(text) ?? refuse('GRANT_MALFORMED', 'not base64'))
  if (decodeToken(chain[0], 'the grant’s leaf').cid !== parsed.data.cid)
    refuse('GRANT_MALFORMED', 'the grant’s cid is not its leaf delegation')
  return { cid: parsed.data.cid, chain }
}
