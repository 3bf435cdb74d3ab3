import type { Engine } from '@recast/core/engine';
import { DispatchPayloadSchema } from '@recast/core/model';
import type { Job, Worker } from 'bullmq';
import { carryOut, lastTry } from './outcome.js';

/** `job.dispatch` (see the engine's dispatch): reserve, admit, claim, submit, record the task. */
export function createDispatchProcessor(engine: Engine, worker: () => Worker) {
  return async (job: Job, token?: string) => {
    const { jobId } = DispatchPayloadSchema.parse(job.data);
    const outcome = await engine.dispatch({ jobId, dispatchId: job.id ?? jobId, lastTry: lastTry(job) });
    return carryOut(outcome, job, token, worker);
  };
}
