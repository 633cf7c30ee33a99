/**
 * How long-running commands end (src/cli/signals.ts), in a real process: the first SIGINT or
 * SIGTERM stops what they run, once, however many signals follow while it stops.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { describe, it } from 'node:test'

const CHILD = new URL('../fixtures/signal-child.ts', import.meta.url).pathname

/**
 * Starts the child. `next(line)` resolves when `line` has come once more than the times it was
 * waited for before: the test waits on one line at a time.
 */
async function start(): Promise<{ child: ChildProcess; lines: string[]; next(line: string): Promise<void> }> {
  const child = spawn(process.execPath, [CHILD], { stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: string[] = []
  let wake = (): void => {}
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line)
    wake()
  })
  const waited = new Map<string, number>()
  const next = async (line: string): Promise<void> => {
    const want = (waited.get(line) ?? 0) + 1
    waited.set(line, want)
    while (lines.filter((l) => l === line).length < want)
      await new Promise<void>((resolve) => {
        wake = resolve
      })
  }
  await next('ready')
  return { child, lines, next }
}

describe('stopOnSignal', { timeout: 60_000 }, () => {
  for (const [first, then] of [
    ['SIGTERM', 'SIGINT'],
    ['SIGINT', 'SIGTERM'],
  ] as const) {
    it(`stops once on ${first}, and once only when ${then} and ${first} follow while it stops`, async () => {
      const { child, lines, next } = await start()
      const stderr: string[] = []
      child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
      child.kill(first)
      await next(`signal ${first}`)
      await next('stop')
      child.kill(then)
      await next(`signal ${then}`)
      child.kill(first)
      await next(`signal ${first}`)
      child.stdin!.write('finish\n')
      const [code] = await once(child, 'exit')
      assert.equal(code, 0)
      assert.deepEqual(
        lines.filter((l) => !l.startsWith('signal ')),
        ['ready', 'stop', 'stopped'],
      )
      assert.equal(stderr.join(''), 'stopping the test…\n')
    })
  }
})
