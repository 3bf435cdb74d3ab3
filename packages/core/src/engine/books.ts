import { type AuditReport, auditBooks } from '../history/audit.js';
import { type EngineContext, providerOf } from './context.js';

/**
 * `audit` (the maintenance queue's job scheduler, AUDIT_INTERVAL_MS): check the books against the
 * provider's task list over the last `windowMs`, and keep the outcome in Redis, where the metrics
 * (`recast_audit_unaccounted_micro_usd`) and operators read it. Money the provider billed that
 * the ledger has no line for is logged as an error with the tasks' ids.
 */
export async function auditRecentBooks(
  ctx: EngineContext,
  windowMs: number,
  now = new Date(),
): Promise<AuditReport> {
  const provider = providerOf(ctx);
  if (!ctx.db) throw new Error('the audit needs the history database (DATABASE_URL)');
  const report = await auditBooks(ctx.db, ctx.redis, ctx.keys, {
    client: provider.client,
    publicUrl: provider.publicUrl,
    webhookSecret: ctx.config.WEBHOOK_SECRET,
    prices: ctx.prices,
    from: new Date(now.getTime() - windowMs),
    to: now,
  });
  await ctx.redis.hset(ctx.keys.auditLast(), {
    at_ms: Date.now(),
    from: report.from,
    to: report.to,
    complete: String(report.complete),
    unaccounted_micro_usd: report.unaccounted_micro_usd,
    difference_micro_usd: report.difference_micro_usd,
    provider_micro_usd: report.provider.micro_usd,
    ledger_micro_usd: report.ledger.micro_usd,
    tasks_without_charge: report.tasks_without_charge.length,
    charges_without_task: report.charges_without_task.length,
    mismatched: report.mismatched.length,
  });
  const summary = {
    from: report.from,
    to: report.to,
    complete: report.complete,
    providerMicroUsd: report.provider.micro_usd,
    ledgerMicroUsd: report.ledger.micro_usd,
    unaccountedMicroUsd: report.unaccounted_micro_usd,
  };
  if (
    report.unaccounted_micro_usd > 0 ||
    report.charges_without_task.length > 0 ||
    report.mismatched.length > 0
  ) {
    ctx.logger.error(
      {
        ...summary,
        tasksWithoutCharge: report.tasks_without_charge.slice(0, 20),
        chargesWithoutTask: report.charges_without_task.slice(0, 20),
        mismatched: report.mismatched.slice(0, 20),
      },
      'audit: the books differ from the provider',
    );
  } else {
    ctx.logger.info(summary, 'audit: the books match the provider');
  }
  return report;
}
