/** Finds the nodes of a local devnet: `.covenant/devnet/devnet.json` from the cwd up to the repo root. */
import { CovenantError } from '../errors/index.ts'

/** The HTTP URLs of every node of the nearest running devnet, node 0 first. */
export async function findDevnetNodes(devnetDir?: string): Promise<string[]> {
  const { readFile, stat } = await import('node:fs/promises')
  const { dirname, join, resolve } = await import('node:path')
  // The devnet owns the file's schema; imported here, only when a devnet is looked for, because
  // the devnet part loads the node's code.
  const { DEVNET_DEFAULTS, DEVNET_FILE, devnetFileSchema } = await import('../devnet/index.ts')
  const candidates: string[] = []
  if (devnetDir !== undefined) candidates.push(join(resolve(devnetDir), DEVNET_FILE))
  else {
    let dir = process.cwd()
    while (true) {
      candidates.push(join(dir, DEVNET_DEFAULTS.dir, DEVNET_FILE))
      const isRepoRoot = await stat(join(dir, '.git')).then(
        () => true,
        () => false,
      )
      const parent = dirname(dir)
      if (isRepoRoot || parent === dir) break
      dir = parent
    }
  }
  for (const file of candidates) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch {
      continue
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      continue
    }
    const parsed = devnetFileSchema.safeParse(json)
    if (parsed.success) return parsed.data.nodes.map((n) => n.http)
  }
  throw new CovenantError('NODE_UNREACHABLE', 'no node given (--node URL) and no running devnet found')
}
