import { APP_ID } from '../app-input.js';
import type { Faults } from '../faults.js';
import { statusNumber } from '../status.js';
import type { TaskField, TaskRecord } from './task-record.js';

type ViewFaults = Pick<Faults, 'statusNumbering' | 'statusText'>;

function statusFields(task: TaskRecord, faults: ViewFaults): Record<string, unknown> {
  const fields: Record<string, unknown> = { status: statusNumber(task.status, faults.statusNumbering) };
  if (faults.statusText) fields.status_text = task.status;
  return fields;
}

/** TaskResult: the slim answer of POST /apps/run. */
export function slimView(task: TaskRecord, faults: ViewFaults): Record<string, unknown> {
  return {
    id: task.id,
    short_id: task.shortId,
    ...statusFields(task, faults),
    output: task.output,
    ...(task.error === undefined ? {} : { error: task.error }),
    ...(task.sessionId === undefined ? {} : { session_id: task.sessionId }),
    created_at: task.createdAt,
    updated_at: task.updatedAt,
    ...(task.request.run_at === undefined ? {} : { run_at: task.request.run_at }),
  };
}

export function statusView(task: TaskRecord, faults: ViewFaults): Record<string, unknown> {
  return {
    id: task.id,
    status: statusNumber(task.status, faults.statusNumbering),
    updated_at: task.updatedAt,
  };
}

/** The full Task of GET /tasks/{id}. */
export function fullView(task: TaskRecord, faults: ViewFaults): Record<string, unknown> {
  return {
    ...scalarView(task, faults),
    events: eventsView(task, faults),
    logs: logsView(task),
    usage_events: usageView(task),
  };
}

/**
 * The full Task without its lists (events, logs, usage): what a list filter is checked against,
 * cheap enough to build for every task of a deep account on every list call.
 */
export function scalarView(task: TaskRecord, faults: ViewFaults): Record<string, unknown> {
  return {
    ...slimView(task, faults),
    user_id: 'usr_emulator',
    team_id: 'team_emulator',
    visibility: 'private',
    is_featured: false,
    app_id: APP_ID,
    app_version_id: task.appVersionId,
    app_variant: 'default',
    function: task.request.function ?? 'run',
    infra: task.request.infra ?? 'cloud',
    workers: task.request.workers ?? [],
    webhook: task.request.webhook ?? null,
    setup: task.request.setup ?? null,
    metadata: task.request.metadata ?? null,
    ...(task.request.session_timeout === undefined ? {} : { session_timeout: task.request.session_timeout }),
    input: task.rawInput,
    rating: 'safe',
  };
}

function eventsView(task: TaskRecord, faults: ViewFaults) {
  return task.events.map((event) => ({
    id: event.id,
    created_at: event.at,
    event_time: event.at,
    task_id: task.id,
    status: statusNumber(event.status, faults.statusNumbering),
  }));
}

function logsView(task: TaskRecord) {
  return task.logs.map((log) => ({
    id: log.id,
    created_at: log.createdAt,
    updated_at: log.createdAt,
    task_id: task.id,
    log_type: log.logType,
    content: log.content,
  }));
}

function usageView(task: TaskRecord) {
  return task.usageEvents.map((usage) => ({
    id: usage.id,
    created_at: usage.at,
    updated_at: usage.at,
    reference_id: task.id,
    resource_id: APP_ID,
    type: 'output_seconds',
    model: 'pruna/p-video-replace',
    quantity: usage.quantity,
    unit: 'seconds',
  }));
}

/** The `data` of a `{data, fields}` stream line: only what changed, plus the id to merge on. */
export function partialView(task: TaskRecord, fields: readonly TaskField[], faults: ViewFaults) {
  const full = fullView(task, faults);
  const data: Record<string, unknown> = { id: task.id };
  const names: string[] = [];
  for (const field of fields) {
    if (field === 'status_text' && !faults.statusText) continue;
    data[field] = full[field] ?? null;
    names.push(field);
  }
  return { data, fields: names };
}

/** The terminal webhook body; the doc lists these keys, so absent ones are sent as null. */
export function webhookView(task: TaskRecord, faults: ViewFaults): Record<string, unknown> {
  return {
    id: task.id,
    ...statusFields(task, faults),
    output: task.output,
    error: task.error ?? null,
    session_id: task.sessionId ?? null,
    created_at: task.createdAt,
    updated_at: task.updatedAt,
  };
}
