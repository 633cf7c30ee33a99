/**
 * Datastores: mutable key-value namespaces owned by a key, versioned, with a hash-chained history,
 * held by the nodes closest to the namespace id. This part is one holder's state machine and the
 * store protocol's messages, network-free; the node's datastore service puts it on the network
 * (placement, the primary's commit, catch-up: docs/apps.md).
 *
 * A namespace maps keys to JSON values (stored as DAG-CBOR). Every key has a version (the seq of
 * the entry that last wrote it), and every past version of the namespace can be read. A commit
 * writes several keys at once under multi-version concurrency control: it states the versions it
 * read and is refused with WRITE_CONFLICT if one is no longer current; the same commit twice is a
 * no-op. A write lands only with a capability for every key (src/caps) and, from a function, a
 * quorum certificate that meets the namespace's signed write policy, checked by a verifier the
 * holder injects. A revocation is an entry of the history, and holds for the entries after it.
 *
 * @example
 * ```ts
 * const { id, descriptor } = createNamespace(owner, { name: 'guestbook', public: true,
 *   policy: { minReplicas: 3, minQuorum: 2 } })
 * const store = openDatastore({ path: 'datastore.db', verifyRun })
 * store.create(descriptor)
 * // the owner writes directly
 * await createKeyCommit({ issuer: owner, ns: id, writes: [{ key: 'title', value: 'Guests' }] })
 *   .then((c) => store.commit(c))
 * // a function writes through its certified run and the grant the owner gave its CID
 * store.commit(createFunctionCommit({ request, effects, certificate, output, grants: [grant] }))
 * store.get(id, 'title')            // { value: 'Guests', version: 1 }
 * store.get(id, 'title', { at: 0 }) // { value: null, version: 0 }
 * ```
 */
export type {
  CommitResult,
  Datastore,
  DatastoreInit,
  DraftedCommit,
  Head,
  HistoryItem,
  KeyVersion,
  NamespaceInfo,
  PreparedCommit,
  StoredEntry,
  VerifiedRun,
  VerifyRun,
} from './datastore.ts'
export { DATASTORE_SCHEMA_VERSION, MAX_ENTRY_SKEW_MS, openDatastore } from './datastore.ts'
export type {
  Commit,
  Entry,
  FunctionCommit,
  KeyCommit,
  KeyCommitInit,
  PolicyCommit,
  Read,
  RevocationCommit,
  StoreEffects,
  Write,
} from './entry.ts'
export {
  CommitSchema,
  commitRunWrites,
  createFunctionCommit,
  createKeyCommit,
  createPolicyCommit,
  createRevocationCommit,
  decodeEntry,
  EntrySchema,
  effectsCid,
  encodeEntry,
  entryCid,
  KeySchema,
  MAX_ENTRY_BYTES,
  MAX_READS,
  MAX_VALUE_BYTES,
  MAX_WRITES,
  parseCommit,
  parseEffects,
  ReadSchema,
  revocationId,
  StoreEffectsSchema,
  WriteSchema,
} from './entry.ts'
export type {
  NamespaceInit,
  ReadToken,
  SignedDescriptor,
  WritePolicy,
  WritePolicyInput,
} from './namespace.ts'
export {
  checkRead,
  createNamespace,
  descriptorCid,
  NamespaceNameSchema,
  namespaceId,
  namespaceKeyBytes,
  READ_TOKEN_TTL_MS,
  ReadTokenSchema,
  SignedDescriptorSchema,
  signRead,
  updateNamespace,
  verifyDescriptor,
  WritePolicySchema,
} from './namespace.ts'
export type { PromiseBook, PromiseBookInit, Promised, StandingPromise } from './promises.ts'
export { createPromiseBook, PROMISE_MS } from './promises.ts'
export type { Vouch, VouchJSON } from './standing.ts'
export {
  GRANTS_PREFIX,
  signVouch,
  standingGrantKey,
  standingGrantsPrefix,
  VOUCHES_PREFIX,
  VouchJSONSchema,
  VouchSchema,
  verifyVouch,
  vouchKey,
  vouchToJSON,
} from './standing.ts'
export type { CommitReply, HeadReply, StoreRequest } from './wire.ts'
export {
  BranchReplySchema,
  CidsReplySchema,
  CommitReplySchema,
  EntriesReplySchema,
  GetReplySchema,
  HeadReplySchema,
  HeadSchema,
  HistoryItemSchema,
  HistoryReplySchema,
  InfoReplySchema,
  KeyHistoryReplySchema,
  KeyVersionSchema,
  ListReplySchema,
  MAX_STORE_MESSAGE_BYTES,
  MAX_STORE_REPLY_BYTES,
  OkReplySchema,
  RevocationsReplySchema,
  STORE_PAGE_BYTES,
  STORE_PROTOCOL,
  StoreRequestSchema,
} from './wire.ts'
