/** The export names of a bundled ES module, read from esbuild's metafile (Node only). */
import { CovenantError } from '../errors/index.ts'

export async function listExports(code: string): Promise<string[]> {
  const { build } = await import('esbuild')
  try {
    const result = await build({
      stdin: { contents: code, loader: 'js', sourcefile: 'bundle.js' },
      bundle: false,
      write: false,
      metafile: true,
      format: 'esm',
      logLevel: 'silent',
      outfile: 'out.js',
    })
    const outputs = Object.values(result.metafile.outputs)
    return [...new Set(outputs.flatMap((o) => o.exports))].sort()
  } catch (err) {
    throw new CovenantError(
      'INVALID_CODE',
      `the module does not parse: ${(err as Error).message.slice(0, 500)}`,
    )
  }
}
