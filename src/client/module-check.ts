/** What the SDK does with a function's code before deploying it, in Node: bundle a file, inspect a module. */
import { CovenantError } from '../errors/index.ts'

/** Bundles a function file (a path, or a `file:` URL) and its npm imports into one ES module. */
export async function bundleFunctionFile(file: string | URL): Promise<string> {
  const { fileURLToPath } = await import('node:url')
  const { bundleFile } = await import('../bundle/index.ts')
  if (file instanceof URL && file.protocol !== 'file:')
    throw new CovenantError('INVALID_INPUT', `deploy takes a file path or a file: URL, not ${file.href}`)
  return (await bundleFile(file instanceof URL ? fileURLToPath(file) : file)).code
}

/**
 * Reads a module's exports here with esbuild and refuses one that imports another module
 * (INVALID_CODE, saying to deploy the file instead). A browser has no esbuild: its version
 * answers `undefined` and the node inspects the code.
 */
export async function inspectHere(code: string): Promise<{ exports: string[] } | undefined> {
  const { assertSelfContained, inspectModule } = await import('../bundle/index.ts')
  const inspection = await inspectModule(code)
  assertSelfContained(inspection)
  return inspection
}
