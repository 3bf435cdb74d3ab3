import { z } from 'zod';
import { AppError } from '../errors/app-error.js';
import { RESOLUTIONS, type Resolution } from '../model/schema.js';

/**
 * Prices live in configuration with a version; every settled job records the version it used.
 * Money is integer micro-dollars (1 USD = 1,000,000), durations integer milliseconds: no floats
 * ever reach the ledger.
 */
export const PriceTableSchema = z.object({
  version: z.string().min(1),
  micro_usd_per_second: z.object({
    '720p': z.number().int().nonnegative(),
    '1080p': z.number().int().nonnegative(),
  }),
});
export type PriceTable = z.infer<typeof PriceTableSchema>;

/** $0.03 per output second at 720p, $0.06 at 1080p; turbo does not change the price. */
export const DEFAULT_PRICE_TABLE: PriceTable = {
  version: '2026-01-p-video-replace',
  micro_usd_per_second: { '720p': 30_000, '1080p': 60_000 },
};

export const MICRO_USD_PER_USD = 1_000_000;

export function parsePriceTable(json: string): PriceTable {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new AppError('CONFIG_INVALID', 'PRICE_TABLE is not valid JSON', { cause: err });
  }
  const result = PriceTableSchema.safeParse(raw);
  if (!result.success) {
    throw new AppError(
      'CONFIG_INVALID',
      `PRICE_TABLE is invalid: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return result.data;
}

/** Provider seconds (a decimal) to integer milliseconds, the unit Recast counts time in. */
export function secondsToMs(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds < 0) throw new AppError('INTERNAL', `invalid seconds: ${seconds}`);
  return Math.round(seconds * 1000);
}

/**
 * Cost of `ms` milliseconds at `microUsdPerSecond`, rounded half up to the micro-dollar.
 * Done in BigInt so no product can lose precision whatever the configured price.
 */
export function costMicroUsd(ms: number, microUsdPerSecond: number): number {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new AppError('INTERNAL', `invalid duration ms: ${ms}`);
  const product = BigInt(ms) * BigInt(microUsdPerSecond);
  const cost = (product + 500n) / 1000n;
  return Number(cost);
}

export function priceFor(table: PriceTable, resolution: Resolution): number {
  return table.micro_usd_per_second[resolution];
}

/** Cost of an output of `seconds` at `resolution` under `table`. */
export function costOf(
  table: PriceTable,
  resolution: Resolution,
  seconds: number,
): { ms: number; microUsd: number } {
  const ms = secondsToMs(seconds);
  return { ms, microUsd: costMicroUsd(ms, priceFor(table, resolution)) };
}

/** Exact decimal dollars for display: 225600 → "0.225600". */
export function microUsdToUsd(microUsd: number): string {
  const sign = microUsd < 0 ? '-' : '';
  const abs = Math.abs(microUsd);
  const whole = Math.floor(abs / MICRO_USD_PER_USD);
  const frac = String(abs % MICRO_USD_PER_USD).padStart(6, '0');
  return `${sign}${whole}.${frac}`;
}

export { RESOLUTIONS };

/**
 * Dollars as given in the API (a JSON number such as 12.5) to integer micro-dollars, exactly:
 * more than six decimals cannot be represented and is refused rather than rounded.
 */
export function usdToMicroUsd(usd: number): number | undefined {
  if (!Number.isFinite(usd) || usd < 0 || usd > 1e9) return undefined;
  const micro = Math.round(usd * MICRO_USD_PER_USD);
  return Math.abs(micro - usd * MICRO_USD_PER_USD) < 1e-6 ? micro : undefined;
}
