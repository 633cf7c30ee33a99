/**
 * `covenant sandbox <file> <export> [arg …]`: bundles a function and runs one export locally, in
 * the same sandbox executors use, so a function can be tried before it is deployed. `--store`
 * gives `ctx.store.get` values to read; what the call would write and enqueue is shown, not kept.
 */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { bundleFile } from '../../bundle/index.ts'
import { CovenantError, parseOrThrow } from '../../errors/index.ts'
import {
  createSandbox,
  LocalStoreSchema,
  localReader,
  type SandboxEffects,
  type SandboxLimits,
  type StoreReader,
} from '../../sandbox/index.ts'
import { parseArg, parseIntOption, printJson, printValue, runCommand } from '../output.ts'

interface SandboxOptions {
  fuel?: number
  memory?: number
  timeout?: number
  seed: string
  store?: string
  json?: boolean
}

/** A reader over the values in a `--store` file. */
async function storeFile(path: string): Promise<StoreReader> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new CovenantError('NOT_FOUND', `--store: cannot read ${path}`, { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new CovenantError('INVALID_INPUT', `--store ${path}: not JSON: ${(err as Error).message}`)
  }
  return localReader(parseOrThrow(LocalStoreSchema, json, 'INVALID_INPUT', `--store ${path}`))
}

/** What the call read, would write and would enqueue, one line each, for a person. */
function printEffects(effects: SandboxEffects): void {
  const line = (text: string) => process.stderr.write(`${text}\n`)
  for (const r of effects.reads) line(`read: ${r.ns} ${JSON.stringify(r.key)} at version ${r.version}`)
  for (const w of effects.writes)
    line(
      w.value === null
        ? `delete: ${w.ns} ${JSON.stringify(w.key)}`
        : `write: ${w.ns} ${JSON.stringify(w.key)} = ${JSON.stringify(w.value)}`,
    )
  for (const j of effects.jobs)
    line(`job: ${j.fn} ${j.export} ${JSON.stringify(j.args)} ${JSON.stringify(j.options)}`)
}

export function register(program: Command): void {
  program
    .command('sandbox')
    .description('bundle a function file and run one of its exports locally, in the sandbox')
    .argument('<file>', 'the function file (.ts or .js); its npm imports are bundled in')
    .argument('<export>', 'the export to call')
    .argument('[args...]', 'arguments, each parsed as JSON (a bare word is a string)')
    .option('--fuel <ticks>', 'fuel limit in interrupt ticks', parseIntOption('--fuel'))
    .option('--memory <MiB>', 'memory limit in MiB', parseIntOption('--memory'))
    .option('--timeout <ms>', 'wall-clock limit in milliseconds', parseIntOption('--timeout'))
    .option('--seed <seed>', 'seed for Math.random and ctx.random (the request id on the network)', 'local')
    .option(
      '--store <file>',
      'values for ctx.store.get: a JSON file { "<namespace id>": { "<key>": value } } (writes are shown, not kept)',
    )
    .option('--json', 'print exactly one JSON object: the result, with its fuel, logs, effects and time')
    .addHelpText(
      'after',
      '\nExamples:\n  covenant sandbox examples/hello.ts greet \'"Ada"\'\n  covenant sandbox examples/counter.ts count \'["a","b","a"]\' --json\n  covenant sandbox app.ts addEntry Ada --store values.json\n',
    )
    .action(async (file: string, exportName: string, rawArgs: string[], opts: SandboxOptions) => {
      await runCommand(opts.json === true, async () => {
        const limits: Partial<SandboxLimits> = {}
        if (opts.fuel !== undefined) limits.fuel = opts.fuel
        if (opts.memory !== undefined) limits.memoryBytes = opts.memory * 1024 * 1024
        if (opts.timeout !== undefined) limits.timeoutMs = opts.timeout
        const read = opts.store === undefined ? undefined : await storeFile(opts.store)
        const { code } = await bundleFile(file)
        const sandbox = createSandbox({ workers: 1 })
        try {
          const started = performance.now()
          const result = await sandbox.run({
            code,
            exportName,
            args: rawArgs.map(parseArg),
            seed: opts.seed,
            now: Date.now(),
            request: { id: opts.seed, caller: 'local' },
            limits,
            read,
          })
          const ms = Math.round((performance.now() - started) * 100) / 100
          // limits the user typed wrongly are the command's fault, not the function's
          if (!result.ok && result.error.code === 'INVALID_INPUT') {
            throw new CovenantError('INVALID_INPUT', result.error.message)
          }
          if (opts.json === true) {
            printJson({ ...result, ms })
            return
          }
          for (const line of result.logs) process.stderr.write(`log: ${line}\n`)
          if (result.ok) {
            if (result.effects !== undefined) printEffects(result.effects)
            printValue(result.value)
          } else {
            const e = new CovenantError(result.error.code)
            process.stderr.write(`error ${result.error.code}: ${result.error.message}\n`)
            if (e.hint !== undefined) process.stderr.write(`  hint: ${e.hint}\n`)
            process.exitCode = 1
          }
        } finally {
          await sandbox.stop()
        }
      })
    })
}
