/**
 * `npm run fuzz`: the fuzz suite (test/fuzz) at full length — 100 000 cases over every target,
 * with a fresh seed — then how many cases each target ran, how long it took, and the seed to run
 * the same cases again. `FUZZ_RUNS` sets the cases, `FUZZ_SEED` the seed (`npm test` runs a short
 * pass with a fixed one).
 *
 * @example
 * ```sh
 * npm run fuzz                               # 100 000 cases, a fresh seed
 * FUZZ_SEED=1234 FUZZ_RUNS=20000 npm run fuzz # again, shorter
 * ```
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FULL_RUN, TARGETS } from '../test/fuzz/fuzz.ts'

const runs = process.env.FUZZ_RUNS || String(FULL_RUN)
const seed = process.env.FUZZ_SEED || String(Math.floor(Math.random() * 2 ** 31))
const dir = await mkdtemp(join(tmpdir(), 'covenant-fuzz-report-'))
const report = join(dir, 'report.jsonl')
process.stdout.write(`fuzzing: ${runs} cases, seed ${seed}\n`)

const started = performance.now()
const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', 'test/fuzz/*.test.ts'], {
    stdio: 'inherit',
    env: { ...process.env, FUZZ_RUNS: runs, FUZZ_SEED: seed, FUZZ_REPORT: report },
  })
  child.on('exit', (status, signal) => resolve(status ?? (signal === null ? 1 : 128)))
})
const seconds = (performance.now() - started) / 1000

const done = new Map<string, { runs: number; ms: number }>()
const text = await readFile(report, 'utf8').catch(() => '')
for (const line of text.split('\n').filter(Boolean)) {
  const r = JSON.parse(line) as { target: string; runs: number; ms: number }
  done.set(r.target, r)
}
await rm(dir, { recursive: true, force: true })

const rows = Object.keys(TARGETS).map((target) => {
  const r = done.get(target)
  return `${target.padEnd(24)} ${r === undefined ? '     —' : String(r.runs).padStart(6)} ${r === undefined ? 'did not finish' : `${(r.ms / 1000).toFixed(1).padStart(7)} s`}`
})
const total = [...done.values()].reduce((a, r) => a + r.runs, 0)
process.stdout.write(`\n${'target'.padEnd(24)}  cases    time\n${rows.join('\n')}\n`)
process.stdout.write(
  `${'total'.padEnd(24)} ${String(total).padStart(6)} ${seconds.toFixed(1).padStart(7)} s (seed ${seed})\n`,
)
const missing = Object.keys(TARGETS).filter((t) => !done.has(t))
if (missing.length > 0) process.stdout.write(`not finished: ${missing.join(', ')}\n`)
process.exitCode = code !== 0 ? code : missing.length > 0 ? 1 : 0
