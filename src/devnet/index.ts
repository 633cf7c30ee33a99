/**
 * A local network of node processes on loopback, for development, tests, the demo and benches.
 * Each node is a process running the node daemon (`src/node`, the same entry point as `covenant
 * node start`) with its own data dir under `dir`; the devnet waits until every node sees every
 * other, then writes `<dir>/devnet.json`, which the CLI and the SDK read to find a node.
 *
 * @example
 * ```ts
 * const devnet = await startDevnet({ nodes: 5, dir: '.covenant/devnet' })
 * console.log(devnet.nodes.map((n) => n.http))
 * await devnet.kill(2, 'SIGKILL')
 * await devnet.restart(2)
 * await devnet.stop()
 * ```
 */
export type { Devnet, DevnetNode, DevnetOptions } from './devnet.ts'
export {
  DEFAULT_BASE_PORT,
  DEVNET_COVENANT,
  DEVNET_DEFAULTS,
  devnetOptionsSchema,
  startDevnet,
} from './devnet.ts'
export type { DevnetFile } from './devnet-file.ts'
export { DEVNET_FILE, devnetFileSchema } from './devnet-file.ts'
