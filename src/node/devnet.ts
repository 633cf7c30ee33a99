/**
 * A local network of node processes on loopback, for development, tests, the demo and benches.
 * Node i lives in `<dir>/node-<i>` (key, covenant.yaml, blocks, log), listens for libp2p on
 * `basePort + 2i` and for HTTP on `basePort + 2i + 1`, and is bootstrapped to all the others, so
 * a restarted devnet reuses its identities, ports and data.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import {
  type CovenantConfig,
  CovenantConfigSchema,
  covenantToYaml,
  DEFAULT_COVENANT,
  loadCovenantFile,
} from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import { keyId, loadOrCreateKey } from '../keys/index.ts'

const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url))

/** `<dir>/devnet.json`, written once every node is ready, removed on stop. */
export const devnetFileSchema = z.strictObject({
  nodes: z.array(
    z.strictObject({
      index: z.number().int().min(0),
      peerId: z.string(),
      multiaddrs: z.array(z.string()),
      http: z.string(),
      dataDir: z.string(),
    }),
  ),
})
export type DevnetFile = z.infer<typeof devnetFileSchema>

export const DEVNET_FILE = 'devnet.json'
const LAYOUT_FILE = 'devnet-layout.json'
export const DEFAULT_DEVNET_DIR = '.covenant/devnet'
export const DEFAULT_BASE_PORT = 4700

export interface DevnetOptions {
  /** @default '.covenant/devnet' */
  dir?: string
  /** @default 5 */
  nodes?: number
  /** @default the port recorded by a previous run, else 4700 */
  basePort?: number
  /** node index → covenant (a config, or a covenant.yaml path); others get the devnet default */
  covenants?: Record<number, CovenantConfig | string>
  /** node index → fault kind, handed to that node's process as `--fault` (devnet only) */
  faults?: Record<number, string>
  replicas?: number
  heartbeatMs?: number
  helloTimeoutMs?: number
  repairIntervalMs?: number
  logLevel?: string
  /** how long to wait for every node to be ready @default 60000 */
  readyTimeoutMs?: number
}

export interface DevnetNode {
  index: number
  peerId: string
  multiaddrs: string[]
  http: string
  dataDir: string
  /** the running process, or undefined once it exited */
  process: ChildProcess | undefined
}

export interface Devnet {
  dir: string
  nodes: DevnetNode[]
  /** sends `signal` to node i and waits for it to exit */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>
  /** starts node i again (same identity, ports and data) and waits for its ready line */
  restart(index: number): Promise<DevnetNode>
  /** resolves when every running node sees every other running node alive */
  waitConnected(timeoutMs?: number): Promise<void>
  /** stops every node (SIGTERM, then SIGKILL after 10 s) and removes devnet.json */
  stop(): Promise<void>
}

/** The covenant a devnet node runs unless told otherwise: the default, with execution enabled. */
export const DEVNET_COVENANT: CovenantConfig = CovenantConfigSchema.parse({
  ...DEFAULT_COVENANT,
  statement: 'devnet node: stores and executes anything',
  execute: { ...DEFAULT_COVENANT.execute, enabled: true },
})

async function readLayout(dir: string): Promise<{ basePort: number } | undefined> {
  try {
    const v = JSON.parse(await readFile(join(dir, LAYOUT_FILE), 'utf8'))
    return z.object({ basePort: z.number().int() }).parse(v)
  } catch {
    return undefined
  }
}

async function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true
  return new Promise((res) => {
    const t = setTimeout(() => res(false), timeoutMs)
    child.once('exit', () => {
      clearTimeout(t)
      res(true)
    })
  })
}

/** Starts (or restarts) a devnet and resolves once every node is ready and sees all the others. */
export async function startDevnet(options: DevnetOptions = {}): Promise<Devnet> {
  const dir = resolve(options.dir ?? DEFAULT_DEVNET_DIR)
  const count = options.nodes ?? 5
  if (!Number.isInteger(count) || count < 1 || count > 64)
    throw new CovenantError('INVALID_INPUT', 'a devnet has 1 to 64 nodes')
  await mkdir(dir, { recursive: true })
  const basePort = options.basePort ?? (await readLayout(dir))?.basePort ?? DEFAULT_BASE_PORT
  if (basePort < 1024 || basePort + 2 * count > 65535)
    throw new CovenantError('INVALID_INPUT', 'bad base port')
  await writeFile(join(dir, LAYOUT_FILE), `${JSON.stringify({ basePort, nodes: count })}\n`)

  const nodes: DevnetNode[] = []
  for (let i = 0; i < count; i++) {
    const dataDir = join(dir, `node-${i}`)
    const key = await loadOrCreateKey(join(dataDir, 'node.key'))
    const given = options.covenants?.[i]
    const covenant = typeof given === 'string' ? await loadCovenantFile(given) : (given ?? DEVNET_COVENANT)
    await writeFile(join(dataDir, 'covenant.yaml'), covenantToYaml(covenant))
    nodes.push({
      index: i,
      peerId: keyId(key),
      multiaddrs: [`/ip4/127.0.0.1/tcp/${basePort + 2 * i}/p2p/${keyId(key)}`],
      http: `http://127.0.0.1:${basePort + 2 * i + 1}`,
      dataDir,
      process: undefined,
    })
  }

  const stderrTails = new Map<number, string>()
  const launch = (node: DevnetNode): Promise<DevnetNode> => {
    const i = node.index
    const args = [
      MAIN,
      'node',
      'start',
      '--devnet',
      '--data',
      node.dataDir,
      '--config',
      join(node.dataDir, 'covenant.yaml'),
      '--listen',
      `/ip4/127.0.0.1/tcp/${basePort + 2 * i}`,
      '--http',
      String(basePort + 2 * i + 1),
      '--bootstrap',
      ...nodes.filter((n) => n.index !== i).map((n) => n.multiaddrs[0]),
    ]
    const numeric: Array<[string, number | undefined]> = [
      ['--replicas', options.replicas],
      ['--heartbeat-ms', options.heartbeatMs],
      ['--hello-timeout-ms', options.helloTimeoutMs],
      ['--repair-interval-ms', options.repairIntervalMs],
    ]
    for (const [flag, value] of numeric) if (value !== undefined) args.push(flag, String(value))
    if (options.logLevel !== undefined) args.push('--log-level', options.logLevel)
    const fault = options.faults?.[i]
    if (fault !== undefined) args.push('--fault', fault)
    // stdin stays a pipe: a node started by a devnet exits when its parent goes away.
    const child = spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, COVENANT_EXIT_WITH_PARENT: '1' },
    })
    node.process = child
    stderrTails.set(i, '')
    child.stderr!.on('data', (d: Buffer) =>
      stderrTails.set(i, (stderrTails.get(i)! + d.toString()).slice(-4000)),
    )
    child.once('exit', () => {
      if (node.process === child) node.process = undefined
    })
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        rej(
          new CovenantError('NODE_UNREACHABLE', `devnet node ${i} not ready in time: ${stderrTails.get(i)}`),
        )
      }, options.readyTimeoutMs ?? 60_000)
      const lines = createInterface({ input: child.stdout! })
      lines.on('line', (line) => {
        try {
          const msg = JSON.parse(line) as { event?: string; multiaddrs?: string[]; http?: string }
          if (msg.event !== 'ready') return
          clearTimeout(timer)
          node.multiaddrs = msg.multiaddrs ?? node.multiaddrs
          node.http = msg.http ?? node.http
          res(node)
        } catch {
          // not our ready line
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        rej(
          new CovenantError(
            'NODE_UNREACHABLE',
            `devnet node ${i} exited (${signal ?? code}) before it was ready: ${stderrTails.get(i)}`,
          ),
        )
      })
    })
  }

  const kill = async (index: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const child = nodes[index]?.process
    if (child === undefined) return
    child.kill(signal)
    if (!(await exited(child, 10_000))) {
      child.kill('SIGKILL')
      await exited(child, 5000)
    }
  }

  const waitConnected = async (timeoutMs = options.readyTimeoutMs ?? 60_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const running = nodes.filter((n) => n.process !== undefined)
      const ids = new Set(running.map((n) => n.peerId))
      const ok = await Promise.all(
        running.map(async (n) => {
          try {
            const res = await fetch(`${n.http}/v1/peers`, { signal: AbortSignal.timeout(2000) })
            const body = (await res.json()) as { peers: Array<{ id: string; alive: boolean }> }
            const alive = new Set(body.peers.filter((p) => p.alive).map((p) => p.id))
            return [...ids].every((id) => alive.has(id))
          } catch {
            return false
          }
        }),
      )
      if (ok.every(Boolean)) return
      if (Date.now() > deadline)
        throw new CovenantError('PEER_TIMEOUT', 'devnet nodes did not all see each other in time')
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => kill(n.index, 'SIGTERM')))
    await rm(join(dir, DEVNET_FILE), { force: true })
  }

  try {
    await Promise.all(nodes.map(launch))
    await waitConnected()
  } catch (err) {
    await stop()
    throw err
  }
  const file: DevnetFile = {
    nodes: nodes.map(({ index, peerId, multiaddrs, http, dataDir }) => ({
      index,
      peerId,
      multiaddrs,
      http,
      dataDir,
    })),
  }
  await writeFile(join(dir, DEVNET_FILE), `${JSON.stringify(file, null, 2)}\n`)
  return {
    dir,
    nodes,
    kill,
    restart: async (index) => {
      await kill(index, 'SIGTERM')
      return launch(nodes[index])
    },
    waitConnected,
    stop,
  }
}
