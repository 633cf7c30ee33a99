/**
 * How the CLI speaks: values on stdout, errors on stderr with their code and what to do, and with
 * `--json` exactly one JSON object on stdout so scripts can rely on it.
 */
import { CovenantError } from '../errors/index.ts'

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

/** Prints a value for a person: strings as they are, everything else as indented JSON. */
export function printValue(value: unknown): void {
  process.stdout.write(typeof value === 'string' ? `${value}\n` : `${JSON.stringify(value, null, 2)}\n`)
}

/** Prints an error for a person, with its code and hint, and sets a failing exit code. */
export function printError(err: unknown): void {
  const e = CovenantError.from(err)
  process.stderr.write(`error ${e.code}: ${e.message}\n`)
  printDetails(e.details)
  if (e.hint !== undefined) process.stderr.write(`  hint: ${e.hint}\n`)
  process.exitCode = 1
}

/**
 * Runs a command body; a thrown error is printed (as JSON when `json` is set) instead of a stack
 * trace, and the process exits non-zero because the command itself could not run.
 */
export async function runCommand(json: boolean, body: () => Promise<void>): Promise<void> {
  try {
    await body()
  } catch (err) {
    if (json) {
      printJson({ ok: false, error: CovenantError.from(err).toJSON() })
      process.exitCode = 1
    } else {
      printError(err)
    }
  }
}

/** A word that is plainly text, not JSON gone wrong: no spaces, quotes, brackets, braces or commas. */
const BARE_WORD = /^[\p{L}_$][^\s"'`{}[\],]*$/u

/**
 * Parses a CLI argument as JSON. A bare word that is not JSON (`Ada`, `hello-world`) is taken as
 * the string it spells; anything else that does not parse (`'{"name": "Ada"'`, `hello world`) is
 * refused with INVALID_INPUT rather than sent as a string nobody meant.
 */
export function parseArg(text: string, position?: number): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    if (BARE_WORD.test(text)) return text
    const which = position === undefined ? 'an argument' : `argument ${position + 1}`
    throw new CovenantError(
      'INVALID_INPUT',
      `${which} is not JSON: ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)} (${(err as Error).message}); ` +
        `quote a string as JSON, e.g. '"hello world"'`,
    )
  }
}

/** Prints what an error's details say, where a person can act on it: which nodes refused and why. */
function printDetails(details: unknown): void {
  const d = (typeof details === 'object' && details !== null ? details : {}) as {
    excluded?: Array<{ peer?: unknown; reason?: unknown }>
    tried?: Array<{ peer?: unknown; outcome?: unknown; error?: { code?: unknown } }>
    divergence?: {
      groups?: Array<{ outputHash?: unknown; executors?: unknown[] }>
      differences?: Array<{ outputHash?: unknown; path?: unknown; expected?: unknown; actual?: unknown }>
    }
    payees?: unknown[]
  }
  if (Array.isArray(d.excluded) && d.excluded.length > 0) {
    process.stderr.write('  nodes left out:\n')
    for (const e of d.excluded.slice(0, 32))
      process.stderr.write(`    ${String(e.peer)}: ${String(e.reason)}\n`)
  }
  const groups = d.divergence?.groups
  if (Array.isArray(groups) && groups.length > 1) {
    // Where the outputs differ, for the function's author: the first JSON path, each side's value.
    const hash = (h: unknown) => String(h).slice(0, 12)
    process.stderr.write('  the executors signed different outputs:\n')
    for (const g of groups.slice(0, 8))
      process.stderr.write(
        `    output ${hash(g.outputHash)}…: ${(g.executors ?? []).map((e) => String(e).slice(-8)).join(' ')}\n`,
      )
    for (const x of (d.divergence?.differences ?? []).slice(0, 8))
      process.stderr.write(
        `    output ${hash(x.outputHash)}… differs first at ${String(x.path)}: ${String(x.actual)} where output ${hash(groups[0].outputHash)}… has ${String(x.expected)}\n`,
      )
  }
  if (Array.isArray(d.payees) && d.payees.length > 0)
    process.stderr.write(`  wanting payment first: ${d.payees.map(String).join(', ')}\n`)
  if (Array.isArray(d.tried) && d.tried.length > 0) {
    process.stderr.write('  executors asked:\n')
    for (const t of d.tried.slice(0, 32))
      process.stderr.write(
        `    ${String(t.peer)}: ${String(t.outcome)}${t.error?.code === undefined ? '' : ` (${String(t.error.code)})`}\n`,
      )
  }
}

export function parseIntOption(name: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new CovenantError('INVALID_INPUT', `${name} must be a whole number, got "${value}"`)
    }
    return n
  }
}
