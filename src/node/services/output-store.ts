/**
 * Where an executor puts an output too long for a reply (exec's stored-output.ts): the content
 * network, through the node's storage, like any block.
 */
import type { OutputBlock } from '../../exec/index.ts'
import type { NodeComponents } from '../service.ts'

/** Chunks stored at a time when an executor stores a large output. */
const OUTPUT_PUTS_IN_FLIGHT = 4

/**
 * Puts a stored output's blocks on their holders: the chunks, then the root, so a root that is
 * held names chunks that are. Blocks their holders have already (another executor of the same
 * call stored them) are not sent again.
 */
export async function storeOutput(storage: NodeComponents['storage'], blocks: OutputBlock[]): Promise<void> {
  const chunks = blocks.slice(0, -1)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < chunks.length) {
      const b = chunks[next++]
      await storage.put(b.bytes, { codec: b.codec, unlessHeld: true })
    }
  }
  await Promise.all(Array.from({ length: Math.min(OUTPUT_PUTS_IN_FLIGHT, chunks.length) }, worker))
  const root = blocks[blocks.length - 1]
  await storage.put(root.bytes, { codec: root.codec, unlessHeld: true })
}
