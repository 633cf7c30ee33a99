/** `covenant devnet`: a local network of node processes, until Ctrl-C. */
import type { Command } from 'commander'
import { DEVNET_DEFAULTS, DEVNET_FILE, type Devnet, startDevnet } from '../../devnet/index.ts'
import { CovenantError } from '../../errors/index.ts'
import { parseIntOption, printJson, runCommand } from '../output.ts'
import { stopOnSignal } from '../signals.ts'

interface DevnetCliOptions {
  nodes: number
  dir: string
  covenant: string[]
  fault: string[]
  basePort?: number
  replicas?: number
  heartbeatMs?: number
  repairIntervalMs?: number
  json?: boolean
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

/** Parses repeated `N=VALUE` options into an index → value map. */
export function parseIndexed(values: string[], flag: string, nodes: number): Record<number, string> {
  const out: Record<number, string> = {}
  for (const v of values) {
    const m = /^(\d+)=(.+)$/.exec(v)
    if (m === null) throw new CovenantError('INVALID_INPUT', `${flag} takes N=VALUE, got "${v}"`)
    const index = Number(m[1])
    if (index >= nodes)
      throw new CovenantError('INVALID_INPUT', `${flag} ${v}: there are only ${nodes} nodes`)
    out[index] = m[2]
  }
  return out
}

/** Which ports a devnet took and why: a base port kept from the last run is said, not used silently. */
export function basePortLine(devnet: Pick<Devnet, 'basePort' | 'basePortFrom' | 'dir' | 'nodes'>): string {
  const last = devnet.basePort + 2 * devnet.nodes.length - 1
  const why =
    devnet.basePortFrom === 'last-run'
      ? `the base port of the last run in ${devnet.dir}; --base-port changes it`
      : devnet.basePortFrom === 'default'
        ? 'the default; --base-port changes it'
        : 'as asked'
  return `ports ${devnet.basePort}–${last} (${why})`
}

/** The options that lay out a devnet, shared by `covenant devnet` and `covenant demo`. */
export function layoutOptions(command: Command): Command {
  return command
    .option('--nodes <n>', 'how many nodes', parseIntOption('--nodes'), DEVNET_DEFAULTS.nodes)
    .option('--dir <dir>', 'where node data and devnet.json go', DEVNET_DEFAULTS.dir)
    .option(
      '--base-port <port>',
      'node i uses base+2i (libp2p) and base+2i+1 (HTTP) (default: the last run’s in --dir, else 4700)',
      parseIntOption('--base-port'),
    )
}

export function register(program: Command): void {
  const command = program
    .command('devnet')
    .description('start a local network of nodes on loopback; Ctrl-C stops it')
  layoutOptions(command)
    .option('--covenant <N=FILE>', 'covenant.yaml for node N (repeatable)', collect, [])
    .option('--fault <N=KIND>', 'fault injection for node N (repeatable)', collect, [])
    .option('--replicas <k>', 'holders per block', parseIntOption('--replicas'))
    .option('--heartbeat-ms <ms>', 'peer hello period', parseIntOption('--heartbeat-ms'))
    .option('--repair-interval-ms <ms>', 'repair loop period', parseIntOption('--repair-interval-ms'))
    .option('--json', 'print the devnet description as one JSON line')
    .action(async (opts: DevnetCliOptions) => {
      await runCommand(opts.json === true, async () => {
        const devnet = await startDevnet({
          dir: opts.dir,
          nodes: opts.nodes,
          basePort: opts.basePort,
          covenants: parseIndexed(opts.covenant, '--covenant', opts.nodes),
          faults: parseIndexed(opts.fault, '--fault', opts.nodes),
          replicas: opts.replicas,
          heartbeatMs: opts.heartbeatMs,
          repairIntervalMs: opts.repairIntervalMs,
        })
        const nodes = devnet.nodes.map(({ index, peerId, multiaddrs, http, dataDir }) => ({
          index,
          peerId,
          multiaddrs,
          http,
          dataDir,
        }))
        if (opts.json === true)
          printJson({
            ok: true,
            dir: devnet.dir,
            basePort: devnet.basePort,
            dashboard: `${nodes[0].http}/`,
            nodes,
          })
        else {
          process.stdout.write(`${basePortLine(devnet)}\n`)
          for (const n of nodes)
            process.stdout.write(
              `node ${n.index}  ${n.peerId}\n  libp2p ${n.multiaddrs[0]}\n  http   ${n.http}\n`,
            )
          process.stdout.write(`dashboard: ${nodes[0].http}/\n`)
          process.stdout.write(`devnet ready: ${devnet.dir}/${DEVNET_FILE} (Ctrl-C to stop)\n`)
        }
        await stopOnSignal('devnet', () => devnet.stop())
      })
    })
}
