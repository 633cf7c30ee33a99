/**
 * The smallest Covenant function: a greeting.
 *
 *   npx covenant sandbox examples/hello.ts greet '"Ada"'
 */
interface Ctx {
  log(...args: unknown[]): void
  random(): number
  now: number
  request: { id: string; caller: string }
}

export function greet(name: string, ctx: Ctx): string {
  ctx.log(`greeting ${name} for request ${ctx.request.id}`)
  return `Hello, ${name}! It is ${new Date(ctx.now).toISOString()}.`
}
