/** The hello protocol's message, the same both ways. */
import { z } from 'zod'
import { KeyIdSchema } from '../keys/index.ts'

/** Peers exchange signed covenants, listen addresses and known peers. */
export const HELLO_PROTOCOL = '/covenant/hello/1.0.0'

const addrSchema = z.string().min(1).max(256)

/** What a hello carries, both ways. The covenant is checked by verifySignedCovenant after parsing. */
export const helloSchema = z.strictObject({
  covenant: z.unknown(),
  addrs: z.array(addrSchema).max(16),
  peers: z.array(z.strictObject({ id: KeyIdSchema, addrs: z.array(addrSchema).max(8) })).max(64),
})
export type Hello = z.infer<typeof helloSchema>

/** Largest hello in bytes (a covenant is a few hundred bytes; 64 peers × 8 addresses fit). */
export const MAX_HELLO_BYTES = 192 * 1024
