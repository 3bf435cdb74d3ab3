import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import type { JobState } from '../model/states.js';
import type { ProviderGate } from '../provider/provider-gate.js';
import type { FairQueue } from '../scheduling/fair-queue.js';
import { type Eta, estimate, type PipelineSnapshot, type WorkToEstimate } from './eta.js';
import type { ProcessingFigure, ProcessingTimes } from './processing.js';

export interface ForecastDeps {
  redis: Redis;
  keys: Keys;
  gate: Pick<ProviderGate, 'pressure' | 'limits'>;
  fair: Pick<FairQueue, 'depths' | 'weights' | 'position'>;
  /** The jobs of the dispatch steps handed to BullMQ and not yet started (waiting, delayed). */
  handed: () => Promise<string[]>;
  processing: ProcessingTimes;
}

interface Owner {
  tenant?: string;
  batchId?: string;
}

interface Pipeline {
  base: Omit<PipelineSnapshot, 'inFlight' | 'handed'>;
  inFlight: Array<{ since: number; expectedMs: number } & Owner>;
  /** Whose jobs the dispatch steps already handed over are: a work's own are among its unsent. */
  handed: Owner[];
  all: ProcessingFigure;
}

/** What forecasts need of a batch: the BatchRecord's fields and the per-state counters. */
export interface BatchShape {
  id: string;
  tenant: string;
  total: number;
  estimated_ms?: Record<string, number>;
}

const TERMINAL_OR_GONE: JobState[] = ['completed', 'failed', 'cancelled', 'expired'];

/**
 * Reads what estimate() needs from Redis, once per second at most per process however many
 * batches a page lists or dashboards poll (a fixed number of reads, plus one for each task in
 * flight, which the in-flight cap bounds), and estimates batches, backlogs and quotes from it.
 */
export class Forecaster {
  private cached: { at: number; value: Promise<Pipeline> } | undefined;
  /** Where each batch's last row stands in its line, for as long as the pipeline snapshot. */
  private readonly positions = new Map<string, { at: number; ahead: number }>();

  constructor(
    private readonly deps: ForecastDeps,
    private readonly cacheMs = 1_000,
  ) {}

  private pipeline(): Promise<Pipeline> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < this.cacheMs) return this.cached.value;
    const value = this.read();
    this.cached = { at: now, value };
    value.catch(() => {
      if (this.cached?.value === value) this.cached = undefined;
    });
    return value;
  }

  private async read(): Promise<Pipeline> {
    const { redis, keys, gate, fair, processing } = this.deps;
    const [pressure, lines, weights, handed, all] = await Promise.all([
      gate.pressure(),
      fair.depths(),
      fair.weights(),
      this.deps.handed(),
      processing.figure('all'),
    ]);
    const reads = redis.pipeline();
    for (const t of pressure.inFlight)
      reads.hmget(keys.job(t.jobId), 'tenant', 'batch_id', 'input', 'estimate_seconds');
    for (const jobId of handed) reads.hmget(keys.job(jobId), 'tenant', 'batch_id');
    const replies = pressure.inFlight.length + handed.length > 0 ? ((await reads.exec()) ?? []) : [];
    const owners: Owner[] = handed.map((_, i) => {
      const [tenant, batchId] = (replies[pressure.inFlight.length + i]?.[1] ?? []) as (string | null)[];
      return { ...(tenant ? { tenant } : {}), ...(batchId ? { batchId } : {}) };
    });
    const inFlight = await Promise.all(
      pressure.inFlight.map(async (t, i) => {
        const [tenant, batchId, input, seconds] = (replies[i]?.[1] ?? []) as (string | null)[];
        let kind = { resolution: '720p', turbo: false };
        try {
          const parsed = input ? (JSON.parse(input) as { resolution?: string; turbo?: boolean }) : {};
          kind = { resolution: parsed.resolution ?? '720p', turbo: parsed.turbo === true };
        } catch {
          // An unreadable input is estimated like the mean task.
        }
        const s = seconds ? Number(seconds) : all.output_seconds_per_task;
        return {
          since: t.since,
          expectedMs: (await processing.figure(kind)).ms_per_output_second * s + all.turnaround_ms,
          ...(tenant ? { tenant } : {}),
          ...(batchId ? { batchId } : {}),
        };
      }),
    );
    return {
      base: {
        now: pressure.now,
        submitsPerWindow: gate.limits.submitsPerWindow,
        windowMs: gate.limits.windowMs,
        maxInFlight: gate.limits.maxInFlight,
        pausedUntil: pressure.pausedUntil,
        inFlightCount: pressure.inFlightCount,
        lines,
        weights,
        meanTask: { msPerSecond: all.ms_per_output_second, seconds: all.output_seconds_per_task },
        turnaroundMs: all.turnaround_ms,
      },
      inFlight,
      handed: owners,
      all,
    };
  }

  private snapshot(p: Pipeline, own: (t: Owner) => boolean): PipelineSnapshot {
    // The clock moves on while the cached read serves: tasks are a little further along.
    const now = Math.max(p.base.now, Date.now());
    return {
      ...p.base,
      now,
      inFlight: p.inFlight.map((t) => ({ since: t.since, expectedMs: t.expectedMs, own: own(t) })),
      // The work's own handed-over jobs are counted among its unsent ones already.
      handed: p.handed.filter((h) => !own(h)).length,
    };
  }

  /** Processing per output second for a mix of resolutions (output seconds by resolution). */
  private async mix(secondsByResolution: Record<string, number>, all: ProcessingFigure) {
    let seconds = 0;
    let weighted = 0;
    let source: 'observed' | 'default' = 'observed';
    let tasks = Number.POSITIVE_INFINITY;
    for (const [resolution, s] of Object.entries(secondsByResolution)) {
      if (!(s > 0)) continue;
      const f = await this.deps.processing.figure({ resolution });
      seconds += s;
      weighted += s * f.ms_per_output_second;
      if (f.source === 'default') source = 'default';
      tasks = Math.min(tasks, f.tasks);
    }
    if (seconds === 0) return { msPerSecond: all.ms_per_output_second, source: all.source, tasks: all.tasks };
    return { msPerSecond: weighted / seconds, source, tasks: Number.isFinite(tasks) ? tasks : 0 };
  }

  /** A live batch's finish; null once it has finished (or is still being uploaded). */
  async batch(batch: BatchShape, counts: Record<JobState, number>): Promise<Eta | null> {
    const live = Object.entries(counts).some(
      ([state, n]) => n > 0 && !TERMINAL_OR_GONE.includes(state as JobState),
    );
    if (!live) return null;
    const p = await this.pipeline();
    const { redis, keys, fair } = this.deps;
    const unsent = (counts.queued ?? 0) + (counts.waiting_budget ?? 0);
    const parked = counts.waiting_budget ?? 0;
    let parkedOn: WorkToEstimate['parkedOn'];
    if (parked > 0) {
      const [first] = await redis.zrange(`${keys.parkedPrefix()}${batch.tenant}|${batch.id}`, 0, 0);
      const by = first ? await redis.hget(keys.job(first), 'budget_blocked_by') : null;
      if (by) {
        const [scope, window] = by.split('|');
        parkedOn = { scope: scope ?? null, window: window ?? null };
      }
    }
    let ownLineAhead = 0;
    if (unsent > 0) {
      // LPOS walks the line: once per batch per snapshot, however many poll it.
      const known = this.positions.get(batch.id);
      if (known && Date.now() - known.at < this.cacheMs) ownLineAhead = known.ahead;
      else {
        const [last] = await redis.zrange(keys.batchJobs(batch.id), -1, -1);
        const at = last ? await fair.position(batch.tenant, last) : null;
        ownLineAhead = at === null ? unsent : at + 1;
        if (this.positions.size > 10_000) this.positions.clear();
        this.positions.set(batch.id, { at: Date.now(), ahead: ownLineAhead });
      }
    }
    const seconds = Object.fromEntries(
      Object.entries(batch.estimated_ms ?? {}).map(([r, ms]) => [r, ms / 1000]),
    );
    const totalSeconds = Object.values(seconds).reduce((a, b) => a + b, 0);
    const kind = await this.mix(seconds, p.all);
    return estimate(
      this.snapshot(p, (t) => t.batchId === batch.id),
      {
        tenant: batch.tenant,
        unsent,
        parked,
        ...(parkedOn ? { parkedOn } : {}),
        ownLineAhead,
        secondsPerJob:
          batch.total > 0 && totalSeconds > 0 ? totalSeconds / batch.total : p.all.output_seconds_per_task,
        msPerSecond: kind.msPerSecond,
        processing: { source: kind.source, tasks: kind.tasks },
      },
    );
  }

  /**
   * When everything in line now is done: one tenant's backlog (its line, its tasks in flight, its
   * parked jobs), or the whole deployment's (tenant undefined).
   */
  async backlog(tenant: string | undefined, parked: number): Promise<Eta> {
    const p = await this.pipeline();
    const lines = p.base.lines;
    const all = p.all;
    // Its jobs handed to BullMQ are out of its line but not yet sent.
    const ownHanded = p.handed.filter((h) => tenant === undefined || h.tenant === tenant).length;
    const work: WorkToEstimate = {
      tenant: tenant ?? '*',
      unsent:
        (tenant === undefined ? Object.values(lines).reduce((a, b) => a + b, 0) : (lines[tenant] ?? 0)) +
        ownHanded +
        parked,
      parked,
      ownLineAhead: tenant === undefined ? 0 : (lines[tenant] ?? 0) + ownHanded,
      secondsPerJob: all.output_seconds_per_task,
      msPerSecond: all.ms_per_output_second,
      processing: { source: all.source, tasks: all.tasks },
    };
    if (tenant === undefined) {
      // Everything is the work: no other tenant's jobs are interleaved, every task in flight is its own.
      return estimate({ ...this.snapshot(p, () => true), lines: {} }, work);
    }
    return estimate(
      this.snapshot(p, (t) => t.tenant === tenant),
      work,
    );
  }

  /** When a manifest submitted now would be done: its rows behind the tenant's line. */
  async quote(
    tenant: string,
    rows: number,
    secondsByResolution: Record<string, number>,
  ): Promise<Eta | null> {
    if (rows === 0) return null;
    const p = await this.pipeline();
    const kind = await this.mix(secondsByResolution, p.all);
    const totalSeconds = Object.values(secondsByResolution).reduce((a, b) => a + b, 0);
    const inLine = p.base.lines[tenant] ?? 0;
    return estimate(
      this.snapshot(p, () => false),
      {
        tenant,
        unsent: rows,
        parked: 0,
        ownLineAhead: inLine + rows,
        secondsPerJob: totalSeconds > 0 ? totalSeconds / rows : p.all.output_seconds_per_task,
        msPerSecond: kind.msPerSecond,
        processing: { source: kind.source, tasks: kind.tasks },
      },
    );
  }

  /** The processing figures behind every estimate (for stats). */
  figures(): Promise<ProcessingFigure[]> {
    return this.deps.processing.list();
  }
}
