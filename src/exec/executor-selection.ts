/**
 * Who executes a request. Deterministic from public data — the request's selection key, the
 * function's manifest, the limits asked and the peers' signed covenants in a view — so anyone
 * holding the same covenants computes the same order, and nobody can pick the executors:
 *
 *   selectionKey = sha256("covenant/select/v1\0" + hex(ticketHash) + "\0" + fn + "\0" + export)
 *
 * Eligible peers are ordered by the XOR distance between their position (sha256 of the peer id's
 * multihash) and the selection key, nearest first. The key moves only with a new ticket (a proof
 * of work, ticket.ts), so a caller cannot try selections for free; the same caller key calling the
 * same export in the same hour reaches the same executors.
 */
import { compareDistance, mayExecute, xorDistance } from '../covenant/index.ts'
import { sha256, toHex } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { RequestBody } from './request.ts'
import { ticketHash } from './ticket.ts'
import type { View, ViewPeer } from './view.ts'

/** What of a request selection reads. */
export type SelectionRequest = Pick<
  RequestBody,
  'caller' | 'ticket' | 'fn' | 'export' | 'fuel' | 'memoryMiB' | 'timeoutMs' | 'outputMiB' | 'k'
>

/** What of a function's manifest selection reads. */
export interface SelectionManifest {
  tags: readonly string[]
  publisher: string
}

export interface Ranking {
  /** every eligible peer of the view, alive or not, nearest first */
  ranked: string[]
  /** the alive ones of `ranked`, in its order: whom a gateway asks */
  ordered: string[]
  /** alive peers of the view whose covenant executes code at all */
  executing: number
  /** every peer of the view left out, with why */
  excluded: Array<{ peer: string; reason: string }>
}

export interface Selection extends Ranking {
  /** the first k of `ordered` */
  chosen: string[]
}

const encoder = new TextEncoder()

/** The selection key of a request: see the module comment. */
export function selectionKey(request: Pick<RequestBody, 'caller' | 'ticket' | 'fn' | 'export'>): Uint8Array {
  const ticket = toHex(ticketHash(request.caller, request.ticket))
  return sha256(encoder.encode(`covenant/select/v1\0${ticket}\0${request.fn}\0${request.export}`))
}

/** Why `peer` may not execute this request, or `undefined` if it may. */
function exclusionReason(
  peer: ViewPeer,
  request: SelectionRequest,
  manifest: SelectionManifest,
): string | undefined {
  const verdict = mayExecute(peer.covenant.config, {
    tags: manifest.tags,
    publisher: manifest.publisher,
    fuel: request.fuel,
    memoryMiB: request.memoryMiB,
    timeoutMs: request.timeoutMs,
    outputMiB: request.outputMiB,
  })
  return verdict.ok ? undefined : verdict.reason
}

/**
 * Rankings already made, by view and by everything a ranking reads of the request and the
 * manifest. A view never changes once built (view.ts), and a caller's selection holds for its
 * ticket's hour, so a gateway, an executor and a verifier rank a caller's calls of one export
 * once per view, not once per call (sha256s and covenant matching for every peer). The arrays
 * handed out are frozen: they are shared.
 */
const rankings = new WeakMap<View, Map<string, Ranking>>()
const RANKINGS_PER_VIEW = 1024

function rankingKey(request: SelectionRequest, manifest: SelectionManifest): string {
  const { caller, ticket, fn, fuel, memoryMiB, timeoutMs, outputMiB } = request
  return JSON.stringify([
    caller,
    ticket.epoch,
    ticket.nonce,
    fn,
    request.export,
    fuel,
    memoryMiB,
    timeoutMs,
    outputMiB ?? 1,
    manifest.publisher,
    manifest.tags,
  ])
}

/** Orders the eligible peers of `view` for `request`; never throws for too few. */
export function rankExecutors(view: View, request: SelectionRequest, manifest: SelectionManifest): Ranking {
  let byKey = rankings.get(view)
  if (byKey === undefined) {
    byKey = new Map()
    rankings.set(view, byKey)
  }
  const memo = rankingKey(request, manifest)
  let ranking = byKey.get(memo)
  if (ranking === undefined) {
    ranking = rank(view, request, manifest)
    if (byKey.size >= RANKINGS_PER_VIEW) byKey.delete(byKey.keys().next().value as string)
    byKey.set(memo, ranking)
  }
  return ranking
}

function rank(view: View, request: SelectionRequest, manifest: SelectionManifest): Ranking {
  const key = selectionKey(request)
  const eligible: Array<{ peer: ViewPeer; distance: Uint8Array }> = []
  const excluded: Ranking['excluded'] = []
  let executing = 0
  for (const peer of view.peers.values()) {
    if (peer.alive && peer.covenant.config.execute.enabled) executing++
    const reason = exclusionReason(peer, request, manifest)
    if (reason === undefined) eligible.push({ peer, distance: xorDistance(peer.position, key) })
    else excluded.push({ peer: peer.peer, reason })
  }
  eligible.sort((a, b) => compareDistance(a.distance, b.distance))
  const ranked = eligible.map((e) => e.peer.peer)
  const ordered = eligible.filter((e) => e.peer.alive).map((e) => e.peer.peer)
  for (const e of eligible) if (!e.peer.alive) excluded.push({ peer: e.peer.peer, reason: 'not reachable' })
  for (const e of excluded) Object.freeze(e)
  return Object.freeze({
    ranked: Object.freeze(ranked) as string[],
    ordered: Object.freeze(ordered) as string[],
    executing,
    excluded: Object.freeze(excluded) as Ranking['excluded'],
  })
}

/**
 * Why a ranking is too thin to trust, or `undefined`: fewer than k eligible live peers, or fewer
 * than `minEligibleFraction` of the live executing peers (a request whose limits, tags or
 * publisher carve a small eligible set out of the network).
 */
export function thinRanking(ranking: Ranking, k: number, minEligibleFraction: number): string | undefined {
  const eligible = ranking.ordered.length
  if (eligible < k) return `${eligible} live peers may execute this request, k=${k} needed`
  if (eligible < minEligibleFraction * ranking.executing)
    return (
      `only ${eligible} of the ${ranking.executing} live executing peers may execute this request ` +
      `(its limits, tags or publisher leave fewer than ${minEligibleFraction * 100}% of them)`
    )
  return undefined
}

/**
 * The executors of `request` in `view`: the eligible live peers nearest the selection key, the
 * first k chosen. Throws NO_EXECUTORS, with every exclusion in `details`, when the ranking is too
 * thin to trust ({@link thinRanking}).
 */
export function selectExecutors(init: {
  view: View
  request: SelectionRequest
  manifest: SelectionManifest
  /** see `TrustSchema` */
  minEligibleFraction: number
}): Selection {
  const ranking = rankExecutors(init.view, init.request, init.manifest)
  const thin = thinRanking(ranking, init.request.k, init.minEligibleFraction)
  if (thin !== undefined)
    throw new CovenantError('NO_EXECUTORS', thin, {
      details: { eligible: ranking.ordered, executing: ranking.executing, excluded: ranking.excluded },
    })
  return { ...ranking, chosen: ranking.ordered.slice(0, init.request.k) }
}
