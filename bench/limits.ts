/**
 * What the network-side limits bound, measured on real in-process libp2p nodes (one process, so
 * the peers' work shares the event loop with the node measured):
 *
 * - repair: one node holds 10 000 small blocks (every peer holds them too, so a round checks,
 *   asks and drops, as in a steady network) and runs a repair round; how long the event loop was
 *   blocked at once (the longest gap between two turns of a setImmediate ticker; and the 99th
 *   percentile of monitorEventLoopDelay), and how long the round took;
 * - lookup storm: 1000 fetches at once for CIDs nobody holds, then again those that were looked up
 *   and not found; how many block requests the peers received, how the fetches ended, and the
 *   longest event-loop block.
 *
 * Prints a table and writes bench/results/limits-latest.json.
 *
 *   npm run bench:limits
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { cidForBytes } from '../src/content/index.ts'
import { CovenantError } from '../src/errors/index.ts'
import { BLOCK_PROTOCOL } from '../src/storage/index.ts'
import { allAlive, type StorageMember, storageMember } from '../test/fixtures/storage-members.ts'
import { printTable, round, writeResults } from './report.ts'

const BLOCKS = 10_000
const STORM = 1000

/** Runs `work` and reports the longest the event loop was blocked meanwhile. */
async function blocked<T>(
  work: () => Promise<T>,
): Promise<{ result: T; ms: number; maxGapMs: number; maxDelayMs: number; p99DelayMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  let maxGap = 0
  let last = performance.now()
  let ticking = true
  const tick = (): void => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
    if (ticking) setImmediate(tick)
  }
  setImmediate(tick)
  const started = performance.now()
  const result = await work()
  const ms = performance.now() - started
  ticking = false
  histogram.disable()
  return {
    result,
    ms,
    maxGapMs: maxGap,
    maxDelayMs: histogram.max / 1e6,
    p99DelayMs: histogram.percentile(99) / 1e6,
  }
}

async function network(n: number): Promise<StorageMember[]> {
  const members = [await storageMember({ storage: { replicas: 3 } })]
  const first = members[0].net.multiaddrs()[0]
  for (let i = 1; i < n; i++)
    members.push(await storageMember({ bootstrap: [first], storage: { replicas: 3 } }))
  await allAlive(members)
  return members
}

/** Block requests the members answered with an error: for unknown CIDs, every one they got. */
const gets = (members: readonly StorageMember[]): number =>
  members.reduce(
    (sum, m) =>
      sum +
      [...m.inboundErrors].reduce(
        (n, [what, count]) => (what.startsWith(`${BLOCK_PROTOCOL} `) ? n + count : n),
        0,
      ),
    0,
  )

async function repairBench(): Promise<Record<string, number>> {
  const members = await network(5)
  try {
    const [node] = members
    for (let i = 0; i < BLOCKS; i++) {
      const bytes = new TextEncoder().encode(`small block ${i}`)
      for (const m of members) m.store.put(cidForBytes(bytes), bytes)
    }
    // The other nodes run their own first rounds (set off by the peers they just met); let them
    // finish, so what is measured is this node's round, not four others' sharing its process.
    for (const m of members.slice(1)) await m.storage.repair()
    const first = await blocked(() => node.storage.repair())
    const second = await blocked(() => node.storage.repair())
    return {
      blocks: BLOCKS,
      firstRoundMs: round(first.ms, 1),
      firstMaxGapMs: round(first.maxGapMs, 1),
      firstP99DelayMs: round(first.p99DelayMs, 1),
      firstDropped: first.result.dropped,
      secondRoundMs: round(second.ms, 1),
      secondMaxGapMs: round(second.maxGapMs, 1),
      secondP99DelayMs: round(second.p99DelayMs, 1),
    }
  } finally {
    for (const m of members) await m.stop()
  }
}

async function stormBench(): Promise<Record<string, number>> {
  const members = await network(6)
  try {
    const [node, ...peers] = members
    const unknown = Array.from({ length: STORM }, (_, i) =>
      cidForBytes(new TextEncoder().encode(`nobody has ${i}`)),
    )
    const wave = (cids: typeof unknown) =>
      Promise.all(
        cids.map((cid) =>
          node.storage.get(cid).then(
            () => 'found',
            (err: unknown) => CovenantError.from(err).code,
          ),
        ),
      )
    const count = (codes: string[], code: string) => codes.filter((c) => c === code).length
    const before = gets(peers)
    const first = await blocked(() => wave(unknown))
    const afterFirst = gets(peers)
    // the fetches that were looked up and not found, again at once
    const missed = unknown.filter((_, i) => first.result[i] === 'BLOCK_NOT_FOUND')
    const second = await blocked(() => wave(missed))
    return {
      fetches: STORM,
      firstWaveMs: round(first.ms, 1),
      firstPeerRequests: afterFirst - before,
      firstNotFound: count(first.result, 'BLOCK_NOT_FOUND'),
      firstBusy: count(first.result, 'PEER_BUSY'),
      firstMaxGapMs: round(first.maxGapMs, 1),
      firstP99DelayMs: round(first.p99DelayMs, 1),
      secondFetches: missed.length,
      secondWaveMs: round(second.ms, 1),
      secondPeerRequests: gets(peers) - afterFirst,
      secondMaxGapMs: round(second.maxGapMs, 1),
    }
  } finally {
    for (const m of members) await m.stop()
  }
}

const repair = await repairBench()
const storm = await stormBench()
printTable(
  ['measure', 'value'],
  [
    ...Object.entries(repair).map(([k, v]) => [`repair ${k}`, v]),
    ...Object.entries(storm).map(([k, v]) => [`storm ${k}`, v]),
  ],
)
console.log(`results: ${await writeResults('limits', { repair, storm })}`)
