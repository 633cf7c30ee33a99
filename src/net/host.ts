/**
 * The libp2p host: TCP + Noise + Yamux, identify, ping and a Kademlia DHT on a private protocol
 * id, created from the node's own key so the peer id is the node's key id.
 */
import { Socket } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { identify } from '@libp2p/identify'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { type KadDHT, kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { type Ping, ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type ServiceFactoryMap } from 'libp2p'
import { KAD_PROTOCOL } from './protocols.ts'

export type HostServices = {
  identify: unknown
  ping: Ping
  /** absent when the host was created without one (`dht: false`) */
  dht?: KadDHT
}

export type Host = Libp2p<HostServices>

export interface HostInit {
  privateKey: PrivateKey
  /** multiaddrs to listen on @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** DHT protocol id @default '/covenant/kad/1.0.0' */
  dhtProtocol?: string
  /**
   * run the DHT; a caller that only dials nodes it knows (the SDK calling executors) needs none,
   * and its queries would be background work on every call's machine @default true
   */
  dht?: boolean
}

export async function createHost(init: HostInit): Promise<Host> {
  batchWindowUpdates()
  const services: ServiceFactoryMap<HostServices> = { identify: identify(), ping: ping() }
  if (init.dht !== false)
    services.dht = kadDHT({
      protocol: init.dhtProtocol ?? KAD_PROTOCOL,
      // Nodes of a devnet or LAN only have private addresses; the default mapper would drop them.
      peerInfoMapper: passthroughMapper,
      clientMode: false,
      allowQueryWithZeroPeers: true,
      initialQuerySelfInterval: 500,
    })
  const node = await createLibp2p({
    privateKey: init.privateKey,
    start: false,
    addresses: { listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services,
  })
  node.addEventListener('connection:open', (evt) => coalesceWrites(evt.detail))
  return node as unknown as Host
}

/**
 * Coalesces a connection's small socket writes into one per tick. Noise writes each encrypted
 * frame as two buffers (its length, its ciphertext) and Yamux answers each data frame with a
 * window update, so one request and its reply took eight `write` calls, eight TCP segments with
 * no-delay on and eight wakeups of the other side; corked until the end of the tick they leave as
 * one `writev`. Nothing waits: the socket is uncorked on the same tick, unlike Nagle's algorithm.
 * Reads the TCP transport's socket from libp2p's connection (not part of its interface): when it
 * is not there the connection simply goes uncoalesced.
 */
function coalesceWrites(connection: unknown): void {
  const socket = (connection as { maConn?: { socket?: unknown } }).maConn?.socket
  if (!(socket instanceof Socket)) return
  const write = socket.write
  let corked = false
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked) {
      corked = true
      this.cork()
      process.nextTick(() => {
        corked = false
        this.uncork()
      })
    }
    return write.apply(this, args)
  } as Socket['write']
  coalesced.add(socket)
}

let windowUpdatesBatched = false

/**
 * Makes Yamux grant more receive window only once half of it is used, as Go's yamux and the spec's
 * reference do, instead of after every data frame. The per-frame update is a frame of its own:
 * for a request on a session it left as a write of its own before the reply was ready (so
 * `coalesceWrites` cannot join them), and woke the other side, which read, decrypted and decoded
 * it for nothing: one extra write and wakeup per message, each way. The sender still always has
 * at least half the window, so nothing stalls; frames that change a stream's state (SYN, ACK) and
 * a paused stream go through the original. Patched on the class once per process (Yamux exports
 * its stream class, not a hook).
 */
function batchWindowUpdates(): void {
  if (windowUpdatesBatched) return
  windowUpdatesBatched = true
  const perFrame = YamuxStream.prototype.sendWindowUpdate
  YamuxStream.prototype.sendWindowUpdate = function (this: YamuxStream): void {
    const s = this as unknown as { recvWindow: number; recvWindowCapacity: number }
    if (this.state === StreamState.Established && s.recvWindow - s.recvWindowCapacity < s.recvWindow / 2)
      return
    perFrame.call(this)
  }
}

/** Sockets whose writes are coalesced, for tests. */
export const coalesced = new WeakSet<Socket>()
