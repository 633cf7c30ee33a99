/**
 * Bundles a function file and its npm imports into ONE ES module for the sandbox, with esbuild.
 * Node built-ins stay as imports (marked external) so that packages which only mention them
 * optionally still bundle; a bundle that really imports one fails when loaded, with INVALID_CODE
 * and a message naming the module. `covenant sandbox` and `covenant deploy` both use this.
 *
 * @example
 * ```ts
 * const { code, bytes } = await bundleFile('examples/hello.ts')
 * ```
 */
import { stat } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { resolve } from 'node:path'
import { build } from 'esbuild'
import { CovenantError } from '../errors/index.ts'

const NODE_BUILTINS = [...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'node:*']

export async function bundleFile(path: string): Promise<{ code: string; bytes: number }> {
  const file = resolve(path)
  const info = await stat(file).catch(() => undefined)
  if (info === undefined || !info.isFile()) throw new CovenantError('NOT_FOUND', `no such file: ${path}`)
  let result: Awaited<ReturnType<typeof build>>
  try {
    result = await build({
      entryPoints: [file],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      target: 'es2023',
      mainFields: ['browser', 'module', 'main'],
      conditions: ['browser', 'import', 'default'],
      external: NODE_BUILTINS,
      define: { 'process.env.NODE_ENV': '"production"' },
      charset: 'utf8',
      legalComments: 'none',
      logLevel: 'silent',
    })
  } catch (err) {
    const errors = (
      err as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }
    ).errors
    const first = errors?.[0]
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : ''
    const message = first !== undefined ? `${first.text}${where}` : (err as Error).message
    throw new CovenantError('INVALID_CODE', `cannot bundle ${path}: ${message}`, { cause: err })
  }
  const out = result.outputFiles?.[0]
  if (out === undefined)
    throw new CovenantError('INVALID_CODE', `cannot bundle ${path}: esbuild produced no output`)
  return { code: out.text, bytes: out.contents.byteLength }
}
