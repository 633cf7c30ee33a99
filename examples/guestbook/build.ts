/**
 * The guestbook's page, built like the dashboard (`buildWebApp`): `page/app.ts` with the SDK into
 * one script, `page/style.css`, and `page/index.html` loading them beside itself. `npm run
 * build:web` writes it to `dist/` (committed), which a node serves under `/apps/guestbook/` when
 * told to (`covenant demo` does; node option `apps`). Nothing is built or fetched at run time.
 */
import { fileURLToPath } from 'node:url'
import { buildWebApp } from '../../src/web/index.ts'

export { GUESTBOOK_DIST } from './setup.ts'

/** Builds the page: file name → contents, exactly what `dist/` should hold. */
export function buildGuestbook(): Promise<Map<string, Uint8Array>> {
  return buildWebApp({
    dir: fileURLToPath(new URL('./page/', import.meta.url)),
    entries: ['app.ts', 'style.css'],
    base: '',
  })
}
