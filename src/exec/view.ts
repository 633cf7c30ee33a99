/**
 * A view of the network: the signed covenants someone trusts to describe it, and which of those
 * peers it believes alive. Selection, certificates and conflict evidence are all judged against a
 * view: a gateway's and an executor's is their peer table (and themselves), a caller's is built
 * from several nodes or pinned (see docs/calling.md).
 *
 * Building one is cheap on the hot path: a covenant's signature is checked once per peer, version
 * and signature (an equal covenant presented again is not re-verified), and a peer's position in
 * the key space is computed once. A view does not change once built (its peers are frozen): a
 * peer coming or going makes a new view, so rankings over it are kept (executor-selection.ts).
 */
import { peerPosition, type SignedCovenant, verifySignedCovenant } from '../covenant/index.ts'
import { toBase64 } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'

export interface ViewPeer {
  peer: string
  covenant: SignedCovenant
  alive: boolean
  /** sha256 of the peer id's multihash: where it stands in the key space */
  position: Uint8Array
}

export interface View {
  /** every peer the view knows, with its verified covenant */
  readonly peers: ReadonlyMap<string, ViewPeer>
  /** covenants left out, with why (a bad signature, a malformed covenant) */
  readonly excluded: ReadonlyArray<{ peer: string; reason: string }>
}

export interface ViewOptions {
  /** whether a peer is alive; a dead peer may be skipped by a certificate at no cost. @default all alive */
  alive?: (peer: string) => boolean
}

const MAX_CACHED = 4096

/** Bounded memo: the oldest entry goes first. */
function remember<V>(map: Map<string, V>, key: string, value: V): V {
  if (map.size >= MAX_CACHED) map.delete(map.keys().next().value as string)
  map.set(key, value)
  return value
}

// Keyed by peer, version and signature; an entry holds what the signature covers beside them, so
// a different covenant under the same signature is never taken for the verified one.
const verified = new Map<string, { covenant: SignedCovenant; content: string }>()
const positions = new Map<string, Uint8Array>()

function contentOf(c: Pick<SignedCovenant, 'issuedAt' | 'config'>): string {
  return `${c.issuedAt}\0${JSON.stringify(c.config)}`
}

/** The covenant, verified (PROTOCOL_ERROR, INVALID_KEY_ID, INVALID_SIGNATURE), from the memo when it can be. */
export function verifiedCovenant(value: unknown): SignedCovenant {
  const v = value as Partial<SignedCovenant> | null
  let key: string | undefined
  if (typeof v?.peer === 'string' && typeof v.version === 'number' && v.signature instanceof Uint8Array) {
    key = `${v.peer}\0${v.version}\0${toBase64(v.signature)}`
    const hit = verified.get(key)
    if (hit !== undefined && (hit.covenant === value || hit.content === contentOf(v as SignedCovenant)))
      return hit.covenant
  }
  const covenant = verifySignedCovenant(value)
  if (key !== undefined) remember(verified, key, { covenant, content: contentOf(covenant) })
  return covenant
}

/** A peer's position in the key space (see `peerPosition`), memoized. */
export function positionOf(peer: string): Uint8Array {
  return positions.get(peer) ?? remember(positions, peer, peerPosition(peer))
}

/**
 * Builds a view from signed covenants. Each is verified (memoized); one that does not verify is
 * left out, with its reason in `excluded`. A peer listed twice keeps its highest version.
 */
export function createView(covenants: Iterable<unknown>, options: ViewOptions = {}): View {
  const peers = new Map<string, ViewPeer>()
  const excluded: Array<{ peer: string; reason: string }> = []
  for (const value of covenants) {
    let covenant: SignedCovenant
    try {
      covenant = verifiedCovenant(value)
    } catch (err) {
      const peer = (value as { peer?: unknown } | null)?.peer
      excluded.push({ peer: String(peer).slice(0, 128), reason: CovenantError.from(err).message })
      continue
    }
    const known = peers.get(covenant.peer)
    if (known !== undefined && known.covenant.version >= covenant.version) continue
    // frozen: a view never changes once built, so what is computed from it may be kept
    peers.set(
      covenant.peer,
      Object.freeze({
        peer: covenant.peer,
        covenant,
        alive: options.alive?.(covenant.peer) ?? true,
        position: positionOf(covenant.peer),
      }),
    )
  }
  return { peers, excluded }
}
