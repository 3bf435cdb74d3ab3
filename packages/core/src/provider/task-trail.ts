import { LRUCache } from 'lru-cache';
import type { InferenceClient } from './inference-client.js';
import { isInferenceError } from './inference-error.js';
import { isTerminalStatus, type TaskStatusName } from './status.js';

const LOG_TYPES = ['build', 'run', 'serve', 'setup', 'task'] as const;

/** What the provider says of one task: its status moves and its logs, as read at `read_at`. */
export interface TaskTrail {
  task_id: string;
  status: TaskStatusName | null;
  events: { status: TaskStatusName; at: string | null }[];
  logs: { at: string | null; type: string; content: string }[];
  /** Why the task could not be read (the rest is then empty); null when it was. */
  error: string | null;
  read_at: string;
}

export interface TaskTrailOptions {
  /** How long the trail of a task still in progress is reused (dashboards poll it). */
  liveTtlMs?: number;
  /** How long the trail of a finished task is reused: it no longer changes. */
  finishedTtlMs?: number;
  /** How long a failed read is reused, so an unreachable provider is not asked on every poll. */
  errorTtlMs?: number;
  /** Most trails kept. */
  max?: number;
}

/**
 * The provider's view of a job's task (`GET /tasks/{id}`: events and logs), for people looking at
 * a job. Each read costs one of the provider's task reads, so trails are cached per process (a
 * finished task's for minutes, a live one's for seconds) and concurrent reads of one task share a
 * single request (lru-cache's fetch coalescing).
 */
export class TaskTrails {
  private readonly cache: LRUCache<string, TaskTrail>;

  constructor(provider: InferenceClient, options: TaskTrailOptions = {}) {
    const liveTtlMs = options.liveTtlMs ?? 5_000;
    const finishedTtlMs = options.finishedTtlMs ?? 600_000;
    const errorTtlMs = options.errorTtlMs ?? 2_000;
    this.cache = new LRUCache<string, TaskTrail>({
      max: options.max ?? 1_000,
      ttl: liveTtlMs,
      fetchMethod: async (taskId, _stale, { options: entry }) => {
        const trail = await readTrail(provider, taskId);
        entry.ttl = trail.error
          ? errorTtlMs
          : trail.status && isTerminalStatus(trail.status)
            ? finishedTtlMs
            : liveTtlMs;
        return trail;
      },
    });
  }

  async read(taskId: string): Promise<TaskTrail> {
    return (await this.cache.fetch(taskId)) as TaskTrail;
  }
}

async function readTrail(provider: InferenceClient, taskId: string): Promise<TaskTrail> {
  const read_at = new Date().toISOString();
  try {
    const task = await provider.getTask(taskId);
    return {
      task_id: taskId,
      status: task.status,
      events: task.events.map((event) => ({ status: event.status, at: event.eventTime ?? null })),
      logs: task.logs.map((log) => ({
        at: log.createdAt ?? null,
        type: LOG_TYPES[log.logType ?? -1] ?? String(log.logType ?? 'unknown'),
        content: log.content,
      })),
      error: null,
      read_at,
    };
  } catch (err) {
    const why = isInferenceError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
    return { task_id: taskId, status: null, events: [], logs: [], error: why, read_at };
  }
}
