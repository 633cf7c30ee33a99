/**
 * Namespaces: their id, and the signed descriptor in which the owner states the write policy.
 *
 * The id is the CID of `{ v: 1, owner, name }` (dag-cbor, base32): it does not change when the
 * owner publishes a new policy, and its binary form is a point in the XOR space the holders are
 * chosen by (the nodes closest to it).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import { CanonicalCidSchema } from '../caps/index.ts'
import { cidForBytes, parseCid } from '../content/index.ts'
import { CovenantError } from '../errors/index.ts'
import {
  isKeyId,
  KeyIdSchema,
  keyId,
  type PrivateKey,
  SignatureSchema,
  signValue,
  verifyValue,
} from '../keys/index.ts'

/** A namespace's name: what its owner calls it; ids differ by owner. */
export const NamespaceNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a name is 1–128 letters, digits, ".", "_" or "-"')

/** The most executors a policy can ask for: exec's largest request (MAX_REPLICAS). */
const MAX_POLICY_REPLICAS = 16

/**
 * Who may certify a function's write, and how many: the run must have asked for at least
 * `minReplicas` executors and carry receipts from at least `minQuorum` certifiers that count.
 * With `certifiers: 'any'` every executor the selection rule picks counts; with `{ vouchedBy }`
 * only those one of the named keys (the owner, or a labeler the owner trusts) vouches for.
 */
export const WritePolicySchema = z
  .strictObject({
    minReplicas: z.number().int().min(1).max(MAX_POLICY_REPLICAS).default(3),
    minQuorum: z.number().int().min(1).max(MAX_POLICY_REPLICAS).default(2),
    certifiers: z
      .union([
        z.literal('any'),
        z.strictObject({
          vouchedBy: z
            .array(KeyIdSchema)
            .min(1)
            .max(16)
            .refine((ids) => new Set(ids).size === ids.length, 'vouchers must be distinct'),
        }),
      ])
      .default('any'),
  })
  .refine((p) => p.minQuorum <= p.minReplicas, 'minQuorum cannot exceed minReplicas')
export type WritePolicy = z.output<typeof WritePolicySchema>
export type WritePolicyInput = z.input<typeof WritePolicySchema>

const DescriptorBodyShape = {
  v: z.literal(1),
  owner: KeyIdSchema,
  name: NamespaceNameSchema,
  /** 1 for the genesis; each newer descriptor has a higher version */
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** anyone may read it; otherwise holders serve it to its owner only */
  public: z.boolean(),
  policy: WritePolicySchema,
  issuedAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}

/** A namespace descriptor, signed by its owner. */
export const SignedDescriptorSchema = z.strictObject({ ...DescriptorBodyShape, signature: SignatureSchema })
export type SignedDescriptor = z.infer<typeof SignedDescriptorSchema>

const NamespaceInitSchema = z.strictObject({
  name: NamespaceNameSchema,
  public: z.boolean().default(false),
  policy: WritePolicySchema.default({ minReplicas: 3, minQuorum: 2, certifiers: 'any' }),
  issuedAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
})
export type NamespaceInit = z.input<typeof NamespaceInitSchema>

/** The id of the namespace `name` of `owner`. Throws INVALID_INPUT for a bad owner id or name. */
export function namespaceId(owner: string, name: string): string {
  if (!isKeyId(owner)) throw new CovenantError('INVALID_INPUT', 'the owner is not a canonical key id')
  const parsed = NamespaceNameSchema.safeParse(name)
  if (!parsed.success)
    throw new CovenantError('INVALID_INPUT', `invalid namespace name: ${z.prettifyError(parsed.error)}`)
  return cidForBytes(dagCbor.encode({ v: 1, owner, name }), 'dag-cbor').toString()
}

/** The point in XOR space a namespace's holders are the closest nodes to: its binary CID. */
export function namespaceKeyBytes(id: string): Uint8Array {
  return parseCid(id).bytes
}

/** The CID of a signed descriptor: what the first history entry chains onto. */
export function descriptorCid(descriptor: SignedDescriptor): string {
  return cidForBytes(dagCbor.encode(descriptor), 'dag-cbor').toString()
}

const DescriptorBodySchema = z.strictObject(DescriptorBodyShape)

function sign(owner: PrivateKey, body: z.input<typeof DescriptorBodySchema>): SignedDescriptor {
  const parsed = DescriptorBodySchema.safeParse(body)
  if (!parsed.success)
    throw new CovenantError('INVALID_INPUT', `invalid namespace descriptor: ${z.prettifyError(parsed.error)}`)
  // a plain Uint8Array: the signer may return a Buffer, which encodes the same but compares apart
  return { ...parsed.data, signature: new Uint8Array(signValue(owner, parsed.data)) }
}

/**
 * Creates a namespace: its id and its genesis descriptor, signed by `owner`. Private unless
 * `public`; the policy defaults to k ≥ 3, q ≥ 2, any executor the selection rule picks.
 */
export function createNamespace(
  owner: PrivateKey,
  init: NamespaceInit,
): { id: string; descriptor: SignedDescriptor } {
  const parsed = NamespaceInitSchema.safeParse(init)
  if (!parsed.success)
    throw new CovenantError('INVALID_INPUT', `invalid namespace: ${z.prettifyError(parsed.error)}`)
  const i = parsed.data
  const descriptor = sign(owner, {
    v: 1,
    owner: keyId(owner),
    name: i.name,
    version: 1,
    public: i.public,
    policy: i.policy,
    issuedAt: i.issuedAt ?? Date.now(),
  })
  return { id: namespaceId(descriptor.owner, descriptor.name), descriptor }
}

/** The next descriptor of a namespace: `changes` applied to `current`, one version higher. */
export function updateNamespace(
  owner: PrivateKey,
  current: SignedDescriptor,
  changes: { public?: boolean; policy?: WritePolicyInput; issuedAt?: number },
): SignedDescriptor {
  if (keyId(owner) !== current.owner)
    throw new CovenantError('INVALID_INPUT', 'only the namespace owner may update its descriptor')
  const { signature: _, ...body } = current
  return sign(owner, {
    ...body,
    version: current.version + 1,
    public: changes.public ?? current.public,
    policy: changes.policy ?? current.policy,
    issuedAt: changes.issuedAt ?? Date.now(),
  })
}

/** Checks a descriptor's shape and its owner's signature. Throws NAMESPACE_INVALID. */
export function verifyDescriptor(value: unknown): SignedDescriptor {
  const parsed = SignedDescriptorSchema.safeParse(value)
  if (!parsed.success)
    throw new CovenantError(
      'NAMESPACE_INVALID',
      `malformed namespace descriptor: ${z.prettifyError(parsed.error)}`,
    )
  const { signature, ...body } = parsed.data
  if (!verifyValue(body.owner, body, signature))
    throw new CovenantError('NAMESPACE_INVALID', `the descriptor is not signed by its owner ${body.owner}`)
  return parsed.data
}

/** How long a signed read stays good, and how far ahead of a holder's clock it may be dated. */
export const READ_TOKEN_TTL_MS = 5 * 60_000
const READ_TOKEN_SKEW_MS = 60_000

const ReadTokenBodyShape = {
  v: z.literal(1),
  ns: CanonicalCidSchema,
  /** the reader's key id */
  reader: KeyIdSchema,
  issuedAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}

/**
 * A reader's signature over a namespace and a time: what a private namespace's holders ask of a
 * reader. Only the owner reads a private namespace. The token is a bearer token for its lifetime:
 * whoever relays it (a gateway) can read with it until it expires.
 */
export const ReadTokenSchema = z.strictObject({ ...ReadTokenBodyShape, signature: SignatureSchema })
export type ReadToken = z.infer<typeof ReadTokenSchema>

/** Signs a read of namespace `ns` by `reader`, good for {@link READ_TOKEN_TTL_MS} from `now`. */
export function signRead(reader: PrivateKey, ns: string, now = Date.now()): ReadToken {
  const body = { v: 1 as const, ns, reader: keyId(reader), issuedAt: now }
  return { ...body, signature: new Uint8Array(signValue(reader, body)) }
}

/**
 * Decides whether a read of `ns` may be served: a public namespace to anyone; a private one only
 * with a token its owner signed for it, issued within {@link READ_TOKEN_TTL_MS} of `now`. Throws
 * READ_REFUSED.
 */
export function checkRead(
  ns: { id: string; owner: string; public: boolean },
  token: unknown,
  now = Date.now(),
): void {
  if (ns.public) return
  const refuse: (why: string) => never = (why) => {
    throw new CovenantError('READ_REFUSED', `namespace ${ns.id} is private: ${why}`)
  }
  if (token === undefined) refuse('only its owner reads it, with a signed read')
  const parsed = ReadTokenSchema.safeParse(token)
  if (!parsed.success) refuse(`the signed read is malformed: ${z.prettifyError(parsed.error)}`)
  const { signature, ...body } = parsed.data
  if (body.ns !== ns.id) refuse('the signed read is for another namespace')
  if (body.reader !== ns.owner) refuse(`${body.reader} is not its owner`)
  if (!verifyValue(body.reader, body, signature)) refuse('the signed read does not verify')
  if (body.issuedAt > now + READ_TOKEN_SKEW_MS || now - body.issuedAt > READ_TOKEN_TTL_MS)
    refuse('the signed read is stale or from the future; sign it again')
}
