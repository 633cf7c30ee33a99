/**
 * The dashboard every node serves on its HTTP port: the network (peers, covenants, liveness),
 * the calls it serves (live, with their receipts), what it stores and why, a playground to deploy
 * and call a function, and a page that re-checks a certificate in the visitor's browser.
 *
 * Two halves. `app/` is the browser app (Preact), which talks to the node only through its HTTP
 * API, with the SDK (`src/client`), like any other caller; `npm run build:web` bundles it ahead
 * into `dist/`, which is committed, so a node builds and fetches nothing at run time. This face
 * is the Node half: the built files ({@link loadDashboard}) that the node's dashboard service
 * serves, and the build itself ({@link buildDashboard}).
 *
 * A part adds a page by adding a module to `app/pages/` and a line to `app/pages.ts`
 * (docs/architecture.md).
 *
 * @example
 * ```ts
 * const assets = loadDashboard()                 // 'index.html', 'app-XXXXXXXX.js', …
 * assets.get('index.html')?.type                 // 'text/html; charset=utf-8'
 * ```
 */
export type { DashboardAsset } from './assets.ts'
export { DASHBOARD_DIST, DASHBOARD_PAGE, loadDashboard } from './assets.ts'
export type { WebAppBuild } from './build.ts'
export { buildDashboard, buildWebApp } from './build.ts'
