/**
 * Worker thread entry: runs one call at a time in the engine and answers the pool. A call that
 * reads a datastore asks the pool for each batch of reads and waits for its answers; a call that
 * overruns its wall clock never answers, and the pool terminates this thread instead.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { BundleCache } from './bundle-cache.ts'
import type { ReadRequest } from './effects.ts'
import {
  createEngine,
  type EngineCall,
  type EngineHost,
  type EngineResult,
  pinHostTimeZoneToUTC,
  type ReadBatchReply,
} from './engine.ts'

export interface WorkerCallMessage {
  type: 'call'
  id: number
  hash: string
  /** present when the pool's mirror says this worker does not hold the bundle yet */
  code?: string
  codeChars: number
  call: Omit<EngineCall, 'code'>
  /** whether the pool answers this call's reads */
  canRead: boolean
}

/** The pool's answer to the reads a call asked for. */
export interface WorkerAnswersMessage {
  type: 'answers'
  id: number
  reply: ReadBatchReply
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: EngineResult }
  | { type: 'reads'; id: number; reads: ReadRequest[] }

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
/** the running call's wait for its reads, if it is waiting */
let waiting: { id: number; resolve(reply: ReadBatchReply): void } | undefined
/**
 * How long after a result the next instance is restored. Right after it, the node still works on
 * that result, and on a small machine so do the call's other executors: a restore then (≈ 0.4 ms
 * of CPU) delays the very answers the caller waits for. A call that comes sooner restores its
 * instance itself, as it would have waited for the restore anyway.
 */
const PREWARM_DELAY_MS = 5
let prewarmLater: NodeJS.Timeout | undefined

await engine.prewarm(prewarmMemoryBytes)
port.postMessage({ type: 'ready' } satisfies WorkerReply)

function hostFor(id: number): EngineHost {
  return {
    read(reads) {
      return new Promise((resolve) => {
        waiting = { id, resolve }
        port.postMessage({ type: 'reads', id, reads } satisfies WorkerReply)
      })
    },
  }
}

port.on('message', async (msg: WorkerCallMessage | WorkerAnswersMessage) => {
  if (msg.type === 'answers') {
    if (waiting?.id !== msg.id) return
    const { resolve } = waiting
    waiting = undefined
    resolve(msg.reply)
    return
  }
  clearTimeout(prewarmLater)
  prewarmLater = undefined
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
      : await engine.run({ ...msg.call, code }, msg.canRead ? hostFor(msg.id) : undefined)
  port.postMessage({ type: 'result', id: msg.id, result } satisfies WorkerReply)
  // restore (or build) the next instance while idle; a call arriving meanwhile simply awaits it
  const { memoryBytes } = msg.call.limits
  prewarmLater = setTimeout(() => {
    prewarmLater = undefined
    void engine.prewarm(memoryBytes)
  }, PREWARM_DELAY_MS)
})
