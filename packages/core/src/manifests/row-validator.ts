import { AppError, type FieldIssue } from '../errors/app-error.js';
import { fieldIssues } from '../errors/zod-issues.js';
import type { createJobRequestSchema } from '../model/schema.js';
import type { ManifestItem, RawRow } from './types.js';

type JobRequestSchema = ReturnType<typeof createJobRequestSchema>;

const CUSTOM_ID_MAX = 64;

/**
 * Batch defaults are checked once, up front, as a partial job request: a bad default would
 * otherwise come back as the same error on every row. `custom_id` names one row, so it is no default.
 */
export function checkDefaults(schema: JobRequestSchema, defaults: Record<string, unknown> | undefined): void {
  if (defaults === undefined) return;
  const issues: FieldIssue[] = [];
  if (Object.hasOwn(defaults, 'custom_id')) {
    issues.push({ path: 'defaults.custom_id', message: 'names one row; it cannot be a default' });
  }
  const result = schema.partial().safeParse(defaults);
  if (!result.success) {
    issues.push(
      ...fieldIssues(result.error).map((i) => ({ path: `defaults.${i.path}`, message: i.message })),
    );
  }
  const first = issues[0];
  if (first) {
    throw new AppError('VALIDATION_FAILED', `invalid defaults: ${first.path}: ${first.message}`, {
      statusCode: 400,
      issues,
    });
  }
}

function readCustomId(value: unknown): { id: string | null; issue?: FieldIssue } {
  if (value === undefined || value === null) return { id: null };
  if (typeof value === 'string' && value.length >= 1 && value.length <= CUSTOM_ID_MAX) return { id: value };
  return {
    id: null,
    issue: { path: 'custom_id', message: `must be a string of 1-${CUSTOM_ID_MAX} characters` },
  };
}

/**
 * Validates rows in file order: custom_id (unique within the manifest: the later row is the bad
 * one), then batch defaults merged under the row (row wins, shallow) and the strict job schema.
 */
export function createRowValidator(
  schema: JobRequestSchema,
  defaults: Record<string, unknown> | undefined,
): (raw: RawRow) => ManifestItem {
  const firstLine = new Map<string, number>();
  return (raw) => {
    let customId: string | null = null;
    const issues: FieldIssue[] = [...raw.issues];
    if (raw.fields !== undefined) {
      const { custom_id: rawId, ...fields } = raw.fields;
      const read = readCustomId(rawId);
      if (read.issue) issues.push(read.issue);
      customId = read.id;
      if (customId !== null) {
        const first = firstLine.get(customId);
        if (first !== undefined) {
          issues.push({ path: 'custom_id', message: `duplicate custom_id: first used on line ${first}` });
        } else {
          firstLine.set(customId, raw.line);
        }
      }
      const merged: Record<string, unknown> = { ...defaults, ...fields };
      const result = schema.safeParse(merged);
      if (result.success && issues.length === 0) {
        return { ok: true, row: { line: raw.line, custom_id: customId, request: result.data } };
      }
      if (!result.success) {
        // A cell the CSV reader already refused is absent here; don't report it twice.
        const refused = new Set(raw.issues.map((i) => i.path.split('.')[0] ?? ''));
        for (const issue of fieldIssues(result.error)) {
          if (refused.has(issue.path.split('.')[0] ?? '')) continue;
          const absent = raw.absent?.[issue.path];
          issues.push(absent && merged[issue.path] === undefined ? { ...issue, message: absent } : issue);
        }
      }
    }
    const first = issues[0] ?? { path: '(line)', message: 'invalid row' };
    return {
      ok: false,
      error: { line: raw.line, custom_id: customId, path: first.path, message: first.message, issues },
    };
  };
}
