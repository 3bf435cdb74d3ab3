import type { z } from 'zod';
import { AppError, type FieldIssue } from './app-error.js';

/** Flatten zod issues into `{path, message}` pairs whose path names the field (`images.2`). */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    // zod reports unknown keys on the parent object: name each key so the client sees which one.
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys;
      return {
        path: [path, keys[0]].filter(Boolean).join('.'),
        message: `unknown field${keys.length > 1 ? 's' : ''}: ${keys.join(', ')}`,
      };
    }
    return { path: path || '(root)', message: issue.message };
  });
}

/** Parse with a schema, or throw a 400 `VALIDATION_FAILED` whose message names the first bad field. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what = 'request body',
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = fieldIssues(result.error);
  const first = issues[0];
  const summary = first ? `${first.path}: ${first.message}` : 'invalid';
  throw new AppError('VALIDATION_FAILED', `invalid ${what}: ${summary}`, { statusCode: 400, issues });
}
