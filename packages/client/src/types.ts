import type { components, paths } from './generated/api.js';

type Schemas = components['schemas'];

/** A job as the API shows it (GET /v1/jobs/:id). */
export type Job = Schemas['Job'];
export type JobTimeline = Schemas['JobTimeline'];
export type Batch = Schemas['Batch'];
/** A created batch: the batch, with the rows refused in partial mode. */
export type BatchAccepted = Schemas['BatchAccepted'];
export type BatchQuote = Schemas['BatchQuote'];
export type BatchCancelled = Schemas['BatchCancelled'];
export type BatchRetried = Schemas['BatchRetried'];
export type Budget = Schemas['Budget'];
export type ApiKey = Schemas['ApiKey'];
export type ApiKeyCreated = Schemas['ApiKeyCreated'];
export type UploadedFile = Schemas['File'];
export type Limits = Schemas['Limits'];
export type Stats = Schemas['Stats'];
export type ErrorBody = Schemas['Error'];
export type JobState = Job['state'];
export type BatchStatus = Batch['status'];

/** The JSON body of POST /v1/jobs. */
export type JobRequest = paths['/v1/jobs']['post']['requestBody']['content']['application/json'];
export type BatchParams = NonNullable<paths['/v1/batches']['post']['parameters']['query']>;
export type JobsQuery = Omit<NonNullable<paths['/v1/jobs']['get']['parameters']['query']>, 'cursor'>;
export type BatchesQuery = Omit<NonNullable<paths['/v1/batches']['get']['parameters']['query']>, 'cursor'>;
export type BatchJobsQuery = Omit<
  NonNullable<paths['/v1/batches/{id}/jobs']['get']['parameters']['query']>,
  'cursor'
>;
