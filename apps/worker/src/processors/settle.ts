import type { Engine } from '@recast/core/engine';
import { SettlePayloadSchema } from '@recast/core/model';
import type { Job, Worker } from 'bullmq';
import { carryOut } from './outcome.js';

/**
 * The settle queue carries provider updates (`job.settle`: confirm with GET /tasks/:id, move the
 * job, settle its money once) and cancel requests (`job.cancel`: ask the provider to cancel).
 */
export function createSettleProcessor(engine: Engine, worker: () => Worker) {
  return async (job: Job, token?: string) =>
    carryOut(await engine.settle(SettlePayloadSchema.parse(job.data)), job, token, worker);
}

export function createCancelProcessor(engine: Engine, worker: () => Worker) {
  return async (job: Job, token?: string) =>
    carryOut(await engine.cancelAtProvider(job.data), job, token, worker);
}

/** `job.watch`: look for a late task of an abandoned attempt (and stop it), until the watch lapses. */
export function createWatchProcessor(engine: Engine, worker: () => Worker) {
  return async (job: Job, token?: string) =>
    carryOut(await engine.watchAttempt(job.data), job, token, worker);
}

type Step = (job: Job, token?: string) => Promise<unknown>;

/** One processor for the queue: the job's name picks the step. */
export function settleOrCancel(settle: Step, cancel: Step, watch: Step) {
  return (job: Job, token?: string) =>
    job.name === 'job.cancel'
      ? cancel(job, token)
      : job.name === 'job.watch'
        ? watch(job, token)
        : settle(job, token);
}
