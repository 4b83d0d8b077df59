/**
 * How many cases a fast-check property runs: `n`, scaled by `SSOFLOW_PROPERTY_RUNS` (a factor,
 * default 1). The mutation runs (`vitest.stryker.config.ts`) set it to 0.1: a surviving mutant
 * re-runs every property that covers it, and the full counts made one survivor cost a minute.
 * Fewer cases can only let a mutant survive that the full count would kill, never the reverse,
 * so a score measured with the factor is a lower bound. Never fewer than `min(n, 50)`.
 */
export function runs(n: number): number {
  const raw = process.env.SSOFLOW_PROPERTY_RUNS
  const factor = raw === undefined ? 1 : Number(raw)
  if (!Number.isFinite(factor) || factor <= 0 || factor > 1) throw new Error(`SSOFLOW_PROPERTY_RUNS must be in (0, 1], got ${raw}`)
  return Math.max(Math.min(n, 50), Math.round(n * factor))
}
