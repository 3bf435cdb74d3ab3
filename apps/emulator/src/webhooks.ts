import type { Logger } from 'pino';
import { type Faults, resolveDuration } from './faults.js';
import type { TaskRecord } from './tasks/task-record.js';
import { webhookView } from './tasks/views.js';

export interface WebhookCounters {
  sent: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  failed: number;
}

export interface WebhookSenderOptions {
  logger: Logger;
  faults: () => Faults;
  timeoutMs?: number;
}

/**
 * The terminal webhook, with the faults a real network and a careless provider produce: lost,
 * late, doubled, and followed by a stale update. Fire and forget: the provider documents no retry.
 */
export class WebhookSender {
  private counters: WebhookCounters = emptyCounters();
  private readonly timers = new Set<NodeJS.Timeout>();
  private abort = new AbortController();

  constructor(private readonly options: WebhookSenderOptions) {}

  snapshot(): WebhookCounters {
    return { ...this.counters };
  }

  /** Cancels pending deliveries and zeroes the counters. */
  reset(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.abort.abort();
    this.abort = new AbortController();
    this.counters = emptyCounters();
  }

  taskTerminal(task: TaskRecord): void {
    const url = task.request.webhook;
    if (!url) return;
    const faults = this.options.faults();
    if (task.fate.webhookDrop) {
      this.counters.dropped += 1;
      this.options.logger.info({ taskId: task.id }, 'webhook dropped (fault)');
      return;
    }
    // Bodies are fixed now: a late delivery still carries the state of the moment it describes.
    const terminal = this.body(task, faults);
    // The stale update replays "running" when the task got that far, else its last live state.
    const running = task.events.findLast((event) => event.status === 'running');
    const before = running ? { status: running.status, at: running.at } : task.lastActive;
    const stale = this.body(
      { ...task, status: before.status, updatedAt: before.at, output: null, error: undefined },
      faults,
    );
    const delay = resolveDuration(faults.webhookDelayMs, () => task.fate.webhookDelayDraw);
    const signal = this.abort.signal;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.deliverAll(task, url, terminal, stale, signal);
    }, delay);
    this.timers.add(timer);
  }

  private async deliverAll(
    task: TaskRecord,
    url: string,
    terminal: string,
    stale: string,
    signal: AbortSignal,
  ): Promise<void> {
    await this.post(task.id, url, terminal, signal);
    if (task.fate.webhookDuplicate && !signal.aborted) {
      this.counters.duplicated += 1;
      await this.post(task.id, url, terminal, signal);
    }
    if (task.fate.webhookReorder && !signal.aborted) {
      this.counters.reordered += 1;
      await this.post(task.id, url, stale, signal);
    }
  }

  private body(task: TaskRecord, faults: Faults): string {
    const data = webhookView(task, faults);
    if (faults.webhookShape === 'bare') return JSON.stringify(data);
    return JSON.stringify({ event: `task.${task.status}`, timestamp: task.updatedAt, data });
  }

  private async post(taskId: string, url: string, body: string, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'inference-emulator-webhook/1' },
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs ?? 10_000)]),
      });
      await response.body?.cancel();
      if (response.ok) {
        this.counters.sent += 1;
      } else {
        this.counters.failed += 1;
        this.options.logger.warn({ taskId, url, status: response.status }, 'webhook rejected');
      }
    } catch (error) {
      if (signal.aborted) return;
      this.counters.failed += 1;
      this.options.logger.warn({ taskId, url, err: error }, 'webhook delivery failed');
    }
  }
}

function emptyCounters(): WebhookCounters {
  return { sent: 0, dropped: 0, duplicated: 0, reordered: 0, failed: 0 };
}
