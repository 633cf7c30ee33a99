import { cidForBytes } from './src/content/index.ts'
import { CovenantError } from './src/errors/index.ts'
import { allAlive, storageMember } from './test/fixtures/storage-members.ts'
const members = [await storageMember({ storage: { replicas: 3 } })]
const first = members[0].net.multiaddrs()[0]
for (let i = 1; i < 6; i++) members.push(await storageMember({ bootstrap: [first], storage: { replicas: 3 } }))
await allAlive(members)
const unknown = Array.from({ length: 1000 }, (_, i) => cidForBytes(new TextEncoder().encode(`nobody has ${i}`)))
let maxGap = 0, last = performance.now(), ticking = true
const gaps: Array<[number, number]> = []
const tick = () => { const now = performance.now(); if (now - last > 30) gaps.push([Math.round(last - t0), Math.round(now - last)]); maxGap = Math.max(maxGap, now - last); last = now; if (ticking) setImmediate(tick) }
const t0 = performance.now()
setImmediate(tick)
const ps = unknown.map((cid) => members[0].storage.get(cid).then(() => 'f', (e) => CovenantError.from(e).code))
console.log('issued in', performance.now() - t0)
await Promise.all(ps)
ticking = false
console.log('max gap', maxGap, gaps)
for (const m of members) await m.stop()
