/** The provider: the inference API client (envelopes, errors, statuses, tasks, webhooks) and the gate in front of it. */
export { type Unwrapped, unwrapEnvelope } from './envelope.js';
export {
  createInferenceClient,
  DEFAULT_APP,
  type FileRecordRequest,
  InferenceClient,
  type InferenceClientConfig,
  InferenceClientConfigSchema,
  type InferenceClientOptions,
  type InferenceEndpoint,
  type ListFilter,
  type ListParams,
  type ProviderResponse,
  type RequestAdmission,
  type RequestTurn,
  type RunParams,
} from './inference-client.js';
export {
  classifyHttpStatus,
  InferenceError,
  type InferenceErrorOptions,
  isInferenceError,
  mayHaveReachedProvider,
  type ProviderErrorCode,
} from './inference-error.js';
export { type Admission, ProviderGate, type ProviderLimits } from './provider-gate.js';
export {
  ProviderQuota,
  QUOTA_OF_ENDPOINT,
  type QuotaGroup,
  type QuotaLimits,
  quotaAdmission,
} from './provider-quota.js';
export {
  DEFAULT_MAX_RETRY_AFTER_MS,
  RateLimitBackoff,
  type RateLimitInfo,
  readRateLimit,
  retryAfterMs,
} from './rate-limit.js';
export {
  isTerminalStatus,
  parseTaskStatus,
  type StatusNumbering,
  StatusNumberingSchema,
  statusFromNumber,
  statusToNumber,
  type TaskStatusName,
  TaskStatusNameSchema,
  TaskStatusNames,
} from './status.js';
export {
  billedSeconds,
  outputVideoUrl,
  type Task,
  type TaskEvent,
  type TaskList,
  type TaskLog,
  type TaskResult,
  type TaskStatusFields,
  type TaskStatusInfo,
  taskError,
} from './task.js';
export { type TaskTrail, type TaskTrailOptions, TaskTrails } from './task-trail.js';
export {
  parseWebhookPayload,
  type WebhookEnvelope,
  WebhookEnvelopeSchema,
  type WebhookTask,
  WebhookTaskSchema,
  type WebhookUpdate,
} from './webhook-payload.js';
export { belongsTo, verifyWebhookToken, webhookOwner, webhookToken, webhookUrl } from './webhook-token.js';
