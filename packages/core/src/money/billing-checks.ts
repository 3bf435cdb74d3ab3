import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import { loadLua } from '../infra/lua.js';
import type { Resolution } from '../model/schema.js';

interface ChecksRedis extends Redis {
  recastBillingMismatch(checked: string, day: string, chargeId: string, dims: string): Promise<number>;
}

export interface MismatchEntry {
  /** The charge the check is about: the job id, or `<job>#rerun-<n>` for a re-run. */
  chargeId: string;
  /** The day the charge counts on, so the costs report puts the mismatch next to its spend. */
  day: string;
  resolution: Resolution;
  tenant: string;
  batch_id?: string | undefined;
}

/**
 * Billing checks beside the ledger: a job whose output's real duration differs from what the
 * provider billed is counted under the same day × resolution × tenant × batch as its charge, once.
 * Its own small script and keys (not settle-n.lua): the check runs after the money has settled,
 * and may never run at all (retention off), so it must not be part of settling.
 */
export class BillingChecks {
  private readonly redis: ChecksRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
  ) {
    if (!('recastBillingMismatch' in redis)) {
      redis.defineCommand('recastBillingMismatch', loadLua(new URL('./lua/mismatch-2.lua', import.meta.url)));
    }
    this.redis = redis as ChecksRedis;
  }

  /** True when counted now, false when this charge was counted before. */
  async recordMismatch(entry: MismatchEntry): Promise<boolean> {
    const dims = `${entry.resolution}|${entry.tenant}|${entry.batch_id ?? '-'}`;
    const counted = await this.redis.recastBillingMismatch(
      this.keys.billingChecked(),
      this.keys.billingMismatchDay(entry.day),
      entry.chargeId,
      dims,
    );
    return counted === 1;
  }
}
