/**
 * The prelude as built: the committed script is what its sources build to today, every
 * hand-written part is type-checked and in the bundle, it leaves exactly the documented globals
 * behind, and SANDBOX_BUILD names it together with the engine.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import variant from '@jitl/quickjs-wasmfile-release-sync'
import { newQuickJSWASMModuleFromVariant, newVariant, type QuickJSSyncVariant } from 'quickjs-emscripten-core'
import { buildPrelude, PRELUDE_FILE } from '../../scripts/build-prelude.ts'
import { PRELUDE, QUICKJS_WASM, sandboxBuildOf } from '../../src/sandbox/build.ts'
import { createSandbox, SANDBOX_BUILD } from '../../src/sandbox/index.ts'

const exec = promisify(execFile)
const PRELUDE_DIR = new URL('../../src/sandbox/prelude/', import.meta.url)

describe('the prelude', () => {
  it('is committed as its sources and the installed polyfills build it (run npm run build:prelude)', async () => {
    const built = await buildPrelude()
    const committed = await readFile(PRELUDE_FILE, 'utf8')
    assert.ok(built === committed, 'src/sandbox/prelude/prelude.generated.js is stale')
    assert.ok(PRELUDE === committed, 'the engine runs the committed prelude')
  })

  it('type-checks and bundles every hand-written part', async () => {
    const index = await readFile(new URL('index.js', PRELUDE_DIR), 'utf8')
    const parts = (await readdir(PRELUDE_DIR)).filter(
      (f) => f.endsWith('.js') && f !== 'prelude.generated.js',
    )
    assert.ok(parts.length >= 8, parts.join(', '))
    for (const part of parts) {
      const text = await readFile(new URL(part, PRELUDE_DIR), 'utf8')
      assert.ok(text.startsWith('// @ts-check\n'), `${part} starts with // @ts-check`)
      if (part !== 'index.js' && part !== 'driver.js')
        assert.ok(index.includes(`import './${part}'`), `index.js imports ${part}`)
      assert.ok(PRELUDE.includes(`// src/sandbox/prelude/${part}\n`), `the bundle holds ${part}`)
    }
  })

  it('leaves exactly the documented globals beside QuickJS own', async () => {
    // QuickJS's globals, from a context that never ran the prelude
    const qjs = await newQuickJSWASMModuleFromVariant(
      newVariant(variant as unknown as QuickJSSyncVariant, {
        wasmModule: new WebAssembly.Module(QUICKJS_WASM),
      }),
    )
    const bare = qjs.newContext()
    const names = bare.unwrapResult(bare.evalCode('Object.getOwnPropertyNames(globalThis)'))
    const own = bare.dump(names) as string[]
    names.dispose()
    bare.dispose()
    const sandbox = createSandbox({ workers: 1 })
    after(() => sandbox.stop())
    const seen = await sandbox.run({
      code: 'export const f = () => Object.getOwnPropertyNames(globalThis)',
      exportName: 'f',
      args: [],
      seed: 's',
      now: 0,
      limits: { timeoutMs: 120_000 },
    })
    assert.ok(seen.ok, JSON.stringify(seen))
    const added = [
      'console',
      'crypto',
      'TextEncoder',
      'TextDecoder',
      'atob',
      'btoa',
      'URL',
      'URLSearchParams',
      'structuredClone',
      'queueMicrotask',
    ]
    const removed = ['WeakRef', 'FinalizationRegistry']
    assert.ok(
      removed.every((name) => own.includes(name)),
      'QuickJS has the GC observers the prelude removes',
    )
    const expected = [...own.filter((name) => !removed.includes(name)), ...added]
    assert.deepEqual([...(seen.value as string[])].sort(), expected.sort())
  })
})

describe('SANDBOX_BUILD', () => {
  it('is a SHA-256 that changes with any byte of the prelude or the WebAssembly', () => {
    assert.match(SANDBOX_BUILD, /^[0-9a-f]{64}$/)
    assert.equal(sandboxBuildOf({ wasm: QUICKJS_WASM, prelude: PRELUDE }), SANDBOX_BUILD)
    assert.notEqual(sandboxBuildOf({ wasm: QUICKJS_WASM, prelude: `${PRELUDE} ` }), SANDBOX_BUILD)
    const wasm = QUICKJS_WASM.slice()
    wasm[wasm.length - 1] ^= 1
    assert.notEqual(sandboxBuildOf({ wasm, prelude: PRELUDE }), SANDBOX_BUILD)
    // the boundary between the two is part of the name: moving a byte across it is another build
    const longer = new Uint8Array([...QUICKJS_WASM, 0x61])
    assert.notEqual(
      sandboxBuildOf({ wasm: longer, prelude: PRELUDE }),
      sandboxBuildOf({ wasm: QUICKJS_WASM, prelude: `a${PRELUDE}` }),
    )
  })

  it('is the same in another process started elsewhere', async () => {
    const index = new URL('../../src/sandbox/index.ts', import.meta.url).href
    const { stdout } = await exec(
      process.execPath,
      ['--input-type=module', '-e', `import { SANDBOX_BUILD } from '${index}'; console.log(SANDBOX_BUILD)`],
      { cwd: tmpdir(), timeout: 120_000 },
    )
    assert.equal(stdout.trim(), SANDBOX_BUILD)
  })
})
