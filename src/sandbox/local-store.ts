/**
 * A datastore in memory, for running a function locally (`covenant sandbox --store values.json`,
 * tests): namespace id → key → value. Every key it holds is at version 1 and every other key of a
 * namespace it holds at version 0 (never written); a namespace it does not hold is
 * NAMESPACE_NOT_FOUND, as on the network.
 */
import { z } from 'zod'
import { isJsonValue, type JsonValue } from '../encoding/index.ts'
import { isCidText } from './effects.ts'
import type { StoreReader } from './pool.ts'

/** The values of a local store: `{ "<namespace id>": { "<key>": <JSON value>, … }, … }`. */
export const LocalStoreSchema = z
  .record(z.string(), z.record(z.string(), z.custom<JsonValue>(isJsonValue, 'expected a JSON value')))
  .superRefine((store, ctx) => {
    for (const ns of Object.keys(store))
      if (!isCidText(ns))
        ctx.addIssue({
          code: 'custom',
          path: [ns],
          message: 'not a namespace id (a CIDv1 dag-cbor CID in base32, bafyrei…)',
        })
  })
export type LocalStore = z.infer<typeof LocalStoreSchema>

/** A reader over `store`, for a call's `read`. */
export function localReader(store: LocalStore): StoreReader {
  return (ns, key) => {
    const values = Object.hasOwn(store, ns) ? store[ns] : undefined
    if (values === undefined)
      return { error: { code: 'NAMESPACE_NOT_FOUND', message: 'the local store holds no such namespace' } }
    return Object.hasOwn(values, key) ? { value: values[key], version: 1 } : { value: null, version: 0 }
  }
}
