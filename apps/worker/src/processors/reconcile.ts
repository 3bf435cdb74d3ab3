import type { Engine } from '@recast/core/engine';
import { AUDIT_SCHEDULER } from '@recast/core/model';
import type { Job } from 'bullmq';

/**
 * The maintenance queue's job schedulers: `reconcile` (one pass of the engine's reconciler) and
 * `audit` (the books against the provider's task list over the last `auditWindowMs`).
 */
export function createReconcileProcessor(engine: Engine, auditWindowMs: number) {
  return async (job: Job) => {
    if (job.name === AUDIT_SCHEDULER) {
      const report = await engine.audit(auditWindowMs);
      return {
        complete: report.complete,
        unaccounted_micro_usd: report.unaccounted_micro_usd,
        difference_micro_usd: report.difference_micro_usd,
      };
    }
    return engine.reconcile();
  };
}
