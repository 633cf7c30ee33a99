/**
 * Commits and history entries: their schemas, limits, canonical bytes and builders.
 *
 * A commit is what a writer hands a namespace's holders: the writes, the versions it read, and the
 * proof that it may (a certified function run, a key's signed invocation, or the owner's new
 * descriptor). A holder that applies it makes it an entry of the namespace's history by adding
 * `seq`, `prev` (the CID of the entry before, or of the genesis descriptor) and `at` (its clock),
 * so the history is a hash chain any holder can check and replay.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { equals } from 'uint8arrays/equals'
import { z } from 'zod'
import {
  BytesSchema,
  CanonicalCidSchema,
  GrantChainSchema,
  invokeWrite,
  KeyPrefixSchema,
  MAX_GRANTS,
  MAX_KEY_BYTES,
  type Revocation,
  RevocationSchema,
  type WriteGrant,
} from '../caps/index.ts'
import { cidForBytes, MAX_BLOCK_BYTES } from '../content/index.ts'
import { isJsonValue, type JsonValue } from '../encoding/index.ts'
import { CovenantError, type ErrorJSON } from '../errors/index.ts'
import type { PrivateKey } from '../keys/index.ts'
import { descriptorCid, namespaceId, type SignedDescriptor, SignedDescriptorSchema } from './namespace.ts'

/** The largest value, in DAG-CBOR bytes. */
export const MAX_VALUE_BYTES = 1024 * 1024
/** The most keys one commit writes. */
export const MAX_WRITES = 256
/** The most keys one commit states it read. */
export const MAX_READS = 1024
/** The largest entry, proof included: one block. */
export const MAX_ENTRY_BYTES = MAX_BLOCK_BYTES

/**
 * A key: 1 to {@link MAX_KEY_BYTES} UTF-8 bytes of well-formed text without control characters,
 * and neither `.` nor `..`, which no URL path can name (URLs fold them into the path).
 */
export const KeySchema = KeyPrefixSchema.min(1, 'a key is not empty').refine(
  (k) => k !== '.' && k !== '..',
  'a key is not "." or ".."',
)

const JsonValueSchema = z.custom<JsonValue>(isJsonValue, {
  message: 'expected a JSON value (no undefined, NaN, Infinity, bytes or class instances)',
})

/** One key written: its new value, or `null` to delete it. */
export const WriteSchema = z.strictObject({ key: KeySchema, value: JsonValueSchema })
export type Write = z.infer<typeof WriteSchema>

/** One key read, at the version (the seq that last wrote it; 0 for never) the writer saw. */
export const ReadSchema = z.strictObject({
  key: KeySchema,
  version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
})
export type Read = z.infer<typeof ReadSchema>

/**
 * What a run does to one namespace: the keys it writes and the versions it read. A function's
 * output will carry these (one per namespace it touches) so that its receipts sign them; a key's
 * write invocation signs their CID ({@link effectsCid}).
 */
export const StoreEffectsSchema = z.strictObject({
  ns: CanonicalCidSchema,
  writes: z.array(WriteSchema),
  reads: z.array(ReadSchema),
})
export type StoreEffects = z.infer<typeof StoreEffectsSchema>

const CommitShape = {
  v: z.literal(1),
  ns: CanonicalCidSchema,
  /** the request id (function), the invocation CID (key), the descriptor CID (policy) or the revocation token's CID */
  id: CanonicalCidSchema,
  writes: z.array(WriteSchema),
  reads: z.array(ReadSchema),
}

const FunctionCommitSchema = z.strictObject({
  ...CommitShape,
  kind: z.literal('function'),
  proof: z.strictObject({
    /** the quorum certificate; checked by the holder's injected verifier */
    certificate: z.unknown(),
    /** the output it certifies, which carries the store effects */
    output: z.unknown(),
    /** none to rely on the standing grants the namespace keeps for the function (standing.ts) */
    grants: z.array(GrantChainSchema).max(MAX_GRANTS),
    /**
     * the record of the job the run is an attempt of (docs/jobs.md): the commit is then keyed by
     * the job's id, so only one attempt's writes ever commit; checked by the injected verifier
     */
    job: z.unknown().optional(),
  }),
})

const KeyCommitSchema = z.strictObject({
  ...CommitShape,
  kind: z.literal('key'),
  proof: z.strictObject({
    invocation: BytesSchema,
    /** none when the owner writes */
    grants: z.array(GrantChainSchema).max(MAX_GRANTS),
  }),
})

const PolicyCommitSchema = z.strictObject({
  ...CommitShape,
  kind: z.literal('policy'),
  writes: z.array(WriteSchema).length(0),
  reads: z.array(ReadSchema).length(0),
  proof: z.strictObject({ descriptor: SignedDescriptorSchema }),
})

/**
 * A revocation, as an entry of the history: it holds for the entries after it (from its stated
 * time on), never for those before it, so every holder that replays the history judges each entry
 * against the same revocations.
 */
const RevocationCommitSchema = z.strictObject({
  ...CommitShape,
  kind: z.literal('revocation'),
  writes: z.array(WriteSchema).length(0),
  reads: z.array(ReadSchema).length(0),
  proof: z.strictObject({ revocation: RevocationSchema }),
})

/** A commit as a writer hands it to the holders. */
export const CommitSchema = z.discriminatedUnion('kind', [
  FunctionCommitSchema,
  KeyCommitSchema,
  PolicyCommitSchema,
  RevocationCommitSchema,
])
export type Commit = z.infer<typeof CommitSchema>
export type FunctionCommit = z.infer<typeof FunctionCommitSchema>
export type KeyCommit = z.infer<typeof KeyCommitSchema>
export type PolicyCommit = z.infer<typeof PolicyCommitSchema>
export type RevocationCommit = z.infer<typeof RevocationCommitSchema>

const EntryShape = {
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** the previous entry's CID; for seq 1 the genesis descriptor's */
  prev: CanonicalCidSchema,
  /** ms since the epoch, by the clock of the holder that applied it first */
  at: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}

/** A commit as the history holds it. */
export const EntrySchema = z.discriminatedUnion('kind', [
  FunctionCommitSchema.extend(EntryShape),
  KeyCommitSchema.extend(EntryShape),
  PolicyCommitSchema.extend(EntryShape),
  RevocationCommitSchema.extend(EntryShape),
])
export type Entry = z.infer<typeof EntrySchema>

const utf8 = new TextEncoder()

function overLimit(message: string): never {
  throw new CovenantError('STORE_LIMIT', message)
}

/** Limits checked on the raw input, before any schema walks it, so they get their own code. */
function checkRawLimits(value: unknown): void {
  if (value === null || typeof value !== 'object') return
  const { writes, reads } = value as { writes?: unknown; reads?: unknown }
  if (Array.isArray(writes) && writes.length > MAX_WRITES)
    overLimit(`a commit writes at most ${MAX_WRITES} keys, not ${writes.length}`)
  if (Array.isArray(reads) && reads.length > MAX_READS)
    overLimit(`a commit reads at most ${MAX_READS} keys, not ${reads.length}`)
  for (const item of [...(Array.isArray(writes) ? writes : []), ...(Array.isArray(reads) ? reads : [])]) {
    const key = (item as { key?: unknown } | null)?.key
    if (typeof key === 'string' && (key.length > MAX_KEY_BYTES || utf8.encode(key).length > MAX_KEY_BYTES))
      overLimit(`key ${JSON.stringify(key.slice(0, 40))}… is longer than ${MAX_KEY_BYTES} bytes`)
  }
}

function checkEffects(
  effects: { writes: Write[]; reads: Read[] },
  code: 'ENTRY_INVALID' | 'INVALID_INPUT',
): void {
  for (const [what, items] of [
    ['writes', effects.writes],
    ['reads', effects.reads],
  ] as const) {
    const keys = new Set(items.map((i) => i.key))
    if (keys.size !== items.length) throw new CovenantError(code, `a key appears twice in ${what}`)
  }
  for (const w of effects.writes) {
    const size = dagCbor.encode(w.value).length
    if (size > MAX_VALUE_BYTES)
      overLimit(`the value of ${JSON.stringify(w.key)} is ${size} bytes, more than ${MAX_VALUE_BYTES}`)
  }
}

function parse<S extends z.ZodType>(
  schema: S,
  value: unknown,
  code: 'ENTRY_INVALID' | 'INVALID_INPUT',
  what: string,
): z.output<S> {
  checkRawLimits(value)
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new CovenantError(code, `invalid ${what}: ${z.prettifyError(parsed.error)}`)
  checkEffects(parsed.data as { writes: Write[]; reads: Read[] }, code)
  return parsed.data
}

/** Reads a commit handed in by a writer. Throws ENTRY_INVALID or STORE_LIMIT. */
export function parseCommit(value: unknown): Commit {
  return parse(CommitSchema, value, 'ENTRY_INVALID', 'commit')
}

/** Reads store effects. Throws INVALID_INPUT or STORE_LIMIT. */
export function parseEffects(value: unknown): StoreEffects {
  return parse(StoreEffectsSchema, value, 'INVALID_INPUT', 'store effects')
}

/** The CID of a commit's effects: what a key's write invocation signs. */
export function effectsCid(effects: StoreEffects): string {
  const { ns, writes, reads } = effects
  return cidForBytes(dagCbor.encode({ ns, writes, reads }), 'dag-cbor').toString()
}

/** An entry's canonical bytes. Throws ENTRY_INVALID if it holds something DAG-CBOR cannot encode. */
export function encodeEntry(entry: Entry): Uint8Array {
  try {
    return dagCbor.encode(entry)
  } catch (err) {
    throw new CovenantError('ENTRY_INVALID', 'the entry cannot be encoded as DAG-CBOR', { cause: err })
  }
}

/** The CID of an entry's bytes: what the next entry names as `prev`. */
export function entryCid(bytes: Uint8Array): string {
  return cidForBytes(bytes, 'dag-cbor').toString()
}

/**
 * Reads an entry sent by another holder: at most {@link MAX_ENTRY_BYTES} (STORE_LIMIT), canonical
 * DAG-CBOR (its bytes are the only spelling of its CID) and of the entry schema (ENTRY_INVALID).
 * Nothing about its proof or its place in the history is checked here.
 */
export function decodeEntry(bytes: unknown): Entry {
  if (!(bytes instanceof Uint8Array)) throw new CovenantError('ENTRY_INVALID', 'an entry travels as bytes')
  if (bytes.length > MAX_ENTRY_BYTES)
    overLimit(`an entry of ${bytes.length} bytes is larger than the ${MAX_ENTRY_BYTES} allowed`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new CovenantError('ENTRY_INVALID', 'the entry is not valid DAG-CBOR', { cause: err })
  }
  const entry = parse(EntrySchema, value, 'ENTRY_INVALID', 'entry')
  if (!equals(encodeEntry(entry), bytes))
    throw new CovenantError('ENTRY_INVALID', 'the entry is not in canonical DAG-CBOR form')
  return entry
}

export interface KeyCommitInit {
  /** the writer's key */
  issuer: PrivateKey
  ns: string
  writes: Write[]
  reads?: Read[]
  /** the grants the writer relies on; none when the owner writes */
  grants?: WriteGrant[]
  nonce?: string
  /** ms since the epoch; @default Date.now() */
  now?: number
  windowMs?: number
}

/** A key's commit: the writes and reads, signed by the writer in a write invocation. */
export async function createKeyCommit(init: KeyCommitInit): Promise<KeyCommit> {
  const effects = parseEffects({ ns: init.ns, writes: init.writes, reads: init.reads ?? [] })
  const grants = init.grants ?? []
  const invocation = await invokeWrite({
    issuer: init.issuer,
    namespace: init.ns,
    effects: effectsCid(effects),
    grants,
    nonce: init.nonce,
    now: init.now,
    windowMs: init.windowMs,
  })
  return {
    v: 1,
    ns: effects.ns,
    kind: 'key',
    id: invocation.cid,
    writes: effects.writes,
    reads: effects.reads,
    proof: { invocation: invocation.bytes, grants: grants.map((g) => g.chain) },
  }
}

/**
 * A function's commit: the effects its certified output carries, with the certificate and the
 * grants; without grants, the holders use the standing grants the namespace keeps for the function.
 * A job's attempt passes the job's record as `job` and the job id as `request`: its commit is keyed
 * by the job, not by the attempt's request.
 */
export function createFunctionCommit(init: {
  request: string
  effects: StoreEffects
  certificate: unknown
  output: unknown
  grants?: WriteGrant[]
  job?: unknown
}): FunctionCommit {
  const effects = parseEffects(init.effects)
  return {
    v: 1,
    ns: effects.ns,
    kind: 'function',
    id: init.request,
    writes: effects.writes,
    reads: effects.reads,
    proof: {
      certificate: init.certificate,
      output: init.output,
      grants: (init.grants ?? []).map((g) => g.chain),
      ...(init.job === undefined ? {} : { job: init.job }),
    },
  }
}

/**
 * Commits a certified run's writes (`output.store`): one function commit per namespace it wrote,
 * handed to `commit` all at once (each namespace commits on its own, see docs/apps.md). A refusal
 * (WRITE_CONFLICT, a missing grant, the write policy) is returned with its namespace, not thrown:
 * the value stays certified either way. What a gateway does for the calls it runs, and the SDK for
 * the calls it runs itself.
 */
export function commitRunWrites<R>(
  run: { id: string; certificate: unknown; output: { store?: readonly StoreEffects[] } },
  commit: (commit: FunctionCommit) => Promise<R>,
): Promise<Array<R | { ns: string; error: ErrorJSON }>> {
  const written = (run.output.store ?? []).filter((e) => e.writes.length > 0)
  return Promise.all(
    written.map(async (effects) => {
      const made = createFunctionCommit({
        request: run.id,
        effects,
        certificate: run.certificate,
        output: run.output,
      })
      try {
        return await commit(made)
      } catch (err) {
        return { ns: effects.ns, error: CovenantError.from(err).toJSON() }
      }
    }),
  )
}

/** The owner's commit of a new descriptor (see `updateNamespace`). */
export function createPolicyCommit(descriptor: SignedDescriptor): PolicyCommit {
  return {
    v: 1,
    ns: namespaceId(descriptor.owner, descriptor.name),
    kind: 'policy',
    id: descriptorCid(descriptor),
    writes: [],
    reads: [],
    proof: { descriptor },
  }
}

/** The CID of a revocation's token: the id of the entry that records it. */
export function revocationId(revocation: Revocation): string {
  return cidForBytes(revocation.ucan, 'dag-cbor').toString()
}

/** A revocation, as the commit that records it in the namespace's history (see `revoke`). */
export function createRevocationCommit(ns: string, revocation: unknown): RevocationCommit {
  const parsed = RevocationSchema.safeParse(revocation)
  if (!parsed.success)
    throw new CovenantError('GRANT_MALFORMED', `malformed revocation: ${z.prettifyError(parsed.error)}`)
  return {
    v: 1,
    ns,
    kind: 'revocation',
    id: revocationId(parsed.data),
    writes: [],
    reads: [],
    proof: { revocation: parsed.data },
  }
}
