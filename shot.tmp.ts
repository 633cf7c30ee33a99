import { launchChromium } from './test/fixtures/browser.ts'
const b = await launchChromium()
const page = await b.context.newPage()
await page.setViewportSize({ width: 1280, height: 900 })
const errors: string[] = []
page.on('pageerror', (e) => errors.push(e.message))
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()) })
for (const p of ['network', 'calls', 'storage', 'playground']) {
  await page.goto(`http://127.0.0.1:32101/#/${p}`)
  await page.waitForTimeout(2500)
  await page.screenshot({ path: `/tmp/h13-${p}.png`, fullPage: true })
}
console.log(errors)
await b.close()
