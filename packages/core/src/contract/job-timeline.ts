import { z } from 'zod';
import type { JobRecord } from '../model/record.js';
import { JOB_STATES } from '../model/states.js';
import { TaskStatusNames } from '../provider/status.js';
import type { TaskTrail } from '../provider/task-trail.js';

const time = z.string().describe('ISO-8601 UTC');

/** The answer of `GET /v1/jobs/:id/timeline`: Recast's moves of the job, and the provider's of its task. */
export const JobTimelineSchema = z
  .strictObject({
    object: z.literal('job.timeline'),
    job_id: z.string(),
    state: z.enum(JOB_STATES),
    states: z
      .array(z.strictObject({ state: z.enum(JOB_STATES), at: time }))
      .describe(
        'every state the job entered, oldest first, written with each move (a job created before timelines were kept has none)',
      ),
    provider: z
      .strictObject({
        task_id: z.string(),
        status: z.enum(TaskStatusNames).nullable().describe('as the provider reported it at read_at'),
        events: z
          .array(z.strictObject({ status: z.enum(TaskStatusNames), at: time.nullable() }))
          .describe("the task's status moves at the provider"),
        logs: z
          .array(
            z.strictObject({
              at: time.nullable(),
              type: z.string().describe('build, run, serve, setup or task'),
              content: z.string(),
            }),
          )
          .describe("the task's logs at the provider"),
        error: z
          .string()
          .nullable()
          .describe('why the task could not be read (events and logs are then empty)'),
        read_at: time.describe('when this was read from the provider (reads are cached for a few seconds)'),
      })
      .nullable()
      .describe("the current attempt's provider task; null while the job has none"),
  })
  .meta({ id: 'JobTimeline' });

/** A job's timeline; `trail` is the provider's view of its task (absent while it has none). */
export function jobTimelineView(
  job: JobRecord,
  trail: TaskTrail | undefined,
): z.infer<typeof JobTimelineSchema> {
  return {
    object: 'job.timeline',
    job_id: job.id,
    state: job.state,
    states: job.timeline ?? [],
    provider: trail ?? null,
  };
}
