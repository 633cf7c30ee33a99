/**
 * Function bundles: a function file bundled with its npm imports into the one self-contained ES
 * module the sandbox runs, and a module inspected (exports, remaining imports) without resolving
 * anything on disk, so a node can inspect code from anyone. Node only (esbuild, loaded lazily on
 * first use); the CLI, the SDK in Node and the node's deploy routes use it.
 *
 * @example
 * ```ts
 * const { code } = await bundleFile('examples/markdown.ts')   // with `marked` bundled in
 * const { exports, imports } = await inspectModule(code)      // ['outline', 'render'], []
 * assertSelfContained({ imports })                             // INVALID_CODE if it imports anything
 * ```
 */
export type { ImportKind, ModuleImport, ModuleInspection } from './bundle.ts'
export { assertSelfContained, bundleFile, inspectModule } from './bundle.ts'
