/**
 * `npm run build:web`: builds the dashboard (src/web/app) into src/web/dist, replacing what was
 * there. The result is committed; `test/web/build.test.ts` fails when it is stale.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildDashboard, DASHBOARD_DIST } from '../src/web/index.ts'

const files = await buildDashboard()
await mkdir(DASHBOARD_DIST, { recursive: true })
for (const name of await readdir(DASHBOARD_DIST)) if (!files.has(name)) await rm(join(DASHBOARD_DIST, name))
let total = 0
for (const [name, body] of files) {
  await writeFile(join(DASHBOARD_DIST, name), body)
  total += body.length
  process.stdout.write(`${name.padEnd(24)} ${(body.length / 1024).toFixed(1).padStart(7)} KiB\n`)
}
process.stdout.write(`${'total'.padEnd(24)} ${(total / 1024).toFixed(1).padStart(7)} KiB\n`)
