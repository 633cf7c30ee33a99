/**
 * What every benchmark shares: latency summaries, a plain-text table, and the JSON written under
 * bench/results/ (`<name>-latest.json` plus a timestamped copy, so runs can be compared).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'

export interface Latency {
  n: number
  p50: number
  p99: number
  mean: number
}

export function latency(samplesMs: readonly number[]): Latency {
  const s = [...samplesMs].sort((a, b) => a - b)
  const pick = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)
  return { n: s.length, p50: round(pick(0.5)), p99: round(pick(0.99)), mean: round(mean) }
}

export function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits))
}

/** Prints rows under headers, right-aligned except the first column. */
export function printTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<unknown>>): void {
  const cells = [headers, ...rows].map((r) =>
    r.map((c) => (typeof c === 'number' ? String(round(c, 2)) : String(c))),
  )
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  for (const r of cells)
    console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '))
}

/** Writes bench/results/<name>-latest.json and a timestamped copy; returns the latest path. */
export async function writeResults(name: string, data: Record<string, unknown>): Promise<string> {
  const at = new Date().toISOString()
  const body = `${JSON.stringify({ at, node: process.version, cpus: availableParallelism(), loadavg: loadavg(), ...data }, null, 2)}\n`
  const dir = new URL('./results/', import.meta.url)
  await mkdir(dir, { recursive: true })
  await writeFile(new URL(`${name}-${at.replace(/[:.]/g, '-')}.json`, dir), body)
  await writeFile(new URL(`${name}-latest.json`, dir), body)
  return `bench/results/${name}-latest.json`
}

/** The time of each of `n` calls made one after another, ms. */
export async function timeEach(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await fn(i)
    out.push(performance.now() - t)
  }
  return out
}

/** Calls per second with `concurrency` calls in flight until `total` are done. */
export async function throughput(
  total: number,
  concurrency: number,
  fn: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0
  const t = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await fn(next++)
    }),
  )
  return total / ((performance.now() - t) / 1000)
}
