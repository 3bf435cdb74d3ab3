import { z } from 'zod';
import { AppError } from '../errors/app-error.js';
import { fieldIssues } from '../errors/zod-issues.js';

/** Booleans from the environment accept only true/false/1/0, so a typo is an error, not `false`. */
export const envBoolean = z
  .enum(['true', 'false', '1', '0'], { message: 'must be one of true, false, 1, 0' })
  .transform((v) => v === 'true' || v === '1');

export const envInt = (min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

export const envUrl = z.url({ protocol: /^(https?|rediss?)$/ });

/** Parse a config schema against an env object; the error names each bad variable. */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): z.output<S> {
  // Empty strings mean "unset", as in most process managers.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const issues = fieldIssues(result.error);
  throw new AppError(
    'CONFIG_INVALID',
    `invalid configuration: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    { issues },
  );
}
