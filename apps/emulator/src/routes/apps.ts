import type { FastifyInstance } from 'fastify';
import {
  appInputSchema,
  DEFAULT_APP_VERSION,
  parseOrThrow,
  RunRequestSchema,
  resolveApp,
} from '../app-input.js';
import { baseUrlOf, drawFate, type EmulatorContext, sendData } from '../context.js';
import { ProblemError } from '../problem.js';
import { slimView } from '../tasks/views.js';
import { providerScope } from './provider-guard.js';

export function registerAppRoutes(app: FastifyInstance, ctx: EmulatorContext): void {
  const inputSchema = appInputSchema(ctx.maxReferenceImages);

  providerScope(app, ctx, 'run', (scope) => {
    scope.post('/apps/run', async (request, reply) => {
      const {
        app: appName,
        input: rawInput,
        ...rest
      } = parseOrThrow(RunRequestSchema, request.body ?? {}, '');
      const version = resolveApp(appName);
      const input = parseOrThrow(inputSchema, rawInput, 'input');
      const task = ctx.engine.submit(
        {
          rawInput,
          input,
          request: rest,
          appVersionId: version ?? DEFAULT_APP_VERSION,
          baseUrl: baseUrlOf(ctx, request),
        },
        drawFate(ctx),
      );
      ctx.stats.recordSubmit(ctx.engine.inFlight());
      request.log.info({ taskId: task.id, resolution: input.resolution }, 'task accepted');
      const { lostRunAnswerRate, duplicateRunRate } = ctx.faults();
      if (duplicateRunRate > 0 && ctx.prng.next() < duplicateRunRate) {
        // A provider bug (a retried request inside the provider): the same run becomes two tasks,
        // both billed, with the same webhook. The client only ever hears of the first.
        const twin = ctx.engine.submit(
          {
            rawInput,
            input,
            request: rest,
            appVersionId: version ?? DEFAULT_APP_VERSION,
            baseUrl: baseUrlOf(ctx, request),
          },
          drawFate(ctx),
        );
        ctx.stats.recordSubmit(ctx.engine.inFlight());
        request.log.warn({ taskId: twin.id, twinOf: task.id }, 'task accepted twice (injected)');
      }
      if (lostRunAnswerRate > 0 && ctx.prng.next() < lostRunAnswerRate) {
        // The task exists and runs (and bills), but its answer is lost on the way back, as when a
        // gateway times out after the origin accepted: the client cannot tell this from a refusal.
        throw new ProblemError(502, 'internal_error', 'upstream answer lost (injected)');
      }
      if (!rest.wait) return sendData(ctx, reply, slimView(task, ctx.faults()));

      // `wait: true` holds the request until the task ends; failed and cancelled answer 422.
      const done = await ctx.engine.waitTerminal(task);
      if (done.status === 'failed' || done.status === 'cancelled') {
        throw new ProblemError(
          422,
          'task_failed',
          `task ${done.id} ${done.status}: ${done.error ?? done.status}`,
        );
      }
      return sendData(ctx, reply, slimView(done, ctx.faults()));
    });
  });
}
