/**
 * Renders Markdown to HTML with `marked`, an npm package bundled into the function by esbuild.
 *
 *   npx covenant sandbox examples/markdown.ts render '"# Title\n\nSome *emphasis* and a [link](https://example.com)."'
 */
import { marked } from 'marked'

export function render(markdown: string): string {
  return marked.parse(markdown, { async: false, gfm: true })
}

/** The headings of a document, as an outline. */
export function outline(markdown: string): Array<{ depth: number; text: string }> {
  return marked
    .lexer(markdown)
    .filter((t) => t.type === 'heading')
    .map((t) => ({ depth: (t as { depth: number }).depth, text: (t as { text: string }).text }))
}
