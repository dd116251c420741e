// A small seeded PRNG (mulberry32) for fuzz and model tests: a failing run prints its seed, and
// `SEED=<n>` replays it exactly. Without SEED a test uses its own fixed seed (never a random one).
export interface Rng {
  readonly seed: number;
  /** Float in [0, 1). */
  next(): number;
  /** Integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)] as (typeof items)[number],
    chance: (p) => next() < p,
  };
}

/**
 * The seed from SEED, else `fixed`. Tests never pick a fresh random seed: CI runs the same inputs
 * every time, and random exploration belongs to the soak command (scripts/soak.mjs).
 */
export function testSeed(fixed: number): number {
  const s = process.env.SEED;
  return s !== undefined && s !== "" ? Number(s) >>> 0 : fixed >>> 0;
}
