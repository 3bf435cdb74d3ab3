import type { ChainableCommander, Redis } from 'ioredis';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import { loadLua } from '../infra/lua.js';
import { decodeRecord, encodeFields, type JobRecord } from './record.js';
import { allowedFrom, type JobState } from './states.js';

export type TransitionResult =
  | { ok: true; from: JobState; state: JobState; version: number }
  | { ok: false; state: JobState; version: number };

export interface TransitionOptions {
  /** Only move when the record's attempt equals this (guards against a stale attempt's update). */
  attempt?: number;
  /** Override the default allowed-from set (still a compare-and-set). */
  from?: readonly JobState[];
  /**
   * Only move when the record holds no task id or this one: the move attaches this task, and a
   * task attached by a faster update (a webhook overtaking the dispatch) is never replaced.
   */
  task?: string;
  now?: Date;
}

type TransitionReply = [1, JobState, number] | [0, JobState, number] | [-1];

interface JobRedis extends Redis {
  recastCreate(key: string, eventsMinId: string, ...fields: string[]): Promise<number>;
  recastIndex(numKeys: number, ...keys: string[]): Promise<number>;
  recastAnnotate(
    key: string,
    state: string,
    taskId: string,
    now: string,
    ...fields: string[]
  ): Promise<number>;
  recastTransition(
    key: string,
    index: string,
    to: string,
    from: string,
    now: string,
    attempt: string,
    reconcileAt: string,
    eventsMinId: string,
    task: string,
    reconcileFloorAt: string,
    ...fields: string[]
  ): Promise<TransitionReply>;
  recastClaim(
    key: string,
    op: 'claim' | 'ended' | 'next',
    attempt: string,
    dispatchId: string,
    now: string,
  ): Promise<number>;
  recastDuplicate(key: string, taskId: string, microUsd: string, now: string): Promise<number>;
  recastKeepTrace(key: string, traceparent: string): Promise<number>;
  recastForgetReconcile(index: string, job: string, ...waitingStates: string[]): Promise<number>;
}

/**
 * How long a job may wait on the provider in each state before the reconciler looks at it: a
 * lost webhook is found this long after the last move, at the latest.
 */
export type ReconcileDelays = Record<'submitting' | 'submitted' | 'running' | 'cancelling', number>;

export const DEFAULT_RECONCILE_DELAYS: ReconcileDelays = {
  // A dispatch that died mid-submit: longer than a provider call may take.
  submitting: 120_000,
  submitted: 300_000,
  running: 300_000,
  cancelling: 60_000,
};

/** How long job and batch events stay in a tenant's stream (GET /v1/events resumes within it). */
export const DEFAULT_EVENT_RETENTION_MS = 24 * 3600_000;

/** Recast's job records in Redis: create, read, and compare-and-set state transitions. */
export class JobStore {
  private readonly redis: JobRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly reconcileDelays: ReconcileDelays = DEFAULT_RECONCILE_DELAYS,
    private readonly eventRetentionMs: number = DEFAULT_EVENT_RETENTION_MS,
    /** The deadline of a job that gives no `timeout_seconds` (JOB_TIMEOUT_SECONDS); 0: none. */
    private readonly jobTimeoutSeconds = 0,
    /** The soonest a task overdue against its expected duration is polled after a move (RECONCILE_MIN_AFTER_MS). */
    private readonly reconcileFloorMs = 30_000,
  ) {
    if (!('recastTransition' in redis)) {
      redis.defineCommand('recastTransition', loadLua(new URL('./lua/transition-2.lua', import.meta.url)));
      redis.defineCommand('recastCreate', loadLua(new URL('./lua/create-1.lua', import.meta.url)));
      redis.defineCommand('recastIndex', loadLua(new URL('./lua/index-n.lua', import.meta.url)));
      redis.defineCommand('recastAnnotate', loadLua(new URL('./lua/annotate-1.lua', import.meta.url)));
      redis.defineCommand('recastClaim', loadLua(new URL('./lua/claim-1.lua', import.meta.url)));
      redis.defineCommand('recastDuplicate', loadLua(new URL('./lua/duplicate-1.lua', import.meta.url)));
      redis.defineCommand('recastKeepTrace', loadLua(new URL('./lua/keep-trace-1.lua', import.meta.url)));
      redis.defineCommand(
        'recastForgetReconcile',
        loadLua(new URL('./lua/forget-reconcile-2.lua', import.meta.url)),
      );
    }
    this.redis = redis as JobRedis;
  }

  /** A MULTI on the store's connection (its Lua commands defined), for writes that go together. */
  multi(): ChainableCommander {
    return this.redis.multi();
  }

  /** Queue the record's creation on a MULTI (see createAndEnqueue); the reply is 1 created, 0 exists. */
  createIn(multi: ChainableCommander, record: JobRecord): void {
    (multi as unknown as JobRedis).recastCreate(
      this.keys.job(record.id),
      this.eventsMinId(),
      ...Object.entries(encodeFields(this.withDefaults(record))).flat(),
    );
  }

  /** A new record with this deployment's defaults filled in (its deadline), as it is stored. */
  withDefaults(record: JobRecord): JobRecord {
    return record.timeout_seconds === undefined && this.jobTimeoutSeconds > 0
      ? { ...record, timeout_seconds: this.jobTimeoutSeconds }
      : record;
  }

  /** Queue the listing of jobs created unlisted (a committed batch's rows; see index-n.lua). */
  indexIn(multi: ChainableCommander, jobIds: readonly string[]): void {
    if (jobIds.length > 0)
      (multi as unknown as JobRedis).recastIndex(jobIds.length, ...jobIds.map((id) => this.keys.job(id)));
  }

  /** Queue an event on a tenant's stream (batch events from outside a transition), trimmed by age. */
  eventIn(multi: ChainableCommander, tenant: string, fields: Record<string, string>): void {
    multi.xadd(this.keys.events(tenant), 'MINID', this.eventsMinId(), '*', ...Object.entries(fields).flat());
  }

  private eventsMinId(now = Date.now()): string {
    return String(Math.max(0, now - this.eventRetentionMs));
  }

  async create(record: JobRecord): Promise<void> {
    const fields = Object.entries(encodeFields(this.withDefaults(record))).flat();
    // One round trip, and a colliding id can never overwrite another job's record.
    const created = await this.redis.recastCreate(this.keys.job(record.id), this.eventsMinId(), ...fields);
    if (created === 0) throw new AppError('CONFLICT', `job ${record.id} already exists`, { statusCode: 409 });
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const hash = await this.redis.hgetall(this.keys.job(jobId));
    if (!hash.state) return undefined;
    return decodeRecord(hash);
  }

  /** Jobs whose reconcile time has come, oldest first (O(log n + m), no scan). */
  async dueForReconcile(now: number, max: number): Promise<string[]> {
    const keys = await this.redis.zrangebyscore(this.keys.reconcile(), '-inf', now, 'LIMIT', 0, max);
    const prefix = this.keys.job('');
    return keys.map((k) => k.slice(prefix.length));
  }

  /**
   * Every job waiting on the provider is due now (only brought forward, never pushed back): after
   * Redis was unreachable, the webhooks it refused meanwhile are not sent again, and a job must not
   * sit out its whole RECONCILE_AFTER_MS for one. The reconcile passes take them in order, within
   * the reads quota. Answers how many were brought forward.
   */
  async reconcileAllNow(now = Date.now()): Promise<number> {
    const members = await this.redis.zrangebyscore(this.keys.reconcile(), `(${now}`, '+inf');
    for (let i = 0; i < members.length; i += 500) {
      const pipeline = this.redis.pipeline();
      for (const member of members.slice(i, i + 500))
        pipeline.zadd(this.keys.reconcile(), 'XX', 'LT', now, member);
      await pipeline.exec();
    }
    return members.length;
  }

  /** Look at a job again after `delayMs` (unless a transition moves it first). */
  async reconcileLater(jobId: string, delayMs: number, now = Date.now()): Promise<void> {
    await this.redis.zadd(this.keys.reconcile(), 'XX', now + delayMs, this.keys.job(jobId));
  }

  /**
   * Drop a job from the reconciliation index: it is not waiting on the provider, as its record
   * says in Redis at the time of the removal (forget-reconcile-2.lua), whatever the caller read.
   * Answers whether it was dropped.
   */
  async forgetReconcile(jobId: string): Promise<boolean> {
    const waiting = Object.keys(this.reconcileDelays);
    return (
      (await this.redis.recastForgetReconcile(this.keys.reconcile(), this.keys.job(jobId), ...waiting)) === 1
    );
  }

  /** Keep the job's trace context (see keep-trace-1.lua): the first one kept stays. */
  async keepTrace(jobId: string, traceparent: string): Promise<void> {
    await this.redis.recastKeepTrace(this.keys.job(jobId), traceparent);
  }

  /** What a job's spans need from its record: its kept trace context and its ids. */
  async traceOf(jobId: string): Promise<{ traceparent?: string; tenant?: string; batchId?: string }> {
    const [traceparent, tenant, batchId] = await this.redis.hmget(
      this.keys.job(jobId),
      'traceparent',
      'tenant',
      'batch_id',
    );
    return {
      ...(traceparent ? { traceparent } : {}),
      ...(tenant ? { tenant } : {}),
      ...(batchId ? { batchId } : {}),
    };
  }

  async exists(jobId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.job(jobId), 'state')) === 1;
  }

  /** Best-effort removal of a record that never became visible (its enqueue failed). */
  async remove(jobId: string): Promise<void> {
    await this.redis.del(this.keys.job(jobId));
  }

  /**
   * Move a job to `to` if (and only if) it is in a state that may precede it, writing `fields` in
   * the same atomic step. Fields set to `null` are deleted.
   */
  async transition(
    jobId: string,
    to: JobState,
    fields: Partial<Record<keyof JobRecord, string | number | null>> = {},
    options: TransitionOptions = {},
  ): Promise<TransitionResult> {
    const reply = await this.redis.recastTransition(...this.transitionArgs(jobId, to, fields, options));
    return JobStore.transitionResult(jobId, to, reply);
  }

  /**
   * Write fields (null deletes) on a job that is still in `when.state` on `when.taskId`, without
   * moving it; false when it has moved on (or never existed). For facts found after a terminal
   * state, such as a kept output.
   */
  async annotate(
    jobId: string,
    when: { state: JobState; taskId: string },
    fields: Partial<Record<keyof JobRecord, string | number | null>>,
    now = new Date(),
  ): Promise<boolean> {
    const args: string[] = [];
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      if (key === 'state' || key === 'version' || key === 'updated_at' || key === 'task_id') {
        throw new AppError('INTERNAL', `field ${key} cannot be annotated`);
      }
      args.push(key, value === null ? '' : String(value));
    }
    const reply = await this.redis.recastAnnotate(
      this.keys.job(jobId),
      when.state,
      when.taskId,
      now.toISOString(),
      ...args,
    );
    return reply === 1;
  }

  /**
   * The submit claim of an attempt (see claim-1.lua): `claim` right before a dispatch sends the
   * attempt's task, `ended` when a POST whose answer was lost has ended. False when the job is no
   * longer `submitting` that attempt with no task (a settle attached one: the claim is revoked),
   * or another dispatch holds it.
   */
  async claimSubmit(
    jobId: string,
    op: 'claim' | 'ended',
    attempt: number,
    dispatchId: string,
    now = new Date(),
  ): Promise<boolean> {
    const reply = await this.redis.recastClaim(
      this.keys.job(jobId),
      op,
      String(attempt),
      dispatchId,
      now.toISOString(),
    );
    return reply === 1;
  }

  /**
   * Move a `submitting` job whose attempt found no task at the provider to the next attempt,
   * claimed by this dispatch (see claim-1.lua): an attempt is POSTed once, so a late task of the
   * earlier one can never pass for this one's. The new attempt, or undefined when the job moved on.
   */
  async nextAttempt(
    jobId: string,
    attempt: number,
    dispatchId: string,
    now = new Date(),
  ): Promise<number | undefined> {
    const reply = await this.redis.recastClaim(
      this.keys.job(jobId),
      'next',
      String(attempt),
      dispatchId,
      now.toISOString(),
    );
    return reply > 1 ? reply : undefined;
  }

  /** Note a billed second task on the job (see duplicate-1.lua); false when noted already. */
  async noteDuplicate(jobId: string, taskId: string, microUsd: number, now = new Date()): Promise<boolean> {
    const reply = await this.redis.recastDuplicate(
      this.keys.job(jobId),
      taskId,
      String(microUsd),
      now.toISOString(),
    );
    return reply === 1;
  }

  /** Queue a transition on a MULTI; read its reply with JobStore.transitionResult. */
  transitionIn(
    multi: ChainableCommander,
    jobId: string,
    to: JobState,
    fields: Partial<Record<keyof JobRecord, string | number | null>> = {},
    options: TransitionOptions = {},
  ): void {
    (multi as unknown as JobRedis).recastTransition(...this.transitionArgs(jobId, to, fields, options));
  }

  static transitionResult(jobId: string, to: JobState, reply: unknown): TransitionResult {
    const r = reply as TransitionReply;
    if (r[0] === -1) throw new AppError('NOT_FOUND', `job ${jobId} not found`, { statusCode: 404 });
    if (r[0] === 1) return { ok: true, from: r[1], state: to, version: Number(r[2]) };
    return { ok: false, state: r[1], version: Number(r[2]) };
  }

  private transitionArgs(
    jobId: string,
    to: JobState,
    fields: Partial<Record<keyof JobRecord, string | number | null>>,
    options: TransitionOptions,
  ): [string, string, string, string, string, string, string, string, string, string, ...string[]] {
    const from = options.from ?? allowedFrom(to);
    const args: string[] = [];
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      if (key === 'state' || key === 'version' || key === 'updated_at') {
        throw new AppError('INTERNAL', `field ${key} is managed by the transition itself`);
      }
      args.push(key, value === null ? '' : String(value));
    }
    const now = options.now ?? new Date();
    const delay = (this.reconcileDelays as Partial<Record<JobState, number>>)[to];
    return [
      this.keys.job(jobId),
      this.keys.reconcile(),
      to,
      from.join(','),
      now.toISOString(),
      options.attempt === undefined ? '' : String(options.attempt),
      delay === undefined ? '' : String(now.getTime() + delay),
      this.eventsMinId(now.getTime()),
      options.task ?? '',
      to === 'submitted' || to === 'running' ? String(now.getTime() + this.reconcileFloorMs) : '',
      ...args,
    ];
  }
}
