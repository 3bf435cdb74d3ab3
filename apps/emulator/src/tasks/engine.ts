import type { Logger } from 'pino';
import type { AppInput, RunRequest } from '../app-input.js';
import type { Faults } from '../faults.js';
import { newId, newShortId } from '../ids.js';
import { isTerminal, type StatusName } from '../status.js';
import { buildOutput, completionLogs, runningLogs } from './app-script.js';
import type { TaskFate, TaskField, TaskOutput, TaskRecord } from './task-record.js';

export type SourceResult =
  | { ok: true; key: string; seconds: number; fps: number | null }
  | { ok: false; error: string };

export interface EngineOptions {
  stepMs: number;
  logger: Logger;
  faults: () => Faults;
  /** Downloads and probes the source video; must not reject. */
  loadSource: (url: string, signal: AbortSignal) => Promise<SourceResult>;
  /**
   * Downloads the reference images (as the app does before it runs); resolves to why they cannot
   * be read (unreachable, not an image, an uploaded file that never got its bytes), if so. Must not reject.
   */
  loadImages?: (urls: readonly string[], signal: AbortSignal) => Promise<string | undefined>;
  onTerminal: (task: TaskRecord) => void;
}

export interface SubmitInput {
  rawInput: Record<string, unknown>;
  input: AppInput;
  request: Omit<RunRequest, 'input' | 'app'>;
  appVersionId: string;
  baseUrl: string;
}

export interface TaskSubscriber {
  change(task: TaskRecord, fields: readonly TaskField[]): void;
  /** The emulator is closing or resetting: let go of the task. */
  end(): void;
}

interface LiveState {
  timer: NodeJS.Timeout | undefined;
  abort: AbortController;
  source: Promise<SourceResult> | undefined;
  images: Promise<string | undefined> | undefined;
  output: TaskOutput | undefined;
}

const STATUS_FIELDS: readonly TaskField[] = ['status', 'status_text', 'updated_at', 'events'];

/**
 * Owns the tasks and walks each through the provider's lifecycle, one status per step:
 * received → queued → dispatched → preparing (download + probe) → running → uploading → completed.
 */
export class TaskEngine {
  private readonly tasks = new Map<string, TaskRecord>();
  /** Tasks by the webhook URL they were submitted with, oldest first (as a provider's index would). */
  private readonly byWebhook = new Map<string, TaskRecord[]>();
  private readonly live = new Map<string, LiveState>();
  private readonly subscribers = new Map<string, Set<TaskSubscriber>>();
  private readonly waiters = new Map<string, Array<(task: TaskRecord) => void>>();
  private seq = 0;
  private closed = false;

  constructor(private readonly options: EngineOptions) {}

  submit(init: SubmitInput, fate: TaskFate): TaskRecord {
    const now = new Date().toISOString();
    const task: TaskRecord = {
      seq: ++this.seq,
      id: newId(),
      shortId: newShortId(),
      createdAt: now,
      updatedAt: now,
      status: 'received',
      rawInput: init.rawInput,
      input: init.input,
      request: init.request,
      appVersionId: init.appVersionId,
      sessionId: sessionIdFor(init.request.session),
      baseUrl: init.baseUrl,
      output: null,
      error: undefined,
      logs: [],
      events: [{ id: newId(), at: now, status: 'received' }],
      usageEvents: [],
      fate,
      lastActive: { status: 'received', at: now },
      sourceKey: undefined,
      completedAt: undefined,
    };
    this.tasks.set(task.id, task);
    const webhook = task.request.webhook;
    if (typeof webhook === 'string')
      this.byWebhook.set(webhook, [...(this.byWebhook.get(webhook) ?? []), task]);
    this.live.set(task.id, {
      timer: undefined,
      abort: new AbortController(),
      source: undefined,
      images: undefined,
      output: undefined,
    });
    this.schedule(task);
    return task;
  }

  get(id: string): TaskRecord | undefined {
    return this.tasks.get(id);
  }

  /** Newest first. */
  list(): TaskRecord[] {
    return [...this.tasks.values()].reverse();
  }

  /** The tasks submitted with this webhook URL, newest first. */
  listByWebhook(webhook: string): TaskRecord[] {
    return [...(this.byWebhook.get(webhook) ?? [])].reverse();
  }

  inFlight(): number {
    return this.live.size;
  }

  cancel(id: string): TaskRecord | undefined {
    const task = this.tasks.get(id);
    const live = this.live.get(id);
    if (!task || !live || task.status === 'cancelling') return task;
    clearTimeout(live.timer);
    live.abort.abort();
    // The legacy numbering has no cancelling state: the task went straight to cancelled.
    if (this.options.faults().statusNumbering === 'legacy') {
      this.finish(task, 'cancelled', {});
    } else {
      this.transition(task, 'cancelling', []);
      this.schedule(task);
    }
    return task;
  }

  subscribe(id: string, subscriber: TaskSubscriber): () => void {
    let set = this.subscribers.get(id);
    if (!set) {
      set = new Set();
      this.subscribers.set(id, set);
    }
    set.add(subscriber);
    return () => {
      set.delete(subscriber);
      if (set.size === 0) this.subscribers.delete(id);
    };
  }

  /** Resolves when the task is terminal, or with its current state if the emulator resets first. */
  waitTerminal(task: TaskRecord): Promise<TaskRecord> {
    if (isTerminal(task.status)) return Promise.resolve(task);
    return new Promise((resolve) => {
      const list = this.waiters.get(task.id) ?? [];
      list.push(resolve);
      this.waiters.set(task.id, list);
    });
  }

  /** Drops every task: timers stopped, downloads aborted, streams and waiters released. */
  clear(): void {
    for (const live of this.live.values()) {
      clearTimeout(live.timer);
      live.abort.abort();
    }
    this.live.clear();
    for (const set of this.subscribers.values()) for (const subscriber of set) subscriber.end();
    this.subscribers.clear();
    for (const [id, list] of this.waiters) {
      const task = this.tasks.get(id);
      if (task) for (const resolve of list) resolve(task);
    }
    this.waiters.clear();
    this.tasks.clear();
  }

  close(): void {
    this.closed = true;
    this.clear();
  }

  private schedule(task: TaskRecord): void {
    const live = this.live.get(task.id);
    if (!live || this.closed) return;
    live.timer = setTimeout(() => {
      live.timer = undefined;
      this.step(task, live).catch((error: unknown) => {
        this.options.logger.error({ err: error, taskId: task.id }, 'task step failed');
        this.finish(task, 'failed', { error: 'internal error' });
      });
    }, this.options.stepMs);
  }

  private async step(task: TaskRecord, live: LiveState): Promise<void> {
    switch (task.status) {
      case 'received':
        this.transition(task, 'queued', []);
        break;
      case 'queued':
        this.transition(task, 'dispatched', []);
        break;
      case 'dispatched':
        live.source = this.options.loadSource(task.input.video, live.abort.signal);
        live.images = this.options.loadImages?.(task.input.images, live.abort.signal);
        this.transition(task, 'preparing', []);
        break;
      case 'preparing': {
        const [source, images] = await Promise.all([live.source, live.images]);
        // A cancel or a reset may have happened while the downloads ran.
        if (task.status !== 'preparing' || this.live.get(task.id) !== live) return;
        if (!source?.ok) {
          const error = `Failed to load input video: ${source?.error ?? 'no source'}`;
          this.finish(task, 'failed', { error });
          return;
        }
        if (images) {
          this.finish(task, 'failed', { error: `Failed to load reference images: ${images}` });
          return;
        }
        task.sourceKey = source.key;
        live.output = buildOutput(task, source.seconds, source.fps, this.options.faults().billingSkew);
        this.transition(task, 'running', runningLogs(task.input));
        break;
      }
      case 'running':
        if (task.fate.fail) {
          this.finish(task, 'failed', {
            error: 'Prediction failed: the model returned an error (status: failed)',
          });
          return;
        }
        this.transition(task, 'uploading', completionLogs(task.input, live.output));
        break;
      case 'uploading':
        this.finish(task, 'completed', { output: live.output });
        return;
      case 'cancelling':
        this.finish(task, 'cancelled', {});
        return;
      default:
        return;
    }
    this.schedule(task);
  }

  private transition(task: TaskRecord, status: StatusName, logs: readonly string[]): TaskField[] {
    const now = new Date().toISOString();
    task.status = status;
    task.updatedAt = now;
    task.events.push({ id: newId(), at: now, status });
    if (!isTerminal(status)) task.lastActive = { status, at: now };
    for (const content of logs) task.logs.push({ id: newId(), createdAt: now, logType: 1, content });
    const fields = [...STATUS_FIELDS];
    if (logs.length > 0) fields.push('logs');
    if (!isTerminal(status)) this.emit(task, fields);
    return fields;
  }

  private finish(
    task: TaskRecord,
    status: 'completed' | 'failed' | 'cancelled',
    extras: { output?: TaskOutput | undefined; error?: string },
  ): void {
    const live = this.live.get(task.id);
    if (!live || isTerminal(task.status)) return;
    clearTimeout(live.timer);
    this.live.delete(task.id);
    const logs = extras.error === undefined ? [] : [extras.error];
    task.output = extras.output ?? null;
    task.error = extras.error;
    const fields = this.transition(task, status, logs);
    fields.push('output', 'error');
    if (status === 'completed' && task.output) {
      task.completedAt = task.updatedAt;
      const seconds = task.output.output_meta.outputs[0]?.seconds ?? 0;
      task.usageEvents.push({ id: newId(), at: task.updatedAt, quantity: seconds });
      fields.push('usage_events');
    }
    this.emit(task, fields);
    this.options.onTerminal(task);
    const subscribers = this.subscribers.get(task.id);
    this.subscribers.delete(task.id);
    for (const subscriber of subscribers ?? []) subscriber.end();
    const waiters = this.waiters.get(task.id) ?? [];
    this.waiters.delete(task.id);
    for (const resolve of waiters) resolve(task);
  }

  private emit(task: TaskRecord, fields: readonly TaskField[]): void {
    for (const subscriber of this.subscribers.get(task.id) ?? []) {
      try {
        subscriber.change(task, fields);
      } catch (error) {
        this.options.logger.warn({ err: error, taskId: task.id }, 'task subscriber threw');
      }
    }
  }
}

function sessionIdFor(session: string | undefined): string | undefined {
  if (session === undefined) return undefined;
  return session === 'new' ? `sess_${newId()}` : session;
}
