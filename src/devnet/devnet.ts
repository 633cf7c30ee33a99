/**
 * A local network of node processes on loopback, for development, tests, the demo and benches.
 * Node i lives in `<dir>/node-<i>` (key, covenant.yaml, blocks, log), listens for libp2p on
 * `basePort + 2i` and for HTTP on `basePort + 2i + 1`, and is bootstrapped to all the others, so
 * a restarted devnet reuses its identities, ports and data.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { z } from 'zod'
import { PeersReplySchema, peersRoute } from '../api/index.ts'
import {
  type CovenantConfig,
  CovenantConfigSchema,
  covenantToYaml,
  DEFAULT_COVENANT,
  loadCovenantFile,
} from '../covenant/index.ts'
import { CovenantError, isErrorCode, parseOrThrow } from '../errors/index.ts'
import { keyId, loadOrCreateKey } from '../keys/index.ts'
import { DAEMON_ENTRY, type DaemonOptions, daemonOptionsSchema, readyLineSchema } from '../node/index.ts'
import { DEVNET_FILE, type DevnetFile } from './devnet-file.ts'

const LAYOUT_FILE = 'devnet-layout.json'
export const DEFAULT_BASE_PORT = 4700

/** How a devnet is laid out and how its nodes run; every default is written here. */
export const devnetOptionsSchema = z.strictObject({
  /** where node data and devnet.json go @default '.covenant/devnet' */
  dir: z.string().min(1).default('.covenant/devnet'),
  /** how many nodes @default 5 */
  nodes: z.number().int().min(1).max(64).default(5),
  /** node i uses base+2i (libp2p) and base+2i+1 (HTTP) @default the port of the previous run, else 4700 */
  basePort: z.number().int().min(1024).max(65535).optional(),
  /** node index → covenant (a config, or a covenant.yaml path); others get {@link DEVNET_COVENANT} */
  covenants: z.record(z.number().int().min(0), z.union([z.string(), CovenantConfigSchema])).default({}),
  /** node index → fault kind for that node (devnet only) */
  faults: z.record(z.number().int().min(0), z.string().max(64)).default({}),
  /** every node's tunables, as `covenant node start` takes them */
  ...daemonOptionsSchema.pick({
    replicas: true,
    heartbeatMs: true,
    helloTimeoutMs: true,
    repairIntervalMs: true,
    logLevel: true,
    payments: true,
    apps: true,
  }).shape,
  /** how long to wait for every node to be ready @default 60000 */
  readyTimeoutMs: z.number().int().min(1000).max(600_000).default(60_000),
})
export type DevnetOptions = z.input<typeof devnetOptionsSchema>

/** The devnet's defaults, as the CLI shows them. */
export const DEVNET_DEFAULTS = devnetOptionsSchema.parse({})

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
  /** node i listens on basePort + 2i (libp2p) and basePort + 2i + 1 (HTTP) */
  basePort: number
  /** where the base port came from: the option, the previous run in this dir, or the default */
  basePortFrom: 'option' | 'last-run' | 'default'
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

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const server = createServer()
    server.once('error', () => res(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => res(true)))
  })
}

/** PORT_IN_USE naming the first port the devnet needs that something else holds, and what to do. */
async function assertPortsFree(
  dir: string,
  basePort: number,
  count: number,
  from: Devnet['basePortFrom'],
): Promise<void> {
  for (let port = basePort; port < basePort + 2 * count; port++) {
    if (await portFree(port)) continue
    const node = Math.floor((port - basePort) / 2)
    const running = await readFile(join(dir, DEVNET_FILE)).then(
      () => ` (${join(dir, DEVNET_FILE)} exists: is a devnet still running there? stop it with Ctrl-C)`,
      () => '',
    )
    const origin = from === 'last-run' ? `, remembered from the last run in ${dir}` : ''
    throw new CovenantError(
      'PORT_IN_USE',
      `port ${port} (node ${node}'s ${port % 2 === basePort % 2 ? 'libp2p' : 'HTTP'} port, from base port ${basePort}${origin}) is in use${running}; ` +
        `pass --base-port to use others: node i takes base+2i and base+2i+1`,
    )
  }
}

/** Starts (or restarts) a devnet and resolves once every node is ready and sees all the others. */
export async function startDevnet(options: DevnetOptions = {}): Promise<Devnet> {
  const opts = parseOrThrow(devnetOptionsSchema, options, 'INVALID_INPUT', 'devnet options')
  const dir = resolve(opts.dir)
  const count = opts.nodes
  for (const index of [...Object.keys(opts.covenants), ...Object.keys(opts.faults)])
    if (Number(index) >= count)
      throw new CovenantError('INVALID_INPUT', `node ${index} is named, but there are only ${count} nodes`)
  await mkdir(dir, { recursive: true })
  const remembered = (await readLayout(dir))?.basePort
  const basePort = opts.basePort ?? remembered ?? DEFAULT_BASE_PORT
  const basePortFrom =
    opts.basePort !== undefined ? 'option' : remembered !== undefined ? 'last-run' : 'default'
  if (basePort < 1024 || basePort + 2 * count > 65535)
    throw new CovenantError('INVALID_INPUT', `base port ${basePort} leaves no room for ${count} nodes`)
  await assertPortsFree(dir, basePort, count, basePortFrom)
  await writeFile(join(dir, LAYOUT_FILE), `${JSON.stringify({ basePort, nodes: count })}\n`)

  const nodes: DevnetNode[] = []
  for (let i = 0; i < count; i++) {
    const dataDir = join(dir, `node-${i}`)
    const key = await loadOrCreateKey(join(dataDir, 'node.key'))
    const given = opts.covenants[i]
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
    const daemon: DaemonOptions = {
      dataDir: node.dataDir,
      config: join(node.dataDir, 'covenant.yaml'),
      listen: [`/ip4/127.0.0.1/tcp/${basePort + 2 * i}`],
      httpPort: basePort + 2 * i + 1,
      bootstrap: nodes.filter((n) => n.index !== i).map((n) => n.multiaddrs[0]),
      replicas: opts.replicas,
      heartbeatMs: opts.heartbeatMs,
      helloTimeoutMs: opts.helloTimeoutMs,
      repairIntervalMs: opts.repairIntervalMs,
      logLevel: opts.logLevel,
      payments: opts.payments,
      apps: opts.apps,
      fault: opts.faults[i],
      devnet: true,
      // stdin stays a pipe: a node started by a devnet exits when its parent goes away.
      exitWithParent: true,
    }
    const child = spawn(process.execPath, [DAEMON_ENTRY, JSON.stringify(daemon)], {
      stdio: ['pipe', 'pipe', 'pipe'],
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
      }, opts.readyTimeoutMs)
      const lines = createInterface({ input: child.stdout! })
      lines.on('line', (line) => {
        let ready: z.infer<typeof readyLineSchema>
        try {
          ready = readyLineSchema.parse(JSON.parse(line))
        } catch {
          return // not the ready line
        }
        clearTimeout(timer)
        node.multiaddrs = ready.multiaddrs
        node.http = ready.http
        res(node)
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        // The daemon says why it stopped as `error CODE: message`: pass that on as it is.
        const said = /^error ([A-Z_]+): (.*)$/m.exec(stderrTails.get(i) ?? '')
        rej(
          said !== null && isErrorCode(said[1])
            ? new CovenantError(said[1], `devnet node ${i}: ${said[2]}`)
            : new CovenantError(
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

  const waitConnected = async (timeoutMs = opts.readyTimeoutMs): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const running = nodes.filter((n) => n.process !== undefined)
      const ids = new Set(running.map((n) => n.peerId))
      const ok = await Promise.all(
        running.map(async (n) => {
          try {
            const res = await fetch(`${n.http}${peersRoute.path}`, { signal: AbortSignal.timeout(2000) })
            const body = PeersReplySchema.parse(await res.json())
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
    basePort,
    basePortFrom,
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
