#!/usr/bin/env node
// The package's command. Covenant runs TypeScript through Node's type stripping, which needs
// Node >= 22.12; when an older system Node starts this file, hand over to the pinned Node 24 that
// the `node` dev dependency installed.
import { spawnSync } from 'node:child_process'
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
  const child = spawnSync(pinned, [new URL(import.meta.url).pathname, ...process.argv.slice(2)], {
    stdio: 'inherit',
  })
  process.exit(child.status ?? 1)
}
