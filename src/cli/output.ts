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

/** Parses a CLI argument as JSON, falling back to the raw string so `hello` works like `"hello"`. */
export function parseArg(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
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
