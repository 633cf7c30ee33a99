#!/usr/bin/env node
// The package's command. Covenant runs TypeScript through Node's type stripping, which needs
// Node >= 22.12; when an older system Node starts this file, hand over to the pinned Node 24 that
// the `node` dev dependency installed, and pass on the signals that stop it.
import { spawn } from 'node:child_process'
import module, { createRequire } from 'node:module'

const [major, minor] = process.versions.node.split('.').map(Number)
if (major > 22 || (major === 22 && minor >= 12)) {
  // V8's compiled code for the CLI's modules, kept on disk between runs: most of a command's
  // start-up is compiling the same modules again.
  module.enableCompileCache?.()
  await import('../src/cli/main.ts')
} else {
  const require = createRequire(import.meta.url)
  let pinned
  try {
    pinned = require.resolve('node/bin/node')
  } catch {
    console.error(`covenant needs Node >= 22.12 (this is ${process.version}); run \`npm install\` first`)
    process.exit(1)
  }
  const child = spawn(pinned, [new URL(import.meta.url).pathname, ...process.argv.slice(2)], {
    stdio: 'inherit',
  })
  // A service manager stops a program with SIGTERM to this process alone: pass it on, and the
  // others, then leave as the child did.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  // Under npm the parent may die of the signal without passing it on (see src/cli/signals.ts).
  if (process.env.npm_lifecycle_event !== undefined) {
    const parent = process.ppid
    setInterval(() => {
      if (process.ppid !== parent) child.kill('SIGTERM')
    }, 250).unref()
  }
  child.on('exit', (code, signal) => {
    if (signal !== null) {
      process.removeAllListeners(signal)
      process.kill(process.pid, signal)
    } else process.exit(code ?? 1)
  })
}
