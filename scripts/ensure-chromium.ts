/**
 * Makes sure `/usr/bin/chromium` exists for the browser tests (`npm run pretest`, run by
 * `npm test`). Playwright's own browser download cannot be used here: only the npm registry and
 * Debian's packages are reachable, so the browser comes from apt.
 *
 * Does nothing if Chromium is there; installs it with apt when running as root on Debian; else
 * exits 1 telling the developer what to install.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'

const CHROMIUM_PATH = '/usr/bin/chromium'

function isDebian(): boolean {
  try {
    const release = readFileSync('/etc/os-release', 'utf8')
    return /^(ID|ID_LIKE)=.*\bdebian\b/m.test(release)
  } catch {
    return false
  }
}

function run(command: string, args: string[]): void {
  // apt is chatty; its output is shown only when it fails
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  })
  if (result.status !== 0) {
    process.stderr.write(result.stdout ?? '')
    process.stderr.write(result.stderr ?? '')
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal})`)
  }
}

function main(): number {
  if (existsSync(CHROMIUM_PATH)) return 0
  const root = process.getuid?.() === 0
  if (!root || !isDebian()) {
    console.error(
      `ensure-chromium: ${CHROMIUM_PATH} not found. The browser tests need Chromium there: ` +
        'on Debian/Ubuntu run `sudo apt-get install chromium`, elsewhere install Chromium and link ' +
        `its binary to ${CHROMIUM_PATH}.`,
    )
    return 1
  }
  console.log('ensure-chromium: installing chromium with apt-get (once)…')
  try {
    run('apt-get', ['update', '-qq'])
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'])
  } catch (err) {
    console.error(`ensure-chromium: ${(err as Error).message}`)
    return 1
  }
  if (!existsSync(CHROMIUM_PATH)) {
    console.error(`ensure-chromium: apt-get installed chromium but ${CHROMIUM_PATH} is still missing`)
    return 1
  }
  return 0
}

process.exitCode = main()
