import { CommonConfigShape, envInt, parseConfig } from '@recast/core';
import { z } from 'zod';

export const ApiConfigSchema = z.object({
  ...CommonConfigShape,
  PORT: envInt(0, 65_535).default(3000),
  HOST: z.string().default('127.0.0.1'),
  /** Largest JSON request body on the public API. */
  BODY_LIMIT_BYTES: envInt(1024).default(1_048_576),
  /** Largest webhook body the receiver accepts. */
  WEBHOOK_BODY_LIMIT_BYTES: envInt(1024).default(262_144),
});
export type ApiConfig = z.infer<typeof ApiConfigSchema>;

export function loadConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  return parseConfig(ApiConfigSchema, env);
}
