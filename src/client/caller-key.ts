/** The caller's key: `--key FILE`, else `$COVENANT_HOME/key`, else `~/.covenant/key`; created on first use. */
import type { PrivateKey } from '../keys/index.ts'

/** Where the caller key lives when no file is named. Node only. */
export async function defaultKeyPath(): Promise<string> {
  const { homedir } = await import('node:os')
  const { join } = await import('node:path')
  const home = process.env.COVENANT_HOME ?? join(homedir(), '.covenant')
  return join(home, 'key')
}

/** Loads (or creates, mode 0600) the caller key. Node only; in a browser pass a key instead. */
export async function loadCallerKey(file?: string): Promise<PrivateKey> {
  const { loadOrCreateKey } = await import('../keys/index.ts')
  return loadOrCreateKey(file ?? (await defaultKeyPath()))
}
