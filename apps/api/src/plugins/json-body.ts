import { AppError } from '@recast/core/errors';
import { readJsonBytes } from '@recast/core/model';
import type { FastifyInstance } from 'fastify';

/**
 * Every JSON body is read by one rule (core model/json-input.ts), the one manifest rows are read
 * by: invalid UTF-8 refused naming the field it sits in (Fastify's parser would store U+FFFD),
 * `__proto__` a reserved key named with its path (Fastify's answers "Body is not valid JSON"),
 * no recursion, and every refusal in the API's error shape. Called on the root instance, so it
 * applies to every route.
 */
export function useJsonBodyRule(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    const bytes = body as Buffer;
    if (bytes.length === 0) {
      done(
        new AppError('VALIDATION_FAILED', 'the request body is empty: send a JSON object', {
          statusCode: 400,
          issues: [{ path: '(body)', message: 'empty' }],
        }),
      );
      return;
    }
    const read = readJsonBytes(bytes);
    if (read.ok) {
      done(null, read.value);
      return;
    }
    done(
      new AppError('VALIDATION_FAILED', `invalid request body: ${read.issue.path}: ${read.issue.message}`, {
        statusCode: 400,
        issues: [read.issue],
      }),
    );
  });
}
