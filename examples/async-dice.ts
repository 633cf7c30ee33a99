/**
 * An async function: awaits promises and uses the deterministic ctx.random(), so every executor
 * of one request rolls the same dice (change --seed to roll again).
 *
 *   npx covenant sandbox examples/async-dice.ts roll 3 6 --seed game-42
 */
interface Ctx {
  log(...args: unknown[]): void
  random(): number
  request: { id: string; caller: string }
}

const rollOne = async (sides: number, ctx: Ctx): Promise<number> => {
  await null // yields to the job queue, as real async work would
  return 1 + Math.floor(ctx.random() * sides)
}

export async function roll(
  dice: number,
  sides: number,
  ctx: Ctx,
): Promise<{ rolls: number[]; total: number }> {
  if (!Number.isInteger(dice) || dice < 1 || dice > 100) throw new Error('dice must be 1..100')
  const rolls = await Promise.all(Array.from({ length: dice }, () => rollOne(sides, ctx)))
  ctx.log(`request ${ctx.request.id} rolled ${rolls.join(', ')}`)
  return { rolls, total: rolls.reduce((a, b) => a + b, 0) }
}
