/**
 * The HTTP contract: what the public API answers (zod schemas, from which the OpenAPI document is
 * generated) and the enums clients share. Pure: no Redis, no I/O, so the CLI and the dashboard
 * take it as it is.
 */

export { ROLES, type Role } from '../model/access.js';
export {
  BATCH_STATUSES,
  type BatchStatus,
  FINISHED_BATCH_STATUSES,
  JOB_STATES,
  type JobState,
  TERMINAL_STATES,
} from '../model/states.js';
export { BUDGET_WINDOWS, type BudgetWindow } from '../money/scopes.js';
export * from './job-timeline.js';
export * from './job-view.js';
export * from './responses.js';
