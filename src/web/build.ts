/**
 * Builds the dashboard with esbuild: `app/app.tsx` (Preact, and the SDK bundled for browsers)
 * into one script and one stylesheet whose names carry their hash, and `app/index.html` pointing
 * at them. In memory: `npm run build:web` writes the result to `dist/`, and a test compares it
 * with what is committed there. Other browser apps a node serves (examples/guestbook) are built
 * the same way ({@link buildWebApp}).
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Plugin } from 'esbuild'
import { DASHBOARD_PAGE } from './assets.ts'

const APP = fileURLToPath(new URL('./app/', import.meta.url))

/**
 * zod's namespace object carries every locale's error messages (`z.locales`), which no
 * tree-shaking can drop; nothing here uses any but English, so the others are left out (a third
 * of the bundle).
 */
const englishOnlyZod: Plugin = {
  name: 'english-only-zod',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer)
        ? { path: join(dirname(args.importer), '../locales/en.js'), namespace: 'zod-locales' }
        : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)}`,
      resolveDir: dirname(args.path),
    }))
  },
}

export interface WebAppBuild {
  /** the folder holding the entries and `index.html` */
  dir: string
  /** one script (`.ts`, `.tsx`) and one stylesheet, relative to `dir` */
  entries: [string, string]
  /** what the page puts before an asset's name: `/ui/` for the dashboard, `''` for a page that loads them beside itself */
  base: string
}

/**
 * Builds a browser app with esbuild: its script (with the SDK bundled for browsers) and stylesheet
 * into one file each whose name carries its hash, and its `index.html` with `{{script}}` and
 * `{{style}}` replaced by their paths. In memory: file name → contents.
 */
export async function buildWebApp(app: WebAppBuild): Promise<Map<string, Uint8Array>> {
  const { build } = await import('esbuild')
  const result = await build({
    entryPoints: app.entries.map((e) => join(app.dir, e)),
    bundle: true,
    write: false,
    outdir: 'dist',
    // named by their content below: esbuild's [hash] also covers the files' absolute paths, so a
    // build in another checkout would not match the committed one
    entryNames: '[name]',
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    // Node-only modules the SDK never calls in a browser (package.json `browser`, `sideEffects`)
    external: ['node:*'],
    minify: true,
    legalComments: 'eof',
    charset: 'utf8',
    logLevel: 'silent',
    plugins: [englishOnlyZod],
  })
  const files = new Map<string, Uint8Array>()
  for (const out of result.outputFiles) {
    const hash = createHash('sha256').update(out.contents).digest('hex').slice(0, 8).toUpperCase()
    files.set(basename(out.path).replace(/\.(js|css)$/, `-${hash}.$1`), out.contents)
  }
  const script = [...files.keys()].find((n) => n.endsWith('.js'))
  const style = [...files.keys()].find((n) => n.endsWith('.css'))
  if (script === undefined || style === undefined) throw new Error(`${app.dir} built no script or style`)
  const page = (await readFile(join(app.dir, DASHBOARD_PAGE), 'utf8'))
    .replace('{{script}}', `${app.base}${script}`)
    .replace('{{style}}', `${app.base}${style}`)
  files.set(DASHBOARD_PAGE, new TextEncoder().encode(page))
  return files
}

/** Builds the dashboard: file name → contents, exactly what `dist/` should hold. */
export function buildDashboard(): Promise<Map<string, Uint8Array>> {
  return buildWebApp({ dir: APP, entries: ['app.tsx', 'style.css'], base: '/ui/' })
}
