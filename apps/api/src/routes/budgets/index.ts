import {
  BUDGET_WINDOWS,
  BudgetDeletedSchema,
  BudgetListSchema,
  BudgetViewSchema,
  errorResponses,
} from '@recast/core/contract';
import { parseOrThrow } from '@recast/core/errors';
import { type BudgetStatus, microUsdToUsd, parseBudgetScope, usdToMicroUsd } from '@recast/core/money';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isAdmin, tenantOf } from '../../tenant.js';

const PutBudgetSchema = z.strictObject({
  window: z.enum(BUDGET_WINDOWS, { message: 'must be "daily", "monthly" or "lifetime"' }),
  /** Dollars; null removes the limit. */
  limit_usd: z
    .number({ message: 'must be a number of dollars, or null to remove the limit' })
    .nullable()
    .refine((v) => v === null || usdToMicroUsd(v) !== undefined, {
      message: 'must be between 0 and 1,000,000,000 with at most 6 decimals',
    }),
});

function budgetView(b: BudgetStatus) {
  return {
    object: 'budget' as const,
    ...b,
    limit_usd: microUsdToUsd(b.limit_micro_usd),
    reserved_usd: microUsdToUsd(b.reserved_micro_usd),
    spent_usd: microUsdToUsd(b.spent_micro_usd),
    available_usd: microUsdToUsd(b.available_micro_usd),
  };
}

/**
 * Budgets: a limit per scope (global, tenant:<id>, batch:<id>) and window (daily, monthly,
 * lifetime, UTC), in dollars here and micro-dollars inside.
 */
export default async function budgetRoutes(app: FastifyInstance) {
  app.get<{ Querystring: { scope?: string } }>(
    '/v1/budgets',
    {
      schema: {
        tags: ['money'],
        summary: 'Budgets that apply to the caller, with current usage',
        querystring: z.strictObject({ scope: z.string().optional() }),
        response: { 200: BudgetListSchema, ...errorResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const scope = request.query.scope === undefined ? undefined : parseBudgetScope(request.query.scope);
      const all = await app.recast.budgets.list(new Date(), (s) => !scope || s === scope);
      // A tenant sees the global budget, its own and its batches'; an admin sees every one.
      const rows: BudgetStatus[] = [];
      for (const row of all) {
        if (isAdmin(request) || row.scope === 'global' || row.scope === `tenant:${tenantOf(request)}`) {
          rows.push(row);
        } else if (row.scope.startsWith('batch:')) {
          const owner = await app.recast.redis.hget(app.recast.keys.batch(row.scope.slice(6)), 'tenant');
          if (owner === tenantOf(request)) rows.push(row);
        }
      }
      return { object: 'list', data: rows.map(budgetView) };
    },
  );

  app.put<{ Params: { scope: string } }>(
    '/v1/budgets/:scope',
    {
      schema: {
        tags: ['money'],
        summary: 'Set (or with null remove) a budget limit',
        params: z.strictObject({ scope: z.string().describe('global, tenant:<id> or batch:<id>') }),
        body: PutBudgetSchema,
        response: {
          200: z.union([BudgetViewSchema, BudgetDeletedSchema]),
          ...errorResponses(400, 401, 403, 429, 503),
        },
      },
      config: { access: 'admin' },
    },
    async (request) => {
      const scope = parseBudgetScope(request.params.scope);
      const body = parseOrThrow(PutBudgetSchema, request.body);
      const micro = body.limit_usd === null ? null : (usdToMicroUsd(body.limit_usd) as number);
      // A budget change is told to the admin: replicated first (REDIS_WAIT_REPLICAS), else a 503.
      await app.recast.durable(() => app.recast.budgets.setLimit(scope, body.window, micro));
      request.log.info({ scope, window: body.window, limitMicroUsd: micro }, 'budget limit set');
      const rows = await app.recast.budgets.list(new Date(), (s) => s === scope);
      const row = rows.find((r) => r.window === body.window);
      return row
        ? budgetView(row)
        : { object: 'budget', scope, window: body.window, limit_micro_usd: null, deleted: true };
    },
  );
}
