/**
 * `<dir>/devnet.json`: how a running devnet describes itself, written once every node is ready and
 * removed on stop. The CLI and the SDK find a local node through it.
 */
import { z } from 'zod'

export const DEVNET_FILE = 'devnet.json'

export const devnetFileSchema = z.strictObject({
  nodes: z
    .array(
      z.strictObject({
        index: z.number().int().min(0),
        peerId: z.string(),
        multiaddrs: z.array(z.string()),
        http: z.url(),
        dataDir: z.string(),
      }),
    )
    .min(1),
})
export type DevnetFile = z.infer<typeof devnetFileSchema>
