import { AppError } from '../errors/app-error.js';
import { tenantIdProblem } from '../model/access.js';

/**
 * Budget scopes and windows. A job falls under the global scope, its tenant's and (when it
 * belongs to one) its batch's; each scope can carry a limit per window. Windows are UTC calendar
 * periods, so "today" and "this month" mean the same thing on every server.
 */
export const BUDGET_WINDOWS = ['daily', 'monthly', 'lifetime'] as const;
export type BudgetWindow = (typeof BUDGET_WINDOWS)[number];

export type BudgetScope = 'global' | `tenant:${string}` | `batch:${string}`;

const SCOPE_PATTERN = /^(global|tenant:[a-z0-9][a-z0-9_-]{0,62}|batch:[A-Za-z0-9_-]{1,64})$/;

export function isBudgetScope(value: string): value is BudgetScope {
  return SCOPE_PATTERN.test(value);
}

export function parseBudgetScope(value: string, field = 'scope'): BudgetScope {
  if (!isBudgetScope(value)) {
    // `tenant:A` is a tenant scope with a bad id: say what is wrong with the id.
    const tenantProblem = value.startsWith('tenant:')
      ? tenantIdProblem(value.slice('tenant:'.length))
      : undefined;
    const message = tenantProblem
      ? `the tenant id ${tenantProblem}`
      : 'must be "global", "tenant:<tenant id>" or "batch:<batch id>"';
    throw new AppError('VALIDATION_FAILED', `invalid budget scope "${value}": ${message}`, {
      statusCode: 400,
      issues: [{ path: field, message }],
    });
  }
  return value;
}

/** The scopes a job's spend counts against, broadest first. */
export function scopesOf(job: { tenant: string; batch_id?: string | undefined }): BudgetScope[] {
  const scopes: BudgetScope[] = ['global', `tenant:${job.tenant}`];
  if (job.batch_id) scopes.push(`batch:${job.batch_id}`);
  return scopes;
}

/** The period of `window` that `at` falls in: `2026-11-25`, `2026-11` or `lifetime`. */
export function periodOf(window: BudgetWindow, at: Date): string {
  const iso = at.toISOString();
  switch (window) {
    case 'daily':
      return iso.slice(0, 10);
    case 'monthly':
      return iso.slice(0, 7);
    case 'lifetime':
      return 'lifetime';
  }
}

/** When the period of `window` containing `at` ends (null for lifetime). */
export function periodEnd(window: BudgetWindow, at: Date): Date | null {
  switch (window) {
    case 'daily':
      return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1));
    case 'monthly':
      return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
    case 'lifetime':
      return null;
  }
}

/** The field a limit is stored under: `tenant:acme|daily`. */
export function limitField(scope: BudgetScope, window: BudgetWindow): string {
  return `${scope}|${window}`;
}
