/**
 * Functions that misbehave on purpose, to see the limits hold: locally, or through the network,
 * where every executor stops at the same fuel and the quorum agrees on the error.
 *
 *   npx covenant sandbox examples/runaway.ts spin --json           # FUEL_EXHAUSTED
 *   npx covenant sandbox examples/runaway.ts hoard --json          # MEMORY_LIMIT
 *   npx covenant sandbox examples/runaway.ts dive --json           # STACK_OVERFLOW
 */

/** Loops forever; only fuel stops it. */
export function spin(): never {
  for (;;) {}
}

/** Keeps every array it makes; only the memory limit stops it. */
export function hoard(): number {
  const kept: number[][] = []
  for (;;) kept.push(new Array(1 << 16).fill(kept.length))
}

/** Recurses without end; only the stack limit stops it. */
export function dive(depth = 0): number {
  return dive(depth + 1) + 1
}
