export type { Body } from './body.js';
export {
  type CallOptions,
  createRecastClient,
  type FetchLike,
  FINISHED_BATCH_STATUSES,
  type ManifestOptions,
  RecastClient,
  type RecastClientOptions,
  TERMINAL_JOB_STATES,
} from './client.js';
export {
  type Issue,
  RecastApiError,
  RecastError,
  RecastNetworkError,
  RecastUnexpectedResponseError,
} from './errors.js';
export type { FollowEventsOptions, RecastEvent } from './events.js';
export type { components, paths } from './generated/api.js';
export { type Page, pages } from './pages.js';
export { isTransient, type WaitOptions } from './poll.js';
export type * from './types.js';
