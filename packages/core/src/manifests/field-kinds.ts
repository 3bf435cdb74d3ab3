import { z } from 'zod';
import { assertNever } from '../errors/app-error.js';
import { readJsonText } from '../model/json-input.js';

/** What a CSV cell turns into before the job schema sees it. */
export type FieldKind = 'string' | 'boolean' | 'number' | 'list' | 'json';

/** Kinds read off the schema itself, so a field added to the job schema gets the right coercion. */
export function fieldKinds(shape: Record<string, z.ZodType>): Map<string, FieldKind> {
  return new Map(Object.entries(shape).map(([name, schema]) => [name, kindOf(schema)]));
}

function kindOf(schema: z.ZodType): FieldKind {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
    return kindOf(schema.unwrap() as z.ZodType);
  }
  if (schema instanceof z.ZodDefault) return kindOf(schema.unwrap() as z.ZodType);
  if (schema instanceof z.ZodBoolean) return 'boolean';
  // z.int() is a ZodNumber too: "1.5" becomes 1.5 and the schema names the field "not an integer".
  if (schema instanceof z.ZodNumber) return 'number';
  if (schema instanceof z.ZodArray) return 'list';
  if (schema instanceof z.ZodRecord || schema instanceof z.ZodObject) return 'json';
  return 'string';
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TRUE = /^true$/i;
const FALSE = /^false$/i;
const MAX_SHOWN = 40;

function shown(cell: string): string {
  return JSON.stringify(cell.length > MAX_SHOWN ? `${cell.slice(0, MAX_SHOWN)}…` : cell);
}

/**
 * A non-empty CSV cell as the value its field expects. Booleans are only true/false (any case):
 * a manifest is data, not env, and `1` in a boolean column is more likely a misplaced column.
 */
export function coerceCell(
  kind: FieldKind,
  cell: string,
  column = '',
): { value: unknown } | { issue: string; path?: string } {
  switch (kind) {
    case 'string':
      return { value: cell };
    case 'boolean':
      if (TRUE.test(cell)) return { value: true };
      if (FALSE.test(cell)) return { value: false };
      return { issue: `must be true or false, got ${shown(cell)}` };
    case 'number':
      return NUMBER.test(cell) ? { value: Number(cell) } : { issue: `must be a number, got ${shown(cell)}` };
    case 'list':
      return {
        value: cell
          .split('|')
          .map((part) => part.trim())
          .filter((part) => part !== ''),
      };
    case 'json': {
      // The same JSON reader as a JSONL row: `__proto__` is a reserved key, named with its path.
      const read = readJsonText(cell, column, column);
      if (read.ok) return { value: read.value };
      return read.issue.message === 'reserved key'
        ? { issue: read.issue.message, path: read.issue.path }
        : { issue: 'must be a JSON object' };
    }
    default:
      return assertNever(kind, 'field kind');
  }
}
