import { timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EmulatorContext } from '../context.js';
import { resolveDuration } from '../faults.js';
import { ProblemError } from '../problem.js';
import { type LimitGroup, rateLimitHeaders, retryAfterSeconds } from '../rate-limiter.js';

/**
 * Registers provider routes in their own scope behind what every provider call goes through:
 * injected latency, bearer auth, the rate-limit window of the group, then the random 429/500 dice.
 */
export function providerScope(
  app: FastifyInstance,
  ctx: EmulatorContext,
  group: LimitGroup,
  register: (scope: FastifyInstance) => void,
): void {
  app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => guard(ctx, group, request, reply));
    register(scope);
  });
}

async function guard(ctx: EmulatorContext, group: LimitGroup, request: FastifyRequest, reply: FastifyReply) {
  const faults = ctx.faults();
  const latency = resolveDuration(faults.latencyMs, () => ctx.prng.next());
  if (latency > 0) await sleep(latency);

  if (!authorized(request.headers.authorization, ctx.apiKey)) {
    throw new ProblemError(401, 'unauthorized', 'missing or invalid API key (Authorization: Bearer <key>)');
  }

  const decision = ctx.limiter.take(group);
  if (decision) {
    const headers = rateLimitHeaders(decision);
    reply.headers(headers);
    if (!decision.allowed) {
      const retryAfter = retryAfterSeconds(decision.resetAt, Date.now());
      throw new ProblemError(429, 'rate_limited', `rate limit exceeded for ${group} requests`, {
        ...headers,
        'retry-after': retryAfter,
      });
    }
  }

  if (faults.rateLimitedRate > 0 && ctx.prng.next() < faults.rateLimitedRate) {
    const resetAt = Date.now() + 1000;
    throw new ProblemError(429, 'rate_limited', 'rate limit exceeded (injected)', {
      ...(decision ? rateLimitHeaders({ ...decision, remaining: 0, resetAt }) : {}),
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(Math.ceil(resetAt / 1000)),
      'retry-after': '1',
    });
  }
  if (faults.serverErrorRate > 0 && ctx.prng.next() < faults.serverErrorRate) {
    throw new ProblemError(500, 'internal_error', 'internal server error (injected)');
  }
}

function authorized(header: string | undefined, apiKey: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  const token = Buffer.from(match?.[1]?.trim() ?? '');
  const expected = Buffer.from(apiKey);
  return token.length === expected.length && timingSafeEqual(token, expected);
}
