import { parseTaskStatus, type StatusNumbering, type TaskStatusName } from './status.js';
import type { TaskListWire, TaskResultWire, TaskStatusWire, TaskWire } from './wire-schemas.js';

/** A task's status as Recast sees it: the normalized name, plus what the provider actually sent. */
export interface TaskStatusFields {
  status: TaskStatusName;
  /** The provider's `status` as sent (number today; a name in future API versions), null if absent. */
  rawStatus: number | string | null;
  /** The provider's `status_text`, when it sent one. */
  statusText: string | undefined;
}

/** The slim task `POST /apps/run` answers with. */
export interface TaskResult extends TaskStatusFields {
  id: string;
  shortId: string | undefined;
  output: unknown;
  /** The provider's error text, if any (see `taskError` for a tolerant reader). */
  error: string | undefined;
  sessionId: string | undefined;
  createdAt: string | undefined;
  updatedAt: string | undefined;
  runAt: string | undefined;
  /** The validated provider object, every field kept, for logs and audits. */
  raw: Record<string, unknown>;
}

export interface TaskLog {
  id: string | undefined;
  createdAt: string | undefined;
  /** 0 build, 1 run, 2 serve, 3 setup, 4 task. */
  logType: number | undefined;
  content: string;
}

export interface TaskEvent extends TaskStatusFields {
  id: string | undefined;
  eventTime: string | undefined;
}

/** The full task `GET /tasks/{id}` answers with. */
export interface Task extends TaskResult {
  input: unknown;
  logs: TaskLog[];
  events: TaskEvent[];
  usageEvents: unknown[];
  webhook: string | undefined;
  appId: string | undefined;
  appVersionId: string | undefined;
}

/** The light poll `GET /tasks/{id}/status`. */
export interface TaskStatusInfo extends TaskStatusFields {
  id: string;
  updatedAt: string | undefined;
}

export interface TaskList {
  items: Task[];
  /** Undefined on the last page (the provider sends an empty string there). */
  nextCursor: string | undefined;
  hasNext: boolean;
}

function rawStatusOf(value: unknown): number | string | null {
  return typeof value === 'number' || typeof value === 'string' ? value : null;
}

function statusFields(status: unknown, statusText: unknown, numbering: StatusNumbering): TaskStatusFields {
  return {
    status: parseTaskStatus(status, statusText, numbering),
    rawStatus: rawStatusOf(status),
    statusText: typeof statusText === 'string' ? statusText : undefined,
  };
}

function orUndefined(value: string | null | undefined): string | undefined {
  return value ?? undefined;
}

export function toTaskResult(wire: TaskResultWire, numbering: StatusNumbering): TaskResult {
  return {
    id: wire.id,
    shortId: orUndefined(wire.short_id),
    ...statusFields(wire.status, wire.status_text, numbering),
    output: wire.output,
    error: errorText(wire.error),
    sessionId: orUndefined(wire.session_id),
    createdAt: orUndefined(wire.created_at),
    updatedAt: orUndefined(wire.updated_at),
    runAt: orUndefined(wire.run_at),
    raw: wire,
  };
}

export function toTask(wire: TaskWire, numbering: StatusNumbering): Task {
  return {
    ...toTaskResult(wire, numbering),
    input: wire.input,
    logs: (wire.logs ?? []).map((log) => ({
      id: orUndefined(log.id),
      createdAt: orUndefined(log.created_at),
      logType: log.log_type ?? undefined,
      content: log.content ?? '',
    })),
    events: (wire.events ?? []).map((event) => ({
      id: orUndefined(event.id),
      eventTime: orUndefined(event.event_time ?? event.created_at),
      ...statusFields(event.status, event.status_text, numbering),
    })),
    usageEvents: wire.usage_events ?? [],
    webhook: orUndefined(wire.webhook),
    appId: orUndefined(wire.app_id),
    appVersionId: orUndefined(wire.app_version_id),
  };
}

export function toTaskStatusInfo(wire: TaskStatusWire, numbering: StatusNumbering): TaskStatusInfo {
  return {
    id: wire.id,
    ...statusFields(wire.status, wire.status_text, numbering),
    updatedAt: orUndefined(wire.updated_at),
  };
}

export function toTaskList(wire: TaskListWire, numbering: StatusNumbering): TaskList {
  const nextCursor = wire.next_cursor ? wire.next_cursor : undefined;
  return {
    items: (wire.items ?? []).map((item) => toTask(item, numbering)),
    nextCursor,
    // Older answers may lack has_next; a non-empty cursor is then the only signal.
    hasNext: wire.has_next ?? nextCursor !== undefined,
  };
}

/* ---------- output helpers: they take any task-like object, normalized or raw ---------- */

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function errorText(value: unknown): string | undefined {
  if (isRecord(value)) return nonEmpty(value.message) ?? nonEmpty(value.detail);
  return nonEmpty(value);
}

/**
 * The billed quantity: `output.output_meta.outputs[0].seconds`. Only a finite number >= 0 counts: a
 * string or a missing value is undefined, so the caller decides (never bill on a guess).
 */
export function billedSeconds(task: { output?: unknown }): number | undefined {
  const output = task.output;
  if (!isRecord(output) || !isRecord(output.output_meta)) return undefined;
  const outputs = output.output_meta.outputs;
  if (!Array.isArray(outputs)) return undefined;
  const first: unknown = outputs[0];
  if (!isRecord(first)) return undefined;
  const seconds = first.seconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** The output video's URL: `output.video` is a URL string or a file object with `uri` (or `url`). */
export function outputVideoUrl(task: { output?: unknown }): string | undefined {
  const output = task.output;
  if (!isRecord(output)) return undefined;
  const video = output.video;
  if (isRecord(video)) return nonEmpty(video.uri) ?? nonEmpty(video.url);
  return nonEmpty(video);
}

/** The task's error text: `error` as a string, or an error object's `message`/`detail`. */
export function taskError(task: { error?: unknown }): string | undefined {
  return errorText(task.error);
}
