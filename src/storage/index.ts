/**
 * Block storage across the network: a block lives on the `replicas` (k) live nodes closest to its
 * CID whose covenant accepts it, is fetched from any node (predicted holders first, then DHT
 * providers, every copy hash-checked, within the node's lookup bounds), and is repaired back to k
 * holders when one dies or its covenant changes. Nodes move blocks over `/covenant/block/1.0.0`;
 * a node takes a block only if it is one of its holders in its own view (or within the sender's
 * small quota), and a block's tags travel only as the signed manifests that give them.
 *
 * @example
 * ```ts
 * const storage = createStorage({ net, store, peers, covenant, logger, registry }, { replicas: 3 })
 * await storage.start()
 * const { cid, holders } = await storage.put(bytes)
 * await storage.put(code, { manifests: [manifestBytes] })        // its tags: the manifest's
 * const { bytes: back, source } = await storage.get(parseCid(cid))   // 'local' | 'peer' | 'dht'
 * await storage.stop()
 * ```
 */
export type { BlockRequest } from './block-protocol.ts'
export {
  BLOCK_PROTOCOL,
  blockRequestSchema,
  getReplySchema,
  hasReplySchema,
  MAX_BLOCK_MESSAGE_BYTES,
  MAX_HAS_CIDS,
  putReplySchema,
} from './block-protocol.ts'
export type {
  GetResult,
  HeldWhy,
  PutOptions,
  PutResult,
  RepairResult,
  Storage,
  StorageComponents,
  StorageDescription,
  StorageOptions,
} from './storage.ts'
export { createStorage, storageOptionsSchema } from './storage.ts'
