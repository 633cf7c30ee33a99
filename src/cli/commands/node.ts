/** `covenant node start`: runs one node until SIGINT/SIGTERM (the node daemon, see src/node). */
import { type Command, Option } from 'commander'
import { type DaemonOptions, daemonOptionsSchema, runDaemon } from '../../node/index.ts'
import { parseIntOption, printError } from '../output.ts'
import { onParentGone } from '../signals.ts'

interface StartOptions {
  config?: string
  data: string
  listen: string[]
  http: number
  httpHost: string
  bootstrap: string[]
  replicas: number
  heartbeatMs: number
  helloTimeoutMs: number
  repairIntervalMs: number
  logLevel: string
  fault?: string
  devnet?: boolean
  app: string[]
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

// The defaults shown in --help are the node's own, read from its schema.
const defaults = daemonOptionsSchema.parse({ dataDir: '.' })

export function register(program: Command): void {
  const node = program.command('node').description('run a Covenant node')
  node
    .command('start')
    .description('start a node; prints one JSON ready line on stdout, logs to <data>/node.log')
    .option('--config <file>', 'covenant.yaml (default: store anything, execute nothing)')
    .requiredOption('--data <dir>', 'data directory (key, covenant, blocks, log)')
    .addOption(
      new Option('--listen <multiaddr>', 'libp2p listen address (repeatable)')
        .argParser(collect)
        .default([], defaults.listen.join(' ')),
    )
    .option('--http <port>', 'HTTP API port (0 = any free port)', parseIntOption('--http'), defaults.httpPort)
    .option('--http-host <host>', 'HTTP API host', defaults.httpHost)
    .option(
      '--bootstrap <multiaddr...>',
      'peers to join through, each ending in /p2p/<id>',
      defaults.bootstrap,
    )
    .option('--replicas <k>', 'holders per block', parseIntOption('--replicas'), defaults.replicas)
    .option(
      '--heartbeat-ms <ms>',
      'hello to every peer this often',
      parseIntOption('--heartbeat-ms'),
      defaults.heartbeatMs,
    )
    .option(
      '--hello-timeout-ms <ms>',
      'a hello not answered in this time fails',
      parseIntOption('--hello-timeout-ms'),
      defaults.helloTimeoutMs,
    )
    .option(
      '--repair-interval-ms <ms>',
      'repair loop period',
      parseIntOption('--repair-interval-ms'),
      defaults.repairIntervalMs,
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', defaults.logLevel)
    .option(
      '--fault <kind>',
      'misbehave on purpose (wrong-result, late-wrong-result, bad-signature, crash, slow, silent); needs --devnet',
    )
    .option('--devnet', 'this node is part of a local devnet (set by `covenant devnet`; allows --fault)')
    .option(
      '--app <name=dir>',
      'serve a browser app built ahead under /apps/<name>/ (repeatable), e.g. guestbook=examples/guestbook/dist',
      collect,
      [],
    )
    .action(async (opts: StartOptions) => {
      try {
        const apps = Object.fromEntries(
          opts.app.map((a) => {
            const eq = a.indexOf('=')
            return eq <= 0 ? [a, ''] : [a.slice(0, eq), a.slice(eq + 1)]
          }),
        )
        await runDaemon({
          dataDir: opts.data,
          config: opts.config,
          listen: opts.listen.length > 0 ? opts.listen : undefined,
          httpPort: opts.http,
          httpHost: opts.httpHost,
          bootstrap: opts.bootstrap,
          replicas: opts.replicas,
          heartbeatMs: opts.heartbeatMs,
          helloTimeoutMs: opts.helloTimeoutMs,
          repairIntervalMs: opts.repairIntervalMs,
          // checked by the daemon's schema (CONFIG_INVALID)
          logLevel: opts.logLevel as DaemonOptions['logLevel'],
          fault: opts.fault ?? process.env.COVENANT_FAULT,
          devnet: opts.devnet === true,
          // checked by the daemon's schema (CONFIG_INVALID)
          apps,
        })
        // the daemon stops on SIGTERM; under npm, also when npm is gone (see signals.ts)
        onParentGone(() => process.kill(process.pid, 'SIGTERM'))
      } catch (err) {
        printError(err)
        process.exit(1)
      }
    })
}
