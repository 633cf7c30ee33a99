/** `covenant node start`: runs one node until SIGINT/SIGTERM. */
import type { Command } from 'commander'
import { DEFAULT_COVENANT, loadCovenantFile } from '../../covenant/index.ts'
import { createNode } from '../../node/index.ts'
import { parseIntOption, printError } from '../output.ts'

interface StartOptions {
  config?: string
  data: string
  listen: string[]
  http: number
  httpHost: string
  bootstrap: string[]
  replicas?: number
  heartbeatMs?: number
  helloTimeoutMs?: number
  repairIntervalMs?: number
  logLevel?: string
  fault?: string
  devnet?: boolean
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

export function register(program: Command): void {
  const node = program.command('node').description('run a Covenant node')
  node
    .command('start')
    .description('start a node; prints one JSON ready line on stdout, logs to <data>/node.log')
    .option('--config <file>', 'covenant.yaml (default: store anything, execute nothing)')
    .requiredOption('--data <dir>', 'data directory (key, covenant, blocks, log)')
    .option('--listen <multiaddr>', 'libp2p listen address (repeatable)', collect, [])
    .option('--http <port>', 'HTTP API port (0 = any free port)', parseIntOption('--http'), 0)
    .option('--http-host <host>', 'HTTP API host', '127.0.0.1')
    .option('--bootstrap <multiaddr...>', 'peers to join through, each ending in /p2p/<id>', [])
    .option('--replicas <k>', 'holders per block', parseIntOption('--replicas'))
    .option('--heartbeat-ms <ms>', 'hello to every peer this often', parseIntOption('--heartbeat-ms'))
    .option(
      '--hello-timeout-ms <ms>',
      'a hello not answered in this time fails',
      parseIntOption('--hello-timeout-ms'),
    )
    .option('--repair-interval-ms <ms>', 'repair loop period', parseIntOption('--repair-interval-ms'))
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option(
      '--fault <kind>',
      'misbehave on purpose (wrong-result, bad-signature, crash, slow, silent); needs --devnet',
    )
    .option('--devnet', 'this node is part of a local devnet (set by `covenant devnet`; allows --fault)')
    .action(async (opts: StartOptions) => {
      try {
        const covenant = opts.config === undefined ? DEFAULT_COVENANT : await loadCovenantFile(opts.config)
        const running = await createNode({
          dataDir: opts.data,
          covenant,
          listen: opts.listen.length > 0 ? opts.listen : undefined,
          httpPort: opts.http,
          httpHost: opts.httpHost,
          bootstrap: opts.bootstrap,
          replicas: opts.replicas,
          heartbeatMs: opts.heartbeatMs,
          helloTimeoutMs: opts.helloTimeoutMs,
          repairIntervalMs: opts.repairIntervalMs,
          logLevel: opts.logLevel as 'info' | undefined,
          fault: opts.fault ?? process.env.COVENANT_FAULT,
          devnet: opts.devnet === true,
        })
        let stopping = false
        const shutdown = async (why: string): Promise<void> => {
          if (stopping) return
          stopping = true
          running.components.logger.info({ event: 'shutdown', why })
          await running.stop()
          process.exit(0)
        }
        process.on('SIGINT', () => void shutdown('SIGINT'))
        process.on('SIGTERM', () => void shutdown('SIGTERM'))
        if (process.env.COVENANT_EXIT_WITH_PARENT === '1') {
          process.stdin.on('end', () => void shutdown('parent-gone'))
          process.stdin.on('error', () => void shutdown('parent-gone'))
          process.stdin.resume()
        }
        process.stdout.write(
          `${JSON.stringify({ event: 'ready', peerId: running.peerId, multiaddrs: running.multiaddrs(), http: running.url })}\n`,
        )
        process.stderr.write(
          `node ${running.peerId} ready\n  libp2p ${running.multiaddrs().join(' ')}\n  http   ${running.url}\n`,
        )
      } catch (err) {
        printError(err)
        process.exit(1)
      }
    })
}
