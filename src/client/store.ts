/**
 * Datastores through a node's HTTP API: a handle on one namespace (`client.store(ns)`) that reads
 * it at any version and commits key writes signed with the caller's key, and the helpers to create
 * a namespace, grant writes on it and revoke them. Every request is built from its route's spec in
 * `src/api` and every reply parsed with it.
 *
 * Reads are as true as the node that answers: it serves its own copy, or a holder's, and nothing
 * here proves a value is in the namespace's history. Writes are another matter: a commit carries
 * the writer's signature over exactly its writes and reads, and every holder checks it.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { z } from 'zod'
import {
  type CommitReplySchema,
  commitRoute,
  createStoreRoute,
  type GetKeyReply,
  getKeyRoute,
  historyRoute,
  keyHistoryRoute,
  type ListKeysReply,
  listKeysRoute,
  type RouteSpec,
  revocationsRoute,
  revokeRoute,
  type StoreHistoryReply,
  type StoreInfo,
  type StoreKeyHistoryReply,
  storeInfoRoute,
} from '../api/index.ts'
import { checkChain, grantToJSON, type Revocation, revoke, type WriteGrant } from '../caps/index.ts'
import {
  createKeyCommit,
  createNamespace,
  type NamespaceInit,
  READ_TOKEN_TTL_MS,
  type Read,
  type SignedDescriptor,
  signRead,
  standingGrantKey,
  type Vouch,
  vouchKey,
  vouchToJSON,
  type Write,
} from '../datastore/index.ts'
import { bytesFieldsToJSON, fromBase64, toBase64 } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { PrivateKey } from '../keys/index.ts'

/** How the client calls a JSON route (the client's own `json`). */
export type CallJson = <S extends RouteSpec & { reply: z.ZodType }>(
  spec: S,
  init?: { params?: Record<string, string>; query?: string; body?: unknown },
) => Promise<z.output<S['reply']>>

/** What a commit resolves with: the entry's seq and CID, and the holders known to have applied it. */
export type CommitResult = z.output<typeof CommitReplySchema>

export interface CommitOptions {
  /** the versions the writer read: the commit is refused (WRITE_CONFLICT) if one is no longer current */
  reads?: Read[]
  /** the grants the writer relies on; none when the owner writes */
  grants?: WriteGrant[]
  /** the writer's key @default the handle's key, else the caller key file (Node only) */
  key?: PrivateKey
  /** the write invocation's nonce @default random */
  nonce?: string
}

/** Keeps only the defined values, as a query string. */
function queryOf(values: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(values)) if (v !== undefined) q.set(k, String(v))
  return q.toString()
}

/**
 * One namespace, through one node. With `key`, reads of a private namespace are signed with it
 * (only the owner reads a private namespace) and commits are signed with it.
 */
export class NamespaceHandle {
  readonly ns: string
  readonly #call: CallJson
  readonly #key: PrivateKey | undefined
  readonly #callerKey: () => Promise<PrivateKey>
  #read: { token: string; until: number } | undefined

  constructor(ns: string, init: { call: CallJson; key?: PrivateKey; callerKey: () => Promise<PrivateKey> }) {
    this.ns = ns
    this.#call = init.call
    this.#key = init.key
    this.#callerKey = init.callerKey
  }

  /** A signed read, renewed before it expires; none without a key. */
  #reader(): string | undefined {
    if (this.#key === undefined) return undefined
    const now = Date.now()
    if (this.#read === undefined || now >= this.#read.until) {
      const token = toBase64(dagCbor.encode(signRead(this.#key, this.ns, now)))
      this.#read = { token, until: now + READ_TOKEN_TTL_MS / 2 }
    }
    return this.#read.token
  }

  /** The descriptor, policy and head (of the holder that answers). */
  info(): Promise<StoreInfo> {
    return this.#call(storeInfoRoute, { params: { ns: this.ns } })
  }

  /** A key at the head, or at the namespace version `at`: `{ value, version, at }`, `value` null if absent. */
  get(key: string, options: { at?: number } = {}): Promise<GetKeyReply> {
    return this.#call(getKeyRoute, {
      params: { ns: this.ns, key },
      query: queryOf({ at: options.at, reader: this.#reader() }),
    })
  }

  /** The keys present under `prefix`, in UTF-8 order, a page at a time (`next` is the next `after`). */
  list(
    options: { prefix?: string; at?: number; after?: string; limit?: number } = {},
  ): Promise<ListKeysReply> {
    return this.#call(listKeysRoute, {
      params: { ns: this.ns },
      query: queryOf({ ...options, reader: this.#reader() }),
    })
  }

  /** The namespace's entries, oldest first, after seq `after`. */
  history(options: { after?: number; limit?: number } = {}): Promise<StoreHistoryReply> {
    return this.#call(historyRoute, {
      params: { ns: this.ns },
      query: queryOf({ ...options, reader: this.#reader() }),
    })
  }

  /** A key's versions, newest first, before version `before`. */
  keyHistory(key: string, options: { before?: number; limit?: number } = {}): Promise<StoreKeyHistoryReply> {
    return this.#call(keyHistoryRoute, {
      params: { ns: this.ns, key },
      query: queryOf({ ...options, reader: this.#reader() }),
    })
  }

  /**
   * Writes several keys at once (a `null` value deletes a key), signed by the writer: applied on
   * the namespace's holders only if every version in `reads` is still current (else
   * WRITE_CONFLICT, and nothing is written). Sending the same commit again changes nothing and
   * answers the earlier result (`duplicate: true`).
   */
  async commit(writes: Write[], options: CommitOptions = {}): Promise<CommitResult> {
    const key = options.key ?? this.#key ?? (await this.#callerKey())
    const commit = await createKeyCommit({
      issuer: key,
      ns: this.ns,
      writes,
      reads: options.reads,
      grants: options.grants,
      nonce: options.nonce,
    })
    return this.send(commit)
  }

  /**
   * Keeps grants to functions in the namespace (`_grants/<fn>/<grant CID>`, one commit signed like
   * {@link commit}: the owner's key, or a key granted that prefix), so the holders find them when a
   * function's certified writes come without one: whoever calls the function needs no grant.
   */
  keepGrants(
    grants: WriteGrant[],
    options: Omit<CommitOptions, 'reads' | 'grants'> = {},
  ): Promise<CommitResult> {
    const writes = grants.map((grant) => {
      const audience = checkChain(grant.chain, { namespace: this.ns })[0].audience
      if (!('fn' in audience))
        throw new CovenantError('INVALID_INPUT', 'only a grant to a function is kept for the holders')
      return { key: standingGrantKey(audience.fn, grant.cid), value: grantToJSON(grant) }
    })
    return this.commit(writes, options)
  }

  /**
   * Keeps a vouch (`signVouch`) in the namespace (`_vouches/<executor>/<voucher>`), where the
   * holders look when the write policy counts only certifiers its `vouchedBy` keys vouch for.
   */
  keepVouch(vouch: Vouch, options: Omit<CommitOptions, 'reads' | 'grants'> = {}): Promise<CommitResult> {
    return this.commit([{ key: vouchKey(vouch.executor, vouch.voucher), value: vouchToJSON(vouch) }], options)
  }

  /** Sends a commit made elsewhere (`createKeyCommit`, `createFunctionCommit`, …) as it is. */
  send(commit: unknown): Promise<CommitResult> {
    return this.#call(commitRoute, {
      params: { ns: this.ns },
      body: { commit: toBase64(dagCbor.encode(commit)) },
    })
  }

  /**
   * Records a signed revocation (`revoke`) in the namespace's history, through its primary: every
   * holder honours it for every later entry. Resolves like a commit (`id` is the revocation's CID).
   */
  sendRevocation(revocation: Revocation): Promise<CommitResult> {
    return this.#call(revokeRoute, {
      params: { ns: this.ns },
      body: { revocation: toBase64(dagCbor.encode(revocation)) },
    })
  }

  /** The revocations in the answering node's history (its own, when it holds the namespace). */
  async revocations(): Promise<Revocation[]> {
    const out: Revocation[] = []
    for (let after = ''; ; ) {
      const page = await this.#call(revocationsRoute, { params: { ns: this.ns }, query: queryOf({ after }) })
      for (const r of page.revocations) {
        const bytes = fromBase64(r.revocation)
        if (bytes === undefined) throw new CovenantError('PROTOCOL_ERROR', 'a revocation is not base64')
        out.push(dagCbor.decode(bytes) as Revocation)
      }
      if (page.next === null) return out
      after = page.next
    }
  }
}

export interface CreateStoreOptions extends Omit<NamespaceInit, 'name'> {
  /** the owner's key @default the caller key file (Node only) */
  key?: PrivateKey
}

/** What creating a namespace resolves with. */
export interface CreatedStore {
  ns: string
  descriptor: SignedDescriptor
  /** the holders that confirmed holding it, closest first */
  holders: string[]
  wanted: number
}

/** Signs a namespace's genesis with the owner's key and has its holders hold it. */
export async function createStore(
  call: CallJson,
  owner: PrivateKey,
  name: string,
  options: Omit<CreateStoreOptions, 'key'>,
): Promise<CreatedStore> {
  const { id, descriptor } = createNamespace(owner, { ...options, name })
  const reply = await call(createStoreRoute, { body: { descriptor: bytesFieldsToJSON(descriptor) } })
  if (reply.ns !== id) throw new CovenantError('PROTOCOL_ERROR', `the node named the namespace ${reply.ns}`)
  return { ns: id, descriptor, holders: reply.holders, wanted: reply.wanted }
}

/** Signs a revocation of (a delegation of) `grant` with the issuer's key and hands it to the holders. */
export async function revokeGrant(
  handle: NamespaceHandle,
  issuer: PrivateKey,
  init: { grant: WriteGrant; delegation?: string; effectiveAt?: number },
): Promise<CommitResult> {
  const revocation = await revoke({ issuer, namespace: handle.ns, ...init })
  return handle.sendRevocation(revocation)
}
