import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative } from 'node:path';
import type { RowError } from '../schemas.js';
import type { LocalRefs } from './manifest-paths.js';

/**
 * A manifest is data, often someone else's: it may name only files inside its own directory, or
 * inside a directory the user allowed with --allow-path, so `file:///etc/passwd` or
 * `../../.ssh/id_rsa` in a row is never read, let alone uploaded. Paths are judged after symlinks
 * are resolved (a link inside the directory to a file outside it is outside). Every reference of
 * every problem path is a row error with its line and field.
 */
export async function checkLocalPaths(refs: LocalRefs, allowed: readonly string[]): Promise<RowError[]> {
  const roots = await Promise.all(allowed.map((dir) => realpath(dir).catch(() => undefined)));
  const dirs = roots.filter((dir): dir is string => dir !== undefined);
  const errors: RowError[] = [];
  for (const [path, list] of refs) {
    const problem = await problemOf(path, dirs, allowed[0] ?? '');
    if (!problem) continue;
    for (const ref of list) {
      errors.push({ line: ref.line, custom_id: ref.custom_id, path: ref.field, message: problem });
    }
  }
  return errors.sort((a, b) => a.line - b.line);
}

async function problemOf(
  path: string,
  dirs: readonly string[],
  manifestDir: string,
): Promise<string | undefined> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    return `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  if (!dirs.some((dir) => isInside(real, dir))) {
    return `${path} is outside the manifest's directory (${manifestDir}) and every --allow-path: allow its directory with --allow-path DIR`;
  }
  const info = await stat(real).catch(() => undefined);
  if (!info?.isFile()) return `${path} is not a file`;
  return undefined;
}

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}
