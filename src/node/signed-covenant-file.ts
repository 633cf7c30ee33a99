/**
 * The node's signed covenant on disk (`<data>/covenant.cbor`), so the version survives restarts
 * and is bumped only when the operator changes the config.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type CovenantConfig,
  decodeSignedCovenant,
  encodeSignedCovenant,
  nextCovenantVersion,
  type SignedCovenant,
  signCovenant,
} from '../covenant/index.ts'
import type { PrivateKey } from '../keys/index.ts'
import { keyId } from '../keys/index.ts'

export const SIGNED_COVENANT_FILE = 'covenant.cbor'

async function readPrevious(file: string, peerId: string): Promise<SignedCovenant | undefined> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const sc = decodeSignedCovenant(bytes)
    // A file signed by another key (a copied data dir) does not carry a version for this key.
    return sc.peer === peerId ? sc : undefined
  } catch {
    return undefined
  }
}

/** Signs `config` with the node key, keeping the stored version when the config is unchanged. */
export async function loadOrSignCovenant(
  dataDir: string,
  key: PrivateKey,
  config: CovenantConfig,
): Promise<SignedCovenant> {
  const file = join(dataDir, SIGNED_COVENANT_FILE)
  const previous = await readPrevious(file, keyId(key))
  const version = nextCovenantVersion(previous, config)
  if (previous !== undefined && previous.version === version) return previous
  const signed = signCovenant(key, config, version)
  await writeFile(`${file}.tmp`, encodeSignedCovenant(signed))
  await rename(`${file}.tmp`, file)
  return signed
}
