/**
 * What exactly runs a call, and its name. Two executors give byte-identical results for the same
 * call only if they run the same prelude on the same QuickJS build with the same engine rules;
 * SANDBOX_BUILD names that combination, and every receipt carries it, so that executors on
 * different builds are told apart instead of reported as liars.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/**
 * The engine's rules that decide outcomes beyond the prelude and QuickJS itself: how fuel is
 * counted, how each limit is enforced and reported, how a result is read back, and what
 * ctx.store and ctx.enqueue accept, refuse and record. Bump it with any change to engine.ts,
 * pool.ts or effects.ts that can change a result for the same call (and the same read answers).
 */
export const ENGINE_VERSION = 2

const require = createRequire(import.meta.url)
const VARIANT = '@jitl/quickjs-wasmfile-release-sync'

/** The script every fresh QuickJS context evaluates first (built by `npm run build:prelude`). */
export const PRELUDE: string = readFileSync(
  new URL('./prelude/prelude.generated.js', import.meta.url),
  'utf8',
)

/** The QuickJS WebAssembly the sandbox compiles, read once per process. */
export const QUICKJS_WASM: Uint8Array<ArrayBuffer> = readFileSync(require.resolve(`${VARIANT}/wasm`))

function packageVersion(name: string): string {
  // quickjs-emscripten-core does not export its package.json; its entry point sits in dist/
  const file =
    name === VARIANT
      ? require.resolve(`${name}/package.json`)
      : join(dirname(require.resolve(name)), '..', 'package.json')
  const { version } = JSON.parse(readFileSync(file, 'utf8')) as { version: string }
  return `${name}@${version}`
}

/**
 * The name of a sandbox build: lower-case hex SHA-256 over the engine version, the QuickJS
 * packages' versions (the JavaScript glue that drives the WebAssembly), the WebAssembly bytes and
 * the prelude.
 */
export function sandboxBuildOf(parts: { wasm: Uint8Array; prelude: string }): string {
  const prelude = Buffer.from(parts.prelude, 'utf8')
  // the lengths keep the two byte strings from running into each other
  const header = [
    'covenant sandbox',
    `engine ${ENGINE_VERSION}`,
    packageVersion(VARIANT),
    packageVersion('quickjs-emscripten-core'),
    `wasm ${parts.wasm.length} bytes, prelude ${prelude.length} bytes`,
  ]
  return createHash('sha256')
    .update(`${header.join('\n')}\n`)
    .update(parts.wasm)
    .update(prelude)
    .digest('hex')
}

/** The build this process runs: {@link sandboxBuildOf} its WebAssembly and its prelude. */
export const SANDBOX_BUILD: string = sandboxBuildOf({ wasm: QUICKJS_WASM, prelude: PRELUDE })
