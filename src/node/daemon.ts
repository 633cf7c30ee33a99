/**
 * The node as a process: runs one node until SIGINT or SIGTERM, announcing itself with one JSON
 * ready line on stdout. `covenant node start` calls {@link runDaemon}; a devnet starts this file
 * as a process ({@link DAEMON_ENTRY}) with the options as JSON in its first argument, so every
 * node, devnet or not, starts the same way.
 */
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { DEFAULT_COVENANT, loadCovenantFile } from '../covenant/index.ts'
import { CovenantError, parseOrThrow } from '../errors/index.ts'
import { type CovenantNode, createNode, nodeOptionsSchema } from './node.ts'

/** The path of this module, which runs a daemon when started as a process. */
export const DAEMON_ENTRY = fileURLToPath(import.meta.url)

export const daemonOptionsSchema = nodeOptionsSchema.extend({
  /** the covenant.yaml to run under @default the default covenant (store, never execute) */
  config: z.string().min(1).optional(),
  /** stop when stdin closes: a devnet's node goes away with its parent @default false */
  exitWithParent: z.boolean().default(false),
})
export type DaemonOptions = z.input<typeof daemonOptionsSchema>

/** What a daemon prints on stdout, as one JSON line, once it serves. */
export const readyLineSchema = z.object({
  event: z.literal('ready'),
  peerId: z.string(),
  multiaddrs: z.array(z.string()),
  http: z.string(),
})
export type ReadyLine = z.infer<typeof readyLineSchema>

/**
 * Starts a node and keeps it running: the first SIGINT or SIGTERM (or, with `exitWithParent`, the
 * end of stdin) stops it and exits the process. Resolves with the node once it is ready; throws
 * (and starts nothing) when the options or the covenant are wrong.
 */
export async function runDaemon(options: DaemonOptions): Promise<CovenantNode> {
  const { config, exitWithParent, ...nodeOptions } = parseOrThrow(
    daemonOptionsSchema,
    options,
    'CONFIG_INVALID',
    'node options',
  )
  const covenant = config === undefined ? DEFAULT_COVENANT : await loadCovenantFile(config)
  const node = await createNode({ ...nodeOptions, covenant })
  let stopping = false
  const shutdown = async (why: string): Promise<void> => {
    if (stopping) return
    stopping = true
    node.components.logger.info({ event: 'shutdown', why })
    await node.stop()
    process.exit(0)
  }
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  if (exitWithParent) {
    process.stdin.on('end', () => void shutdown('parent-gone'))
    process.stdin.on('error', () => void shutdown('parent-gone'))
    process.stdin.resume()
  }
  const ready: ReadyLine = {
    event: 'ready',
    peerId: node.peerId,
    multiaddrs: node.multiaddrs(),
    http: node.url,
  }
  process.stdout.write(`${JSON.stringify(ready)}\n`)
  process.stderr.write(
    `node ${node.peerId} ready\n  libp2p ${node.multiaddrs().join(' ')}\n  http   ${node.url}\n  dashboard ${node.url}/\n`,
  )
  return node
}

if (import.meta.main) {
  try {
    await runDaemon(JSON.parse(process.argv[2] ?? '{}'))
  } catch (err) {
    const e = CovenantError.from(err)
    process.stderr.write(`error ${e.code}: ${e.message}\n  hint: ${e.hint}\n`)
    process.exit(1)
  }
}
