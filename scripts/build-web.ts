/**
 * `npm run build:web`: builds the browser apps into their `dist/` folders, replacing what was
 * there: the dashboard (src/web/app → src/web/dist) and the guestbook's page
 * (examples/guestbook/page → examples/guestbook/dist). The results are committed;
 * `test/web/build.test.ts` fails when one is stale.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { buildGuestbook, GUESTBOOK_DIST } from '../examples/guestbook/build.ts'
import { buildDashboard, DASHBOARD_DIST } from '../src/web/index.ts'

for (const [dist, build] of [
  [DASHBOARD_DIST, buildDashboard],
  [GUESTBOOK_DIST, buildGuestbook],
] as const) {
  const files = await build()
  await mkdir(dist, { recursive: true })
  for (const name of await readdir(dist)) if (!files.has(name)) await rm(join(dist, name))
  let total = 0
  process.stdout.write(`${relative(process.cwd(), dist)}\n`)
  for (const [name, body] of files) {
    await writeFile(join(dist, name), body)
    total += body.length
    process.stdout.write(`  ${name.padEnd(24)} ${(body.length / 1024).toFixed(1).padStart(7)} KiB\n`)
  }
  process.stdout.write(`  ${'total'.padEnd(24)} ${(total / 1024).toFixed(1).padStart(7)} KiB\n`)
}
