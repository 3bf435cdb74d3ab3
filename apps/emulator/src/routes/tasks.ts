import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseOrThrow } from '../app-input.js';
import { type EmulatorContext, sendData } from '../context.js';
import { ProblemError } from '../problem.js';
import type { TaskRecord } from '../tasks/task-record.js';
import { fullView, slimView, statusView } from '../tasks/views.js';
import { pageTasks } from './list-tasks.js';
import { providerScope } from './provider-guard.js';
import { streamTask } from './stream.js';

const IdParams = z.object({ id: z.string() });

export function requireTask(ctx: EmulatorContext, params: unknown): TaskRecord {
  const { id } = parseOrThrow(IdParams, params, 'params');
  const task = ctx.engine.get(id);
  if (!task) throw new ProblemError(404, 'not_found', `task not found: ${id}`);
  return task;
}

export function registerTaskRoutes(app: FastifyInstance, ctx: EmulatorContext): void {
  providerScope(app, ctx, 'get', (scope) => {
    scope.get('/tasks/:id', async (request, reply) => {
      return sendData(ctx, reply, fullView(requireTask(ctx, request.params), ctx.faults()));
    });

    scope.get('/tasks/:id/status', async (request, reply) => {
      return sendData(ctx, reply, statusView(requireTask(ctx, request.params), ctx.faults()));
    });

    // Cancelling a finished task is a no-op that still succeeds, like the provider's.
    scope.post('/tasks/:id/cancel', async (request, reply) => {
      const task = requireTask(ctx, request.params);
      ctx.engine.cancel(task.id);
      return sendData(ctx, reply, slimView(task, ctx.faults()));
    });

    scope.post('/tasks/list', async (request, reply) => {
      return sendData(ctx, reply, pageTasks(ctx, request.body));
    });

    scope.get('/tasks/:id/stream', async (request, reply) => {
      return streamTask(ctx, requireTask(ctx, request.params), reply);
    });
  });
}
