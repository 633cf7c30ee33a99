/**
 * The dashboard as files: built ahead by `npm run build:web` into `dist/` (committed), read here
 * once and served by the node as they are. Nothing is built or fetched at run time.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where the built dashboard lives. */
export const DASHBOARD_DIST = fileURLToPath(new URL('./dist/', import.meta.url))

/** The page every dashboard URL loads; the rest are its assets. */
export const DASHBOARD_PAGE = 'index.html'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
}

export interface DashboardAsset {
  /** its content type, for the header */
  type: string
  body: Buffer
  /** a strong ETag: the hash of its bytes */
  etag: string
  /**
   * its name carries the hash of its content (`app-XXXXXXXX.js`), so it may be cached for good;
   * the page itself is not, and is revalidated with its ETag
   */
  immutable: boolean
}

/** Reads a built web app, the dashboard unless `dir` names another: file name → asset. */
export function loadDashboard(dir: string = DASHBOARD_DIST): Map<string, DashboardAsset> {
  const assets = new Map<string, DashboardAsset>()
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)]
    if (type === undefined) continue
    const body = readFileSync(join(dir, name))
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
    assets.set(name, { type, body, etag, immutable: name !== DASHBOARD_PAGE })
  }
  return assets
}
