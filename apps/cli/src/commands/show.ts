import { JOB_STATES } from '@recast/core/contract';
import { etaText } from '../cli/eta.js';
import { usd } from '../cli/output.js';
import type { Context } from '../context.js';
import { type Batch, doneOf } from '../schemas.js';

/** Job states in the contract's order; any state a newer server adds is listed after them. */
const STATE_ORDER: readonly string[] = JOB_STATES;

export function printBatch(ctx: Context, batch: Batch): void {
  const { out } = ctx;
  const c = batch.cost;
  const states = Object.entries(batch.counts)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([state, n]) => `${state} ${n}`);
  out.line(`batch     ${batch.id}${batch.name ? `  (${batch.name})` : ''}`);
  out.line(`status    ${batch.status}  (mode ${batch.mode})`);
  out.line(
    `rows      ${doneOf(batch)}/${batch.rows.total} done${batch.rows.invalid ? `, ${batch.rows.invalid} invalid rows skipped` : ''}`,
  );
  out.line(`states    ${states.join(', ') || '-'}`);
  out.line(
    `cost      spent ${usd(c.spent_micro_usd)} of ${usd(c.estimated_micro_usd)} estimated` +
      (c.reserved_micro_usd ? `, ${usd(c.reserved_micro_usd)} reserved` : '') +
      (c.max_cost_usd !== null ? `, max $${c.max_cost_usd}` : ''),
  );
  if (batch.eta) out.line(`eta       ${etaText(batch.eta)}`);
  out.line(`created   ${batch.created_at}`);
  if (batch.started_at) out.line(`started   ${batch.started_at}`);
  if (batch.finished_at) out.line(`finished  ${batch.finished_at}`);
}

function rank(state: string): number {
  const i = STATE_ORDER.indexOf(state);
  return i === -1 ? STATE_ORDER.length : i;
}
