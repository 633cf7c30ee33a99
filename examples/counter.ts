/**
 * JSON processing: counts words and reports the most frequent ones.
 *
 *   npx covenant sandbox examples/counter.ts count '"the cat and the hat and the bat"' 2
 */
interface Ctx {
  log(...args: unknown[]): void
}

export function count(text: string, top: number, ctx: Ctx): { words: number; top: Array<[string, number]> } {
  const counts = new Map<string, number>()
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) {
    counts.set(word, (counts.get(word) ?? 0) + 1)
  }
  ctx.log(`${counts.size} distinct words`)
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  return { words: [...counts.values()].reduce((a, b) => a + b, 0), top: sorted.slice(0, top) }
}
