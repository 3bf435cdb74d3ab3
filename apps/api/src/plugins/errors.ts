import { AppError, isAppError } from '@recast/core/errors';
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

function clientError(statusCode: number, err: Error, bodyLimit: number | undefined): AppError {
  if (statusCode === 413) {
    const message =
      (err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE' && bodyLimit !== undefined
        ? `the request body is larger than ${bodyLimit} bytes`
        : err.message;
    return new AppError('PAYLOAD_TOO_LARGE', message, { statusCode, issues: [{ path: '(body)', message }] });
  }
  if (statusCode === 415) {
    return new AppError('UNSUPPORTED_MEDIA_TYPE', err.message, {
      statusCode,
      issues: [{ path: 'content-type', message: err.message }],
    });
  }
  return new AppError('VALIDATION_FAILED', err.message, { statusCode });
}

/**
 * One error shape for every route: `{error: {code, message, issues?}}` with a stable code.
 * Redis being unreachable (the producer connection fails fast) becomes a 503 the client can retry.
 */
export const errorsPlugin = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((err: FastifyError | AppError | Error, request, reply) => {
    let error: AppError;
    if (isAppError(err)) {
      error = err;
    } else if ('validation' in err && err.validation) {
      error = new AppError('VALIDATION_FAILED', err.message, { statusCode: 400 });
    } else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
      // Fastify's (and @fastify/multipart's) own client errors: a body over its limit, a content
      // type no route reads, a form past its part limits.
      error = clientError(err.statusCode, err, request.routeOptions.bodyLimit);
    } else if (
      // A failover adds its own: a write that reached a node just demoted (READONLY), a promoted
      // replica still loading, sentinels with no primary to name yet.
      /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|enableOfflineQueue|max retries per request|^READONLY|^LOADING|^MASTERDOWN|^NOREPLICAS|All sentinels are unreachable/i.test(
        err.message,
      )
    ) {
      error = new AppError('REDIS_UNAVAILABLE', 'storage is unavailable; retry shortly', {
        statusCode: 503,
        retryable: true,
        cause: err,
      });
    } else {
      error = new AppError('INTERNAL', 'internal error', { statusCode: 500, cause: err });
    }
    if (error.statusCode >= 500) request.log.error({ err }, 'request failed');
    if (error.retryable && error.statusCode >= 500) {
      // A provider quota with no room says when it has: the client need not guess.
      const after = (error.details as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
      const seconds = typeof after === 'number' && after > 0 ? Math.ceil(after / 1000) : 1;
      void reply.header('retry-after', String(seconds));
    }
    return reply.status(error.statusCode).send({ error: error.toJSON() });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` },
    }),
  );
});
