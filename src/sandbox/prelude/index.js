// @ts-check
/**
 * The sandbox prelude: evaluated in every fresh QuickJS context before the function's bundle.
 * It makes the context deterministic, adds the standard globals npm packages expect, and hands
 * back the private driver the host uses to call an export.
 *
 * The parts run in the order imported here, and `scripts/build-prelude.ts` bundles them (with the
 * polyfills they import) into the one script the engine runs, `prelude.generated.js`. The
 * intrinsics come first: everything else captures the built-ins it relies on from them, before
 * any other code could replace one.
 */
import './intrinsics.js'
import './determinism.js'
import './console.js'
import './encoding.js'
import './base64.js'
import './url.js'
import './structured-clone.js'
import './store.js'

export { driver } from './driver.js'
