import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import { loadLua } from '../infra/lua.js';

interface ProcessingRedis extends Redis {
  recastObserve(
    hash: string,
    kind: string,
    msPerSecond: string,
    seconds: string,
    alpha: string,
    now: string,
    turnaround: string,
  ): Promise<number>;
}

/** What sets a task's processing time apart: its resolution and whether it ran turbo. */
export interface TaskKind {
  resolution: string;
  turbo?: boolean | undefined;
}

export function kindOf(task: TaskKind): string {
  return `${task.resolution}|${task.turbo ? 'turbo' : 'std'}`;
}

/** One kind's figure: milliseconds of provider time per output second, and where it comes from. */
export interface ProcessingFigure {
  kind: string;
  ms_per_output_second: number;
  /** Output seconds per task (moving), for turning a count of jobs into work. */
  output_seconds_per_task: number;
  /**
   * How long a task holds its in-flight slot beyond the provider's time (moving, ms): the submit,
   * the webhook's way back and the settle; a slot takes a new job every processing + turnaround.
   */
  turnaround_ms: number;
  /** Tasks it was learnt from (0: the documented default). */
  tasks: number;
  source: 'observed' | 'default';
}

export interface ProcessingOptions {
  /** Until a kind has data (ETA_DEFAULT_MS_PER_OUTPUT_SECOND). */
  defaultMsPerSecond: number;
  /** Output seconds per task until there is data (ESTIMATE_FALLBACK_SECONDS is a fair guess). */
  defaultSecondsPerTask: number;
  /** The weight of the newest task in the moving figure, once there are 1/alpha tasks. */
  alpha?: number;
  /** How long a read of the figures serves the callers of one process. */
  cacheMs?: number;
}

type Figures = Record<string, { msPerSecond: number; seconds: number; turnaround: number; n: number }>;

/**
 * How long the provider takes per output second, learnt from the tasks that completed (kept per
 * resolution and turbo, and over all tasks): a moving figure in one Redis hash that every worker
 * folds into and every process reads. ETAs and the reconciler's idea of "overdue" both start from
 * it; until a kind has data, the documented default stands in. Ours because no library keeps a
 * shared moving mean in Redis (a few lines of Lua: observe-1.lua).
 */
export class ProcessingTimes {
  private readonly redis: ProcessingRedis;
  private cached: { at: number; figures: Figures } | undefined;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly options: ProcessingOptions,
  ) {
    if (!('recastObserve' in redis)) {
      redis.defineCommand('recastObserve', loadLua(new URL('./lua/observe-1.lua', import.meta.url)));
    }
    this.redis = redis as ProcessingRedis;
  }

  /**
   * Fold in one completed task: `durationMs` of provider time (its created to finished time, on
   * the provider's clock) for `seconds` of output, and `slotMs`, how long it held its in-flight
   * slot (from its claim to its settle, our clock) when known. Ignores what cannot be a measure.
   */
  async observe(
    task: TaskKind,
    durationMs: number,
    seconds: number,
    slotMs?: number,
    now = Date.now(),
  ): Promise<void> {
    if (!(durationMs > 0) || !(seconds > 0) || !Number.isFinite(durationMs)) return;
    const perSecond = String(durationMs / seconds);
    const alpha = String(this.options.alpha ?? 0.1);
    const turnaround =
      slotMs !== undefined && Number.isFinite(slotMs) ? String(Math.max(0, slotMs - durationMs)) : '';
    const hash = this.keys.processingTimes();
    const args = [perSecond, String(seconds), alpha, String(now), turnaround] as const;
    await Promise.all([
      this.redis.recastObserve(hash, kindOf(task), ...args),
      this.redis.recastObserve(hash, 'all', ...args),
    ]);
    this.cached = undefined;
  }

  private async figures(): Promise<Figures> {
    const cacheMs = this.options.cacheMs ?? 2_000;
    if (this.cached && Date.now() - this.cached.at < cacheMs) return this.cached.figures;
    const raw = await this.redis.hgetall(this.keys.processingTimes());
    const figures: Figures = {};
    for (const [field, value] of Object.entries(raw)) {
      const cut = field.lastIndexOf(':');
      const kind = field.slice(0, cut);
      const f = figures[kind] ?? { msPerSecond: 0, seconds: 0, turnaround: 0, n: 0 };
      figures[kind] = f;
      const name = field.slice(cut + 1);
      if (name === 'ms_per_s') f.msPerSecond = Number(value);
      else if (name === 'seconds') f.seconds = Number(value);
      else if (name === 'n') f.n = Number(value);
      else if (name === 'turnaround') f.turnaround = Number(value);
    }
    this.cached = { at: Date.now(), figures };
    return figures;
  }

  /**
   * The figure for one kind of task: its own once it has data, else the same resolution's other
   * kind, else all tasks', else the default.
   */
  async figure(task: TaskKind | 'all'): Promise<ProcessingFigure> {
    const figures = await this.figures();
    const kind = task === 'all' ? 'all' : kindOf(task);
    const candidates =
      task === 'all' ? ['all'] : [kind, kindOf({ resolution: task.resolution, turbo: !task.turbo }), 'all'];
    for (const c of candidates) {
      const f = figures[c];
      if (f && f.n > 0 && f.msPerSecond > 0) {
        return {
          kind,
          ms_per_output_second: Math.round(f.msPerSecond),
          output_seconds_per_task: Math.round(f.seconds * 1000) / 1000,
          turnaround_ms: Math.round(f.turnaround),
          tasks: f.n,
          source: 'observed',
        };
      }
    }
    return {
      kind,
      ms_per_output_second: this.options.defaultMsPerSecond,
      output_seconds_per_task: this.options.defaultSecondsPerTask,
      turnaround_ms: 0,
      tasks: 0,
      source: 'default',
    };
  }

  /** Every kind observed so far (for stats), and `all`. */
  async list(): Promise<ProcessingFigure[]> {
    const figures = await this.figures();
    const kinds = Object.keys(figures).filter((k) => (figures[k]?.n ?? 0) > 0);
    if (!kinds.includes('all')) kinds.push('all');
    return Promise.all(
      kinds.sort().map(async (kind) => {
        if (kind === 'all') return this.figure('all');
        const [resolution, turbo] = kind.split('|') as [string, string];
        return this.figure({ resolution, turbo: turbo === 'turbo' });
      }),
    );
  }

  /** The expected provider time of one task of this kind and length (ms). */
  async expectedMs(task: TaskKind, seconds: number): Promise<number> {
    const f = await this.figure(task);
    return f.ms_per_output_second * Math.max(seconds, 0);
  }
}
