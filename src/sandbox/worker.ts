/**
 * Worker thread entry: runs one call at a time in the engine and answers the pool. A call that
 * overruns its wall clock never answers; the pool terminates this thread instead.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { BundleCache } from './bundle-cache.ts'
import { createEngine, type EngineCall, pinHostTimeZoneToUTC } from './engine.ts'

export interface WorkerCallMessage {
  type: 'call'
  id: number
  hash: string
  /** present when the pool's mirror says this worker does not hold the bundle yet */
  code?: string
  codeChars: number
  call: Omit<EngineCall, 'code'>
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: import('./engine.ts').EngineResult }

const port = parentPort!
export interface WorkerInit {
  wasmModule: WebAssembly.Module
  prelude: string
  prewarmMemoryBytes: number
  freshInstances: boolean
}

const { wasmModule, prelude, prewarmMemoryBytes, freshInstances } = workerData as WorkerInit

pinHostTimeZoneToUTC()
const engine = createEngine(wasmModule, prelude, { fresh: freshInstances })
const cache = new BundleCache()

await engine.prewarm(prewarmMemoryBytes)
port.postMessage({ type: 'ready' } satisfies WorkerReply)

port.on('message', async (msg: WorkerCallMessage) => {
  cache.put(msg.hash, msg.codeChars, msg.code ?? '')
  const code = cache.get(msg.hash)
  const result =
    code === undefined || (code === '' && msg.codeChars > 0)
      ? {
          ok: false as const,
          error: { code: 'SANDBOX_CRASHED' as const, message: 'the worker lost the bundle' },
          fuel: 0,
          logs: [],
        }
      : await engine.run({ ...msg.call, code })
  port.postMessage({ type: 'result', id: msg.id, result } satisfies WorkerReply)
  // restore (or build) the next instance while idle; a call arriving meanwhile simply awaits it
  await engine.prewarm(msg.call.limits.memoryBytes)
})
