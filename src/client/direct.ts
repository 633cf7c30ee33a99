/**
 * The SDK calling executors itself (Node only): a libp2p host of its own, with a throwaway key
 * and no DHT, that runs the quorum protocol (`invoke` from `exec`) the way a gateway does — the
 * executors ranked over the client's own view, one session per executor kept open across calls,
 * receipts checked as they come, late receipts watched and conflicts reported to the view's live
 * peers — so a call skips the HTTP hop and the gateway's work. A browser has no libp2p transport
 * to a node and calls through its gateway (`direct.browser.ts`, by the package.json `browser`
 * field through `node-helpers.ts`).
 */
import {
  CONFLICT_PROTOCOL,
  type Conflict,
  EXEC_PROTOCOL,
  type ExecReply,
  ExecReplySchema,
  type InvokeInit,
  type InvokeResult,
  invoke,
  MAX_EXEC_REPLY_BYTES,
  replyWindowMs,
  type SendExec,
  type SignedRequest,
  watchLateReceipts,
} from '../exec/index.ts'
import { generateKey } from '../keys/index.ts'
import { createNet, retryTransient } from '../net/index.ts'

/** How long one conflict report to one peer may take. */
const REPORT_TIMEOUT_MS = 5000
/** Peers a conflict is reported to, at most. */
const REPORT_FANOUT = 16

export interface DirectInvokeInit extends Pick<InvokeInit, 'request' | 'id' | 'manifest' | 'view' | 'trust'> {
  /** where each peer of the view listens, as the nodes the view came from list it */
  addrs: ReadonlyMap<string, readonly string[]>
}

/** A caller's own route to the executors. */
export interface DirectCaller {
  /** Runs `invoke` with this host as the gateway. */
  invoke(init: DirectInvokeInit): Promise<InvokeResult>
  /** Stops the host (open sessions close; late receipts are no longer watched). */
  close(): Promise<void>
}

/** Starts a caller's libp2p host: dials out only, listens nowhere. */
export async function openDirect(): Promise<DirectCaller> {
  const net = createNet({ privateKey: await generateKey(), listen: [], dht: false })
  await net.start()
  let closed = false
  /** the addresses last given to libp2p for each peer, so they are merged once, not per call */
  const given = new Map<string, readonly string[]>()

  function report(conflict: Conflict, init: DirectInvokeInit): void {
    if (closed) return
    const live = [...init.view.peers.values()].filter((p) => p.alive).slice(0, REPORT_FANOUT)
    // a report lost to a busy or broken connection goes again; a peer that refuses it keeps its
    // own view of the executor
    for (const peer of live)
      void retryTransient(
        () =>
          net.request(
            peer.peer,
            CONFLICT_PROTOCOL,
            { conflict },
            { timeoutMs: REPORT_TIMEOUT_MS, maxReplyBytes: 1024 },
          ),
        { stopped: () => closed },
      )
  }

  return {
    async invoke(init) {
      const pending = new Map<string, Promise<ExecReply>>()
      // Neither the invocation's signal nor its timeout for the executor: an abandoned executor's
      // request stays open until the request's deadline so that a late receipt can still be
      // checked (watchLateReceipts); invoke stops waiting for it on its own.
      const ask = (peer: string, request: SignedRequest, waitMs = 0): Promise<ExecReply> => {
        const reply = net.request(
          peer,
          EXEC_PROTOCOL,
          { request },
          {
            timeoutMs: replyWindowMs(request, waitMs),
            maxReplyBytes: MAX_EXEC_REPLY_BYTES,
            schema: ExecReplySchema,
            session: true,
          },
        )
        reply.catch(() => {})
        return reply
      }
      const send: SendExec = async (peer, request, { timeoutMs }) => {
        const addrs = init.addrs.get(peer)
        if (addrs !== undefined && given.get(peer) !== addrs) {
          await net.addAddresses(peer, [...addrs])
          given.set(peer, addrs)
        }
        const reply = ask(peer, request, timeoutMs)
        pending.set(peer, reply)
        return reply
      }
      const result = await invoke({ ...init, send })
      for (const conflict of result.conflicts) report(conflict, init)
      watchLateReceipts(pending, result.tried, result.certificate, (conflict) => report(conflict, init), {
        askAgain: (peer) => ask(peer, init.request),
      })
      return result
    },
    async close() {
      closed = true
      await net.stop()
    },
  }
}
