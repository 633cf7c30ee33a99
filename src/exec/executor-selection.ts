/**
 * Who executes a request. Deterministic from public data (the request id, the function's manifest,
 * the limits asked and the peers' signed covenants), so the caller cannot pick its executors and
 * anyone holding the same covenants can recompute the group.
 */
import { closestPeers, mayExecute, type SignedCovenant, verifySignedCovenant } from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import { requestIdBytes } from './request.ts'

export interface SelectionCandidate {
  peer: string
  covenant: SignedCovenant
  /** `false` leaves the peer out (the caller knows it is down); absent means alive */
  alive?: boolean
}

export interface SelectionLimits {
  fuel: number
  memoryMiB: number
  timeoutMs: number
}

export interface SelectExecutorsInit {
  requestId: string
  /** the function's manifest; only its tags and publisher matter here */
  manifest: { tags: readonly string[]; publisher: string }
  limits: SelectionLimits
  candidates: readonly SelectionCandidate[]
  /** replicas: how many of the eligible peers are chosen */
  k: number
  /** fewer eligible peers than this is NO_EXECUTORS; defaults to 1 */
  q?: number
}

export interface Selection {
  /** every eligible peer, closest to the request id first */
  ordered: string[]
  /** the first k of `ordered` */
  chosen: string[]
  /** every candidate left out, with why */
  excluded: Array<{ peer: string; reason: string }>
}

function covenantVerifies(covenant: SignedCovenant): boolean {
  try {
    verifySignedCovenant(covenant)
    return true
  } catch {
    return false
  }
}

/** Why `candidate` may not execute this request, or `undefined` if it may. */
function exclusionReason(
  candidate: SelectionCandidate,
  manifest: SelectExecutorsInit['manifest'],
  limits: SelectionLimits,
): string | undefined {
  if (candidate.alive === false) return 'not reachable'
  const covenant = candidate.covenant
  if (covenant?.peer !== candidate.peer) return 'its covenant is signed by another peer'
  if (!covenantVerifies(covenant)) return 'its covenant does not verify'
  if (!covenant.config.execute.enabled) return 'its covenant does not execute code'
  const verdict = mayExecute(covenant.config, {
    tags: [...manifest.tags],
    publisher: manifest.publisher,
    fuel: limits.fuel,
    memoryMiB: limits.memoryMiB,
    timeoutMs: limits.timeoutMs,
  })
  return verdict.ok ? undefined : verdict.reason
}

/**
 * Orders the eligible candidates by XOR distance between sha2-256 of the request id's binary CID
 * and sha2-256 of each peer id (the covenant part's `closestPeers`), and picks the first `k`.
 * A peer listed twice counts once (its first entry). Throws NO_EXECUTORS, with every exclusion in
 * `details`, when fewer than `q` are eligible.
 */
export function selectExecutors(init: SelectExecutorsInit): Selection {
  const excluded: Selection['excluded'] = []
  const eligible: string[] = []
  const seen = new Set<string>()
  for (const candidate of init.candidates) {
    if (seen.has(candidate.peer)) {
      excluded.push({ peer: candidate.peer, reason: 'listed more than once' })
      continue
    }
    seen.add(candidate.peer)
    const reason = exclusionReason(candidate, init.manifest, init.limits)
    if (reason === undefined) eligible.push(candidate.peer)
    else excluded.push({ peer: candidate.peer, reason })
  }
  const ordered = closestPeers(requestIdBytes(init.requestId), eligible, eligible.length)
  const q = init.q ?? 1
  if (ordered.length < q) {
    throw new CovenantError(
      'NO_EXECUTORS',
      `${ordered.length} of ${init.candidates.length} known nodes may execute this request, ${q} needed`,
      { details: { eligible: ordered, needed: q, excluded } },
    )
  }
  return { ordered, chosen: ordered.slice(0, init.k), excluded }
}
