/**
 * Stopping as a service manager or a container does it: SIGTERM to the one process it started,
 * and nothing left running. Through `npm start` itself (npm runs scripts in `sh -c`, which does
 * not pass signals on), through `npx covenant node start`, and through bin/covenant.js started by
 * the system's Node (which, when older than 22.12, hands over to the pinned Node).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { freeBasePort, waitFor } from '../fixtures/network.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const BIN = join(ROOT, 'bin', 'covenant.js')

/** Every process below `pid`, from `ps` (Linux and macOS alike). */
function descendants(pid: number): number[] {
  const rows = execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
  const below: number[] = []
  const walk = (parent: number): void => {
    for (const [child, ppid] of rows)
      if (ppid === parent) {
        below.push(child)
        walk(child)
      }
  }
  walk(pid)
  return below
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Resolves once stdout has printed a line matching `ready`; rejects if the process exits first. */
function readyLine(child: ChildProcess, ready: RegExp): Promise<string> {
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000)
  })
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => ready.test(l))
      if (line !== undefined) resolve(line)
    })
    child.once('exit', (code) => reject(new Error(`exited (${code}) before it was ready:\n${out}\n${err}`)))
  })
}

/** SIGTERM to `child` alone; then every process it had started must be gone. */
async function terminateAndCheck(child: ChildProcess, atLeast: number): Promise<void> {
  const tree = descendants(child.pid!)
  assert.ok(tree.length >= atLeast, `${tree.length} processes below ${child.pid}`)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  process.kill(child.pid!, 'SIGTERM')
  await exited
  const left = await waitFor(
    'every process it started to exit',
    async () => {
      const running = tree.filter(alive)
      return running.length === 0 ? running : undefined
    },
    30_000,
  ).catch(() => tree.filter(alive))
  // never leave a stray process behind, even when the test fails
  for (const pid of left) process.kill(pid, 'SIGKILL')
  assert.deepEqual(left, [], 'processes still running after SIGTERM')
}

describe('stopping with SIGTERM to one process', { timeout: 180_000 }, () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-stop-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('npm start: the demo and its five nodes stop', async () => {
    const devnetDir = join(dir, 'devnet')
    const npm = spawn(
      'npm',
      ['start', '--', '--dir', devnetDir, '--base-port', String(await freeBasePort(10))],
      {
        cwd: ROOT,
        env: { ...process.env, COVENANT_HOME: join(dir, 'home') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const line = await readyLine(npm, /keeps running/)
    assert.match(line, /Dashboard: http:\/\/127\.0\.0\.1:\d+\//)
    await terminateAndCheck(npm, 6)
    // it stopped cleanly, not killed: devnet.json is removed, the nodes' data stays
    const left = await readdir(devnetDir)
    assert.ok(!left.includes('devnet.json'))
    assert.ok(left.includes('node-4'))
  })

  it('npx covenant node start: the node stops', async () => {
    const npx = spawn('npx', ['covenant', 'node', 'start', '--data', join(dir, 'node'), '--http', '0'], {
      cwd: ROOT,
      env: { ...process.env, COVENANT_HOME: join(dir, 'home') },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await readyLine(npx, /"event":"ready"/)
    await terminateAndCheck(npx, 1)
  })

  it('bin/covenant.js started by the system’s Node: the signal reaches the node it runs', async () => {
    // the first `node` on PATH that is not the pinned one: what `#!/usr/bin/env node` finds
    const path = (process.env.PATH ?? '').split(':').filter((p) => !p.includes('node_modules'))
    const system = execFileSync('sh', ['-c', 'command -v node'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: path.join(':') },
    }).trim()
    const child = spawn(system, [BIN, 'node', 'start', '--data', join(dir, 'node-2'), '--http', '0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    await readyLine(child, /"event":"ready"/)
    await terminateAndCheck(child, 0)
  })
})
