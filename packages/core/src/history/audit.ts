import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import { ResolutionSchema } from '../model/schema.js';
import { costOf, type PriceTable } from '../money/price-table.js';
import type { InferenceClient } from '../provider/inference-client.js';
import { InferenceError } from '../provider/inference-error.js';
import { isTerminalStatus } from '../provider/status.js';
import { billedSeconds, type Task, type TaskList } from '../provider/task.js';
import { verifyWebhookToken, webhookOwner } from '../provider/webhook-token.js';
import { notWritten, readOutbox } from './costs.js';
import type { Database } from './db.js';
import type { LineItem } from './writes.js';

export interface AuditOptions {
  client: InferenceClient;
  /** This deployment's receiver: tasks whose webhook points under it are ours. */
  publicUrl: string;
  webhookSecret: string;
  prices: PriceTable;
  /** The window, by when the provider created the task, and by the charge's day. */
  from: Date;
  to: Date;
  /** The longest the task list is read; an audit cut short says so (`complete: false`). */
  timeoutMs?: number;
}

export interface AuditReport {
  object: 'cost_audit';
  from: string;
  to: string;
  /** False when the provider's list was not read to the start of the window in time. */
  complete: boolean;
  provider: { tasks: number; billed_tasks: number; micro_usd: number };
  ledger: { charges: number; micro_usd: number };
  /** Provider micro-dollars with no charge in the ledger (what Recast paid and has no line for). */
  unaccounted_micro_usd: number;
  /** The ledger minus the provider, over the window. */
  difference_micro_usd: number;
  tasks_without_charge: {
    task_id: string;
    job_id: string;
    attempt: string | null;
    seconds: number;
    micro_usd: number;
  }[];
  charges_without_task: { charge_id: string; job_id: string; task_id: string | null; micro_usd: number }[];
  mismatched: {
    task_id: string;
    charge_id: string;
    billed_seconds: number;
    charged_seconds: number;
    provider_micro_usd: number;
    ledger_micro_usd: number;
  }[];
}

interface Billed {
  task: Task;
  jobId: string;
  attempt: string | null;
  seconds: number;
  microUsd: number;
}

/**
 * Recast checks its books against the provider: the provider's tasks created in the window whose
 * webhook points at this deployment's receiver with a valid token (ours, and only ours, even on
 * an account shared with other clients) against the ledger's line items of the window. Reported:
 * billed tasks with no charge, charges with no task, and tasks billed for other seconds than
 * charged, each with ids and micro-dollars, and the totals. The provider's bill of a task is what
 * its output reports (`output_meta.outputs[0].seconds`) at the app's price, as the provider bills.
 */
export async function auditBooks(
  db: Database,
  redis: Redis,
  keys: Keys,
  options: AuditOptions,
): Promise<AuditReport> {
  const { tasks, complete } = await ourTasks(options);
  const billed: Billed[] = [];
  for (const task of tasks) {
    if (!isTerminalStatus(task.status)) continue;
    const seconds = billedSeconds(task);
    if (seconds === undefined || seconds <= 0) continue;
    const owner = webhookOwner(task)!;
    const resolution = ResolutionSchema.catch('720p').parse(
      (task.input as { resolution?: unknown } | null)?.resolution,
    );
    billed.push({
      task,
      jobId: owner.jobId,
      attempt: owner.attempt,
      seconds,
      microUsd: costOf(options.prices, resolution, seconds).microUsd,
    });
  }
  const charges = await chargesOf(
    db,
    redis,
    keys,
    options,
    billed.map((b) => b.task.id),
  );
  const byTask = new Map(charges.filter((c) => c.task_id).map((c) => [c.task_id!, c]));
  const report: AuditReport = {
    object: 'cost_audit',
    from: options.from.toISOString(),
    to: options.to.toISOString(),
    complete,
    provider: {
      tasks: tasks.length,
      billed_tasks: billed.length,
      micro_usd: sum(billed.map((b) => b.microUsd)),
    },
    ledger: { charges: 0, micro_usd: 0 },
    unaccounted_micro_usd: 0,
    difference_micro_usd: 0,
    tasks_without_charge: [],
    charges_without_task: [],
    mismatched: [],
  };
  for (const b of billed) {
    const charge = byTask.get(b.task.id);
    if (!charge) {
      report.tasks_without_charge.push({
        task_id: b.task.id,
        job_id: b.jobId,
        attempt: b.attempt,
        seconds: b.seconds,
        micro_usd: b.microUsd,
      });
      report.unaccounted_micro_usd += b.microUsd;
    } else if (Math.round(b.seconds * 1000) !== charge.billed_ms || b.microUsd !== charge.micro_usd) {
      report.mismatched.push({
        task_id: b.task.id,
        charge_id: charge.charge_id,
        billed_seconds: b.seconds,
        charged_seconds: charge.billed_ms / 1000,
        provider_micro_usd: b.microUsd,
        ledger_micro_usd: charge.micro_usd,
      });
      if (b.microUsd > charge.micro_usd) report.unaccounted_micro_usd += b.microUsd - charge.micro_usd;
    }
  }
  const seen = new Set(tasks.map((t) => t.id));
  const fromDay = options.from.toISOString().slice(0, 10);
  const toDay = options.to.toISOString().slice(0, 10);
  for (const charge of charges) {
    if (charge.day < fromDay || charge.day > toDay) continue;
    report.ledger.charges++;
    report.ledger.micro_usd += charge.micro_usd;
    // Only a complete read of the window can say a task is missing.
    if (complete && (!charge.task_id || !seen.has(charge.task_id))) {
      report.charges_without_task.push({
        charge_id: charge.charge_id,
        job_id: charge.job_id,
        task_id: charge.task_id,
        micro_usd: charge.micro_usd,
      });
    }
  }
  report.difference_micro_usd = report.ledger.micro_usd - report.provider.micro_usd;
  return report;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/**
 * The provider's tasks created in the window that are ours: asked for with a list filter on the
 * webhook URL, and checked one by one (a provider that ignores the filter lists everything; a
 * task of another client, or one whose token was not made with our secret, is not ours).
 */
async function ourTasks(options: AuditOptions): Promise<{ tasks: Task[]; complete: boolean }> {
  const prefix = new URL(
    'webhooks/inference/',
    options.publicUrl.endsWith('/') ? options.publicUrl : `${options.publicUrl}/`,
  ).toString();
  const from = options.from.getTime();
  const to = options.to.getTime();
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const tasks: Task[] = [];
  let cursor: string | undefined;
  let filtered = true;
  for (;;) {
    let list: TaskList;
    try {
      list = await options.client.list({
        limit: 100,
        ...(cursor ? { cursor } : {}),
        ...(filtered ? { filters: [{ field: 'webhook', operator: 'like', value: `${prefix}%` }] } : {}),
      });
    } catch (err) {
      if (filtered && err instanceof InferenceError && err.httpStatus === 400) {
        filtered = false;
        cursor = undefined;
        continue;
      }
      throw err;
    }
    for (const task of list.items) {
      const created = Date.parse(task.createdAt ?? '');
      if (created < from || created > to) continue;
      const owner = webhookOwner(task);
      if (!owner || !task.webhook?.startsWith(prefix)) continue;
      const token = new URL(task.webhook).searchParams.get('token') ?? undefined;
      if (verifyWebhookToken(options.webhookSecret, owner.jobId, token)) tasks.push(task);
    }
    const last = list.items.at(-1);
    const oldest = last?.createdAt ? Date.parse(last.createdAt) : Number.NaN;
    if (!list.nextCursor || oldest < from) return { tasks, complete: true };
    if (Date.now() > deadline) return { tasks, complete: false };
    cursor = list.nextCursor;
  }
}

/** The line items of the window, and of the provider's tasks whatever their day (archived and pending). */
async function chargesOf(
  db: Database,
  redis: Redis,
  keys: Keys,
  options: AuditOptions,
  taskIds: string[],
): Promise<LineItem[]> {
  // The outbox first, then the history and "which of those are written" in one snapshot (see
  // historyCostReport): a charge the archiver moves meanwhile is counted once.
  const outbox = (await readOutbox(redis, keys)) ?? { items: [] };
  const snapshot = await db.openSnapshot();
  try {
    const { rows } = await snapshot.query<LineItem>(
      `SELECT charge_id, job_id, attempt, task_id, tenant, batch_id, resolution, billed_ms, micro_usd,
         price_version, kind, to_char(day, 'YYYY-MM-DD') AS day, charged_at::text AS charged_at
       FROM recast_charges WHERE day BETWEEN $1 AND $2 OR task_id = ANY($3)`,
      [options.from.toISOString().slice(0, 10), options.to.toISOString().slice(0, 10), taskIds],
    );
    const byId = new Map(rows.map((r) => [r.charge_id, r]));
    for (const item of await notWritten(snapshot, outbox)) byId.set(item.charge_id, item);
    return [...byId.values()];
  } finally {
    await snapshot.close();
  }
}
