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
 * call stored them) are not sent again. Resolves with how many copies on holders were sent, and how
 * many were found held already.
 */
export async function storeOutput(
  storage: NodeComponents['storage'],
  blocks: OutputBlock[],
): Promise<{ sent: number; held: number }> {
  const copies = { sent: 0, held: 0 }
  const put = async (b: OutputBlock): Promise<void> => {
    const { holders, sent } = await storage.put(b.bytes, { codec: b.codec, unlessHeld: true })
    copies.sent += sent
    copies.held += holders.length - sent
  }
  const chunks = blocks.slice(0, -1)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < chunks.length) await put(chunks[next++])
  }
  await Promise.all(Array.from({ length: Math.min(OUTPUT_PUTS_IN_FLIGHT, chunks.length) }, worker))
  await put(blocks[blocks.length - 1])
  return copies
}
