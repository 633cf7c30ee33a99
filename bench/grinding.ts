/**
 * What steering executor selection costs an attacker. A network of N = 50 executing peers, S of
 * them the attacker's; the attacker wants at least q of its keys among the k executors of a
 * request (then its keys can form the quorum). Each try gives a fresh, uniformly random ranking,
 * so a try succeeds with the hypergeometric probability p and takes 1/p tries on average.
 *
 * - before (selection key = the request id): a try is a new nonce — sign the request, take its
 *   CID, rank the peers;
 * - after (selection key from the ticket, the function and the export): a try is a new ticket —
 *   2^TICKET_BITS hashes on average — and a ranking. Nonces, arguments and timestamps are free
 *   but move nothing.
 *
 * Per-try costs are measured here, in this process; the expectations are computed from them.
 * Prints a table and writes bench/results/grinding-latest.json.
 *
 *   npm run bench:grinding
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { cidForBytes } from '../src/content/index.ts'
import { signCovenant } from '../src/covenant/index.ts'
import {
  createRequest,
  createView,
  epochOf,
  mintTicket,
  rankExecutors,
  TICKET_BITS,
} from '../src/exec/index.ts'
import { canonicalBytes, generateKey, keyId, signValue } from '../src/keys/index.ts'
import { printTable, round, writeResults } from './report.ts'

const N = 50
const ATTACKER_KEYS = [2, 5, 10]
const SHAPES = [
  { k: 3, q: 2 },
  { k: 3, q: 3 },
  { k: 5, q: 3 },
]
const started = performance.now()

/** C(n, r) as a float (small numbers here). */
function choose(n: number, r: number): number {
  if (r < 0 || r > n) return 0
  let c = 1
  for (let i = 1; i <= r; i++) c = (c * (n - r + i)) / i
  return c
}

/** P(at least q of the first k of N are among the S attacker's), for a uniformly random order. */
function success(n: number, s: number, k: number, q: number): number {
  let p = 0
  for (let j = q; j <= Math.min(k, s); j++) p += (choose(s, j) * choose(n - s, k - j)) / choose(n, k)
  return p
}

/** Mean ms of `fn` over `n` runs, after a warm-up. */
function timeMean(n: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(20, n); i++) fn(i)
  const t = performance.now()
  for (let i = 0; i < n; i++) fn(i)
  return (performance.now() - t) / n
}

// --- a network of 50 executing peers and a request --------------------------------------------
const keys = await Promise.all(Array.from({ length: N }, () => generateKey()))
const view = createView(keys.map((key) => signCovenant(key, { execute: { enabled: true } }, 1)))
const caller = await generateKey()
const fn = cidForBytes(new TextEncoder().encode('a manifest'), 'dag-cbor').toString()
const manifest = { tags: [], publisher: keyId(caller) }
const { request } = createRequest(caller, { fn, export: 'run', args: ['x'] })
const { signature: _, ...body } = request

// --- per-try costs ----------------------------------------------------------------------------
const rankMs = timeMean(2000, () => rankExecutors(view, request, manifest))
// before: a new nonce, signed, and the CID that was the selection key
const signCidMs = timeMean(2000, (i) => {
  const tried = { ...body, nonce: `grind-nonce-${i}` }
  const signed = { ...tried, signature: signValue(caller, tried) }
  return cidForBytes(canonicalBytes(signed), 'dag-cbor')
})
// after: hashes per second, and whole tickets
const prefix = new TextEncoder().encode(`covenant/ticket/v1\0${keyId(caller)}\0${epochOf(Date.now())}\0`)
const state = sha256.create().update(prefix)
const hashMs = timeMean(200_000, (i) =>
  state
    .clone()
    .update(new TextEncoder().encode(String(i)))
    .digest(),
)
const ticketHashes = 2 ** TICKET_BITS
const ticketComputedMs = ticketHashes * hashMs
// Whole tickets take a geometric number of hashes; their time per hash, times 2^TICKET_BITS, is
// the expected cost of one without the luck of a few draws.
const MINTED = 12
const mintStarted = performance.now()
let from = 0
for (let i = 0; i < MINTED; i++) from = mintTicket(keyId(caller), epochOf(Date.now()), from).nonce + 1
const mintedMs = performance.now() - mintStarted
const ticketMeasuredMs = (mintedMs / from) * ticketHashes
const beforeTryMs = signCidMs + rankMs
const afterTryMs = ticketMeasuredMs + rankMs

console.log(`\nper-try costs (ms, this machine, one core)`)
printTable(
  ['step', 'ms'],
  [
    ['rank 50 peers by a selection key', rankMs],
    ['before: sign a request with a new nonce and take its CID', signCidMs],
    ['after: one sha256 of a ticket, in µs', hashMs * 1000],
    [`after: one ticket, 2^${TICKET_BITS} hashes at that rate`, ticketComputedMs],
    [
      `after: one ticket, 2^${TICKET_BITS} hashes at the rate of ${MINTED} mints (${from} hashes, ${Math.round(mintedMs)} ms)`,
      ticketMeasuredMs,
    ],
    ['before: one try (sign + CID + rank)', beforeTryMs],
    ['after: one try (ticket + rank)', afterTryMs],
  ],
)

// --- expectations -----------------------------------------------------------------------------
const rows: Array<Record<string, number>> = []
for (const { k, q } of SHAPES)
  for (const s of ATTACKER_KEYS) {
    const p = success(N, s, k, q)
    if (p === 0) continue
    const tries = 1 / p
    rows.push({
      attackerKeys: s,
      k,
      q,
      p,
      tries,
      beforeCpuS: (tries * beforeTryMs) / 1000,
      afterCpuS: (tries * afterTryMs) / 1000,
      ratio: afterTryMs / beforeTryMs,
    })
  }

const human = (seconds: number): string => {
  if (seconds < 1) return `${round(seconds * 1000, 1)} ms`
  if (seconds < 120) return `${round(seconds, 1)} s`
  if (seconds < 7200) return `${round(seconds / 60, 1)} min`
  if (seconds < 172_800) return `${round(seconds / 3600, 1)} h`
  return `${round(seconds / 86_400, 1)} days`
}

console.log(`\nexpected CPU to put ≥ q attacker keys among the k executors, N = ${N} (one core)`)
printTable(
  ['S keys', 'k', 'q', 'p per try', 'tries', 'before', 'after', 'after / before'],
  rows.map((r) => [
    r.attackerKeys,
    r.k,
    r.q,
    r.p.toExponential(2),
    Math.round(r.tries),
    human(r.beforeCpuS),
    human(r.afterCpuS),
    Math.round(r.ratio),
  ]),
)

const file = await writeResults('grinding', {
  peers: N,
  ticketBits: TICKET_BITS,
  perTryMs: {
    rank: round(rankMs, 4),
    signAndCid: round(signCidMs, 4),
    sha256: round(hashMs, 6),
    ticketComputed: round(ticketComputedMs, 1),
    ticketMeasured: round(ticketMeasuredMs, 1),
    minted: { tickets: MINTED, hashes: from, ms: round(mintedMs, 1) },
    before: round(beforeTryMs, 4),
    after: round(afterTryMs, 1),
  },
  expectations: rows.map((r) => ({
    ...r,
    p: Number(r.p.toPrecision(4)),
    tries: round(r.tries, 1),
    beforeCpuS: round(r.beforeCpuS, 3),
    afterCpuS: round(r.afterCpuS, 1),
    ratio: Math.round(r.ratio),
  })),
  totalMs: round(performance.now() - started),
})
console.log(`\nwrote ${file} (${((performance.now() - started) / 1000).toFixed(1)} s)`)
