/**
 * Storage benchmark: put and get latency and throughput for 1 KiB and 4 MiB blocks across a local
 * 5-node devnet (k = 3, puts through node 0, gets through a node that does not hold the block),
 * against a baseline in the same run: the same bytes over a plain loopback TCP socket with an
 * echo/ack protocol. Prints a table and writes bench/results/storage-latest.json.
 *
 *   npm run bench:storage
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from '../src/client/index.ts'
import { startDevnet } from '../src/devnet/index.ts'
import { freeBasePort } from '../test/fixtures/network.ts'
import { printTable, writeResults } from './report.ts'

const DEADLINE = Date.now() + 85_000
const CASES = [
  { label: '1 KiB', size: 1024, n: 200 },
  { label: '4 MiB', size: 4 * 1024 * 1024, n: 12 },
]

interface Stats {
  n: number
  p50: number
  p99: number
  mean: number
  mbPerS: number
}

function stats(samples: number[], size: number): Stats {
  const s = [...samples].sort((a, b) => a - b)
  const pick = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]
  const total = s.reduce((a, b) => a + b, 0)
  return {
    n: s.length,
    p50: +pick(0.5).toFixed(3),
    p99: +pick(0.99).toFixed(3),
    mean: +(total / s.length).toFixed(3),
    mbPerS: +((size * s.length) / (1024 * 1024) / (total / 1000)).toFixed(2),
  }
}

function random(n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)))
  return b
}

/** A framed socket reader: read exactly n bytes. */
function reader(sock: Socket): (n: number) => Promise<Buffer> {
  let buf: Buffer = Buffer.alloc(0)
  let want: { n: number; resolve: (b: Buffer) => void } | undefined
  const pump = () => {
    if (want !== undefined && buf.length >= want.n) {
      const out = buf.subarray(0, want.n)
      buf = buf.subarray(want.n)
      const w = want
      want = undefined
      w.resolve(Buffer.from(out))
    }
  }
  sock.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d])
    pump()
  })
  return (n) =>
    new Promise((resolve) => {
      want = { n, resolve }
      pump()
    })
}

/** Baseline server: 'P' + len + bytes → 1-byte ack; 'G' + len → len bytes. */
async function baseline(size: number, n: number, blocks: Uint8Array[]): Promise<{ put: Stats; get: Stats }> {
  const server = createServer((sock) => {
    const read = reader(sock)
    void (async () => {
      while (!sock.destroyed) {
        const head = await read(5)
        const len = head.readUInt32BE(1)
        if (head[0] === 0x50) {
          await read(len)
          sock.write(Buffer.from([1]))
        } else sock.write(blocks[0].subarray(0, len))
      }
    })().catch(() => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const sock = createConnection({ port, host: '127.0.0.1' })
  await new Promise((r) => sock.once('connect', r))
  sock.setNoDelay(true)
  const read = reader(sock)
  const head = (kind: number) => {
    const h = Buffer.alloc(5)
    h[0] = kind
    h.writeUInt32BE(size, 1)
    return h
  }
  const puts: number[] = []
  const gets: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    sock.write(head(0x50))
    sock.write(blocks[i])
    await read(1)
    puts.push(performance.now() - t)
  }
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    sock.write(head(0x47))
    await read(size)
    gets.push(performance.now() - t)
  }
  sock.destroy()
  await new Promise((r) => server.close(r))
  return { put: stats(puts, size), get: stats(gets, size) }
}

const dir = await mkdtemp(join(tmpdir(), 'covenant-bench-'))
const devnet = await startDevnet({ dir, nodes: 5, basePort: await freeBasePort(10), logLevel: 'warn' })
const results: Array<Record<string, unknown>> = []
try {
  const writer = await connect({ node: devnet.nodes[0].http })
  for (const c of CASES) {
    const blocks = Array.from({ length: c.n }, () => random(c.size))
    const base = await baseline(c.size, c.n, blocks)
    const putTimes: number[] = []
    const getTimes: number[] = []
    const placed: Array<{ cid: string; holders: string[] }> = []
    for (const b of blocks) {
      if (Date.now() > DEADLINE) break
      const t = performance.now()
      const r = await writer.putBlock(b)
      putTimes.push(performance.now() - t)
      if (r.holders.length !== 3) throw new Error(`put got ${r.holders.length} holders`)
      placed.push(r)
    }
    const clients = await Promise.all(devnet.nodes.map((n) => connect({ node: n.http })))
    for (const p of placed) {
      if (Date.now() > DEADLINE) break
      const reader = devnet.nodes.findIndex((n) => !p.holders.includes(n.peerId))
      const t = performance.now()
      await clients[reader].getBlock(p.cid)
      getTimes.push(performance.now() - t)
    }
    const put = stats(putTimes, c.size)
    const get = stats(getTimes, c.size)
    results.push({
      op: 'put (k=3)',
      size: c.label,
      covenant: put,
      baseline: base.put,
      ratioP50: +(put.p50 / base.put.p50).toFixed(1),
    })
    results.push({
      op: 'get (non-holder)',
      size: c.label,
      covenant: get,
      baseline: base.get,
      ratioP50: +(get.p50 / base.get.p50).toFixed(1),
    })
  }
} finally {
  await devnet.stop()
  await rm(dir, { recursive: true, force: true })
}

printTable(
  ['op', 'size', 'n', 'p50 ms', 'p99 ms', 'MiB/s', 'tcp p50 ms', 'tcp MiB/s', 'p50 / tcp'],
  results.map((r) => {
    const c = r.covenant as Stats
    const b = r.baseline as Stats
    return [r.op, r.size, c.n, c.p50, c.p99, c.mbPerS, b.p50, b.mbPerS, r.ratioP50]
  }),
)
console.log(`\nwrote ${await writeResults('storage', { nodes: 5, replicas: 3, results })}`)
