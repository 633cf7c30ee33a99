/**
 * Function bundles with esbuild: one file and its npm imports bundled into ONE ES module, and a
 * module inspected (its exports, what it still imports) without resolving anything on disk.
 */
import { stat } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { resolve } from 'node:path'
import type { BuildFailure, Message, Plugin } from 'esbuild'
import { CovenantError } from '../errors/index.ts'

const NODE_BUILTINS = [...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'node:*']

/** How a module reaches another: esbuild's import kinds, as a module's source can spell them. */
export type ImportKind = 'import-statement' | 'dynamic-import' | 'require-call' | 'require-resolve'

export interface ModuleImport {
  /** the specifier as written: `'yaml'`, `'./util.js'`, `'node:fs'` */
  path: string
  kind: ImportKind
}

export interface ModuleInspection {
  /** the module as JavaScript: the source itself, or with its types stripped when it was TypeScript */
  code: string
  /** its export names, sorted */
  exports: string[]
  /** every other module it names; a function bundle must name none it loads at start */
  imports: ModuleImport[]
}

/** The first esbuild error as `text (file:line:col)`. */
function describeFailure(err: unknown): string {
  const first: Message | undefined = (err as Partial<BuildFailure>).errors?.[0]
  if (first === undefined) return (err as Error).message
  const at = first.location
  return at ? `${first.text} (${at.file}:${at.line}:${at.column + 1})` : first.text
}

/**
 * Bundles a function file and its npm imports into one ES module for the sandbox. Node built-ins
 * stay as imports (marked external) so that packages which only mention them optionally still
 * bundle; a bundle that loads one at start is refused when deployed (see {@link assertSelfContained}).
 *
 * @example
 * ```ts
 * const { code, bytes } = await bundleFile('examples/hello.ts')
 * ```
 */
export async function bundleFile(path: string): Promise<{ code: string; bytes: number }> {
  const file = resolve(path)
  const info = await stat(file).catch(() => undefined)
  if (info === undefined || !info.isFile()) throw new CovenantError('NOT_FOUND', `no such file: ${path}`)
  const { build } = await import('esbuild')
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
    throw new CovenantError('INVALID_CODE', `cannot bundle ${path}: ${describeFailure(err)}`, { cause: err })
  }
  const out = result.outputFiles?.[0]
  if (out === undefined)
    throw new CovenantError('INVALID_CODE', `cannot bundle ${path}: esbuild produced no output`)
  return { code: out.text, bytes: out.contents.byteLength }
}

/** Records every specifier a module names and leaves it unresolved: nothing is read from disk. */
function recordImports(into: ModuleImport[]): Plugin {
  return {
    name: 'record-imports',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind !== 'entry-point') into.push({ path: args.path, kind: args.kind as ImportKind })
        return { path: args.path, external: true }
      })
    },
  }
}

/**
 * Reads a module's exports and imports with esbuild, resolving nothing (safe on a node, for code
 * from anyone). `typescript: true` strips types first; the stripped module is returned as `code`.
 * Throws INVALID_CODE, naming the line, when the module does not parse.
 *
 * @example
 * ```ts
 * await inspectModule('import yaml from "yaml"; export const f = () => 1')
 * // { code: '…', exports: ['f'], imports: [{ path: 'yaml', kind: 'import-statement' }] }
 * ```
 */
export async function inspectModule(
  source: string,
  options: { typescript?: boolean } = {},
): Promise<ModuleInspection> {
  const { build, transform } = await import('esbuild')
  const typescript = options.typescript === true
  let code = source
  const imports: ModuleImport[] = []
  try {
    if (typescript) code = (await transform(source, { loader: 'ts', format: 'esm', logLevel: 'silent' })).code
    const result = await build({
      stdin: { contents: code, loader: 'js', sourcefile: 'module.js' },
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'neutral',
      logLevel: 'silent',
      outfile: 'out.js',
      plugins: [recordImports(imports)],
    })
    const exports = [...new Set(Object.values(result.metafile.outputs).flatMap((o) => o.exports))].sort()
    return { code, exports, imports }
  } catch (err) {
    const hint = typescript
      ? ''
      : '; if it is TypeScript, or imports npm packages, deploy the file instead, which bundles it ' +
        "(`covenant deploy fn.ts`, or `deploy({ file: 'fn.ts' })` in Node)"
    throw new CovenantError('INVALID_CODE', `the module does not parse: ${describeFailure(err)}${hint}`, {
      cause: err,
    })
  }
}

/**
 * Refuses a module that imports another module when it loads (`import … from 'x'`, `export … from
 * 'x'`): the sandbox runs one self-contained module and has nothing to resolve `x` with, so such a
 * function would deploy fine and fail on every call. A `require` or `import()` in a branch that
 * may never run is left alone, as bundled packages often carry them.
 */
export function assertSelfContained(inspection: Pick<ModuleInspection, 'imports'>): void {
  const loaded = [
    ...new Set(inspection.imports.filter((i) => i.kind === 'import-statement').map((i) => i.path)),
  ]
  if (loaded.length === 0) return
  const names = loaded.map((p) => JSON.stringify(p)).join(', ')
  throw new CovenantError(
    'INVALID_CODE',
    `the module imports ${names}, which ${loaded.length === 1 ? 'is' : 'are'} not bundled in: a function is ` +
      'one self-contained ES module. Deploy the file instead, which bundles its npm imports ' +
      "(`covenant deploy fn.ts`, or `deploy({ file: 'fn.ts' })` in Node)",
    { details: { imports: loaded } },
  )
}
