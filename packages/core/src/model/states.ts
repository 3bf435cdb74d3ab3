/**
 * The job state machine (ARCHITECTURE.md). It is ours to own: the allowed edges below are the
 * single source of truth, enforced atomically by transition-1.lua with compare-and-set, so a late
 * or duplicated provider update can never move a job backwards.
 *
 * queued → (waiting_budget ⇄ queued) → submitting → submitted → running → completed | failed,
 * cancelling → cancelled from any non-terminal state; a batch row still in line when its batch's
 * completion_window closes → expired (it never reached the provider).
 */
export const JOB_STATES = [
  'queued',
  'waiting_budget',
  'submitting',
  'submitted',
  'running',
  'completed',
  'failed',
  'cancelling',
  'cancelled',
  'expired',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set([
  'completed',
  'failed',
  'cancelled',
  'expired',
]);

export function isTerminalState(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}

/** to-state → the states it may be entered from. */
const ALLOWED_FROM: Record<JobState, readonly JobState[]> = {
  // Back in line: from the parking lot; after a refused submit; or, as a new attempt, after the
  // provider failed the task and the job allows provider retries (max_provider_retries).
  queued: ['waiting_budget', 'submitting', 'submitted', 'running'],
  waiting_budget: ['queued'],
  // `submitting` back to `queued` only when the provider refused the submit (nothing was accepted).
  submitting: ['queued'],
  // A webhook can overtake the dispatcher's own write of the task id, so the provider's view may
  // move a job from `submitting` straight to any later state.
  submitted: ['submitting'],
  running: ['submitting', 'submitted'],
  completed: ['submitting', 'submitted', 'running', 'cancelling'],
  failed: ['queued', 'waiting_budget', 'submitting', 'submitted', 'running', 'cancelling'],
  cancelling: ['submitting', 'submitted', 'running'],
  cancelled: ['queued', 'waiting_budget', 'submitting', 'submitted', 'running', 'cancelling'],
  // Only from the line: a row that reached the provider finishes normally.
  expired: ['queued', 'waiting_budget'],
};

export function allowedFrom(to: JobState): readonly JobState[] {
  return ALLOWED_FROM[to];
}

export function canTransition(from: JobState, to: JobState): boolean {
  return ALLOWED_FROM[to].includes(from);
}

/** A batch's status, derived from its rows' states (see batches/batch-store.ts). */
export const BATCH_STATUSES = [
  'validating',
  'queued',
  'in_progress',
  'completed',
  'completed_with_errors',
  'cancelling',
  'cancelled',
  // Finished, with rows still in line when its completion_window closed (the others ran).
  'expired',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** Batch statuses in which nothing moves any more (until a retry reopens the batch). */
export const FINISHED_BATCH_STATUSES: readonly BatchStatus[] = [
  'completed',
  'completed_with_errors',
  'cancelled',
  'expired',
];
