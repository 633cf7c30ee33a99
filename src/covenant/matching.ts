import { CovenantError } from '../errors/index.ts'
import type { CovenantConfig } from './covenant-config.ts'
import { formatAmount } from './money.ts'

/** The answer of a covenant to one question: yes, or no with a reason a person can read. */
export type Decision = { ok: true } | { ok: false; reason: string }

const YES: Decision = Object.freeze({ ok: true })
const no = (reason: string): Decision => ({ ok: false, reason })

function refusedTag(refused: readonly string[], tags: readonly string[]): string | undefined {
  if (refused.length === 0) return undefined
  const set = new Set(refused)
  return tags.find((t) => set.has(t))
}

export interface StoreQuery {
  tags: readonly string[]
  /** bytes of the block to store */
  size: number
  /** bytes the node already holds */
  usedBytes: number
}

export function mayStore(config: CovenantConfig, q: StoreQuery): Decision {
  if (!config.store.enabled) return no('does not store content')
  const tag = refusedTag(config.store.refusedTags, q.tags)
  if (tag !== undefined) return no(`refuses tag ${JSON.stringify(tag)}`)
  if (q.usedBytes + q.size > config.store.maxBytes)
    return no(`has no room: ${q.size} bytes more would exceed its ${config.store.maxBytes} bytes`)
  return YES
}

export interface ExecuteQuery {
  tags: readonly string[]
  /** key id of the function's publisher */
  publisher: string
  fuel: number
  memoryMiB: number
  timeoutMs: number
  /** the largest output asked for, in MiB @default 1 */
  outputMiB?: number
  /** the most the caller pays per unit of fuel, in ncr; unchecked when absent */
  maxPricePerFuel?: number
}

export function mayExecute(config: CovenantConfig, q: ExecuteQuery): Decision {
  const e = config.execute
  if (!e.enabled) return no('does not execute code')
  const tag = refusedTag(e.refusedTags, q.tags)
  if (tag !== undefined) return no(`refuses tag ${JSON.stringify(tag)}`)
  if (e.refusedPublishers.includes(q.publisher)) return no(`refuses publisher ${q.publisher}`)
  if (e.allowedPublishers.length > 0 && !e.allowedPublishers.includes(q.publisher))
    return no(`executes only for allowed publishers, not ${q.publisher}`)
  if (q.fuel > e.maxFuel) return no(`allows at most ${e.maxFuel} fuel, ${q.fuel} asked`)
  if (q.memoryMiB > e.maxMemoryMiB)
    return no(`allows at most ${e.maxMemoryMiB} MiB of memory, ${q.memoryMiB} asked`)
  if (q.timeoutMs > e.maxWallClockMs)
    return no(`allows at most ${e.maxWallClockMs} ms of wall clock, ${q.timeoutMs} asked`)
  if ((q.outputMiB ?? 1) > e.maxOutputMiB)
    return no(`allows at most ${e.maxOutputMiB} MiB of output, ${q.outputMiB} asked`)
  if (q.maxPricePerFuel !== undefined && e.pricePerFuel > q.maxPricePerFuel)
    return no(
      `charges ${formatAmount(e.pricePerFuel)} per fuel, more than the ${formatAmount(q.maxPricePerFuel)} offered`,
    )
  return YES
}

/** Serving follows the store rules' refused tags: a node never hands out what it would not keep. */
export function mayServe(config: CovenantConfig, q: { tags: readonly string[] }): Decision {
  const tag = refusedTag(config.store.refusedTags, q.tags)
  return tag === undefined ? YES : no(`refuses tag ${JSON.stringify(tag)}`)
}

/** Throws COVENANT_REFUSED with the decision's reason if it is a refusal. */
export function assertAllowed(decision: Decision, who = 'this node'): void {
  if (!decision.ok) throw new CovenantError('COVENANT_REFUSED', `${who} ${decision.reason}`)
}
