import { z } from 'zod';
import { AppError } from '../errors/app-error.js';
import { fieldIssues } from '../errors/zod-issues.js';
import { parseTaskStatus, type StatusNumbering, type TaskStatusName } from './status.js';
import { TaskIdSchema } from './wire-schemas.js';

/** The task inside a webhook: only what we need to act on is strict; the rest is kept as sent. */
export const WebhookTaskSchema = z
  .looseObject({
    id: TaskIdSchema,
    status: z.union([z.number(), z.string()]).optional(),
    status_text: z.string().nullish(),
  })
  .refine((task) => task.status !== undefined || typeof task.status_text === 'string', {
    message: 'status or status_text is required',
    path: ['status'],
  });
export type WebhookTask = z.infer<typeof WebhookTaskSchema>;

/** The newer envelope `{event, timestamp, data: <task>}`. */
export const WebhookEnvelopeSchema = z.looseObject({
  event: z.string().nullish(),
  timestamp: z.union([z.string(), z.number()]).nullish(),
  data: WebhookTaskSchema,
});
export type WebhookEnvelope = z.infer<typeof WebhookEnvelopeSchema>;

export interface WebhookUpdate {
  taskId: string;
  status: TaskStatusName;
  rawStatus: number | string | null;
  statusText: string | undefined;
  /** The envelope's `event`, when the payload came in one. */
  event: string | undefined;
  /** The task object as sent (inside the envelope, if any). */
  raw: Record<string, unknown>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string, issues: { path: string; message: string }[]): AppError {
  return new AppError('VALIDATION_FAILED', `invalid webhook payload: ${message}`, {
    statusCode: 400,
    issues,
  });
}

function check<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = fieldIssues(parsed.error);
  const first = issues[0];
  throw invalid(first ? `${first.path}: ${first.message}` : 'unrecognized shape', issues);
}

/**
 * Read a task webhook (both shapes the provider has documented). A webhook is only a hint, unsigned
 * and possibly stale: the receiver confirms with `GET /tasks/{id}` before anything moves money. Throws
 * a 400 `VALIDATION_FAILED` whose issues name the offending field.
 */
export function parseWebhookPayload(body: unknown, numbering: StatusNumbering = 'current'): WebhookUpdate {
  if (!isRecord(body)) {
    throw invalid('(root): expected a JSON object', [{ path: '(root)', message: 'expected a JSON object' }]);
  }
  // A bare task has its id on top; the envelope nests the task under `data`.
  let task: WebhookTask;
  let event: string | undefined;
  if (!('id' in body) && 'data' in body) {
    const envelope = check(WebhookEnvelopeSchema, body);
    task = envelope.data;
    event = envelope.event ?? undefined;
  } else {
    task = check(WebhookTaskSchema, body);
  }
  return {
    taskId: task.id,
    status: parseTaskStatus(task.status, task.status_text, numbering),
    rawStatus: task.status ?? null,
    statusText: task.status_text ?? undefined,
    event,
    raw: task,
  };
}
