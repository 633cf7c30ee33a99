/**
 * The network's datastores, as a node component for the services that are not the datastore
 * service: the exec service's executor reads a function's `ctx.store.get` through it, and its
 * gateway commits a certified run's writes through it. The datastore service serves it when it is
 * made (`serve`); until then, or in a node without that service, every call is NOT_STARTED.
 */
import type { Commit, CommitReply, Entry, KeyVersion } from '../datastore/index.ts'
import { CovenantError } from '../errors/index.ts'

/** What the datastore service offers other services. */
export interface StoreAccess {
  /**
   * A key of namespace `ns` at the namespace version `at`: from this node's copy when it holds the
   * namespace at that version, else from its holders. Throws when none can answer.
   */
  read(ns: string, key: string, at: number): Promise<KeyVersion>
  /** Hands a commit to the namespace's primary (or the next holder), as `POST /v1/stores/:ns/commit` does. */
  commit(commit: Commit): Promise<CommitReply>
  /** The namespace's current version (its head's seq) as a holder reports it. */
  head(ns: string): Promise<number>
  /** Entry `seq` of the namespace: from this node's copy when it has it, else from its holders. */
  entry(ns: string, seq: number): Promise<Entry>
}

export interface NodeStores extends StoreAccess {
  /** Called once by the datastore service with what it offers. */
  serve(access: StoreAccess): void
}

/** The component, empty until the datastore service serves it. */
export function createNodeStores(): NodeStores {
  let access: StoreAccess | undefined
  const served = (): StoreAccess => {
    if (access === undefined) throw new CovenantError('NOT_STARTED', 'this node serves no datastores')
    return access
  }
  return {
    read: async (ns, key, at) => served().read(ns, key, at),
    commit: async (commit) => served().commit(commit),
    head: async (ns) => served().head(ns),
    entry: async (ns, seq) => served().entry(ns, seq),
    serve(a) {
      access = a
    },
  }
}
