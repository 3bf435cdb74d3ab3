/**
 * One seeded PRNG for every random decision the emulator makes, so a run under a given seed and a
 * given sequence of requests is reproducible. mulberry32: tiny, fast, and good enough for fault dice.
 */
export interface Prng {
  /** A float in [0, 1). */
  next(): number;
  reseed(seed: number): void;
}

export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
    reseed(next: number) {
      state = next >>> 0;
    },
  };
}
