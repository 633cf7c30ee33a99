/** Finds the first node of a local devnet: `.covenant/devnet/devnet.json` from the cwd up to the repo root. */
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'

// The part of devnet.json (written by `covenant devnet`) a client needs; read as a file format,
// not through the node's code.
const devnetJsonSchema = z.object({ nodes: z.array(z.object({ http: z.url() })).min(1) })

export async function findDevnetNode(devnetDir?: string): Promise<string> {
  const { readFile, stat } = await import('node:fs/promises')
  const { dirname, join, resolve } = await import('node:path')
  const candidates: string[] = []
  if (devnetDir !== undefined) candidates.push(join(resolve(devnetDir), 'devnet.json'))
  else {
    let dir = process.cwd()
    while (true) {
      candidates.push(join(dir, '.covenant', 'devnet', 'devnet.json'))
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
    const parsed = devnetJsonSchema.safeParse(json)
    if (parsed.success) return parsed.data.nodes[0].http
  }
  throw new CovenantError('NODE_UNREACHABLE', 'no node given (--node URL) and no running devnet found')
}
