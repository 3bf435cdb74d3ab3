import { createReadStream } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** Where a local path is named, for messages: the manifest line, the row's custom_id and the field. */
export interface LocalRef {
  line: number;
  custom_id: string | null;
  field: string;
}

/** Every local path a manifest names, each with every place that names it, in file order. */
export type LocalRefs = Map<string, LocalRef[]>;

export function addRef(refs: LocalRefs, path: string, ref: LocalRef): void {
  const list = refs.get(path);
  if (list) list.push(ref);
  else refs.set(path, [ref]);
}

const SCHEME = /^([a-z][a-z0-9+.-]+):/i;

/**
 * The absolute path a manifest value names, or undefined for a URL (http:, https:, data:, ...).
 * A relative path is relative to the manifest's directory, not the shell's.
 */
export function localPathOf(value: string, baseDir: string): string | undefined {
  if (value.trim() === '') return undefined;
  const scheme = SCHEME.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'file') return fileURLToPath(value);
  if (scheme) return undefined;
  return isAbsolute(value) ? value : resolve(baseDir, value);
}

/** The file fields of a manifest row and the paths they hold: `video`, `images.N` (as the API names them). */
function fileFields(row: Record<string, unknown>): [string, string, (uri: string) => void][] {
  const out: [string, string, (uri: string) => void][] = [];
  if (typeof row.video === 'string') {
    out.push([
      'video',
      row.video,
      (uri) => {
        row.video = uri;
      },
    ]);
  }
  if (Array.isArray(row.images)) {
    const images = row.images;
    images.forEach((image, i) => {
      if (typeof image === 'string') {
        out.push([
          `images.${i}`,
          image,
          (uri) => {
            images[i] = uri;
          },
        ]);
      }
    });
  }
  return out;
}

function parseRow(line: string): Record<string, unknown> | undefined {
  if (line.trim() === '') return undefined;
  try {
    const row: unknown = JSON.parse(line);
    return row && typeof row === 'object' && !Array.isArray(row)
      ? (row as Record<string, unknown>)
      : undefined;
  } catch {
    // Not this command's business: the API reports the line, with its number.
    return undefined;
  }
}

function lines(manifest: string) {
  return createInterface({ input: createReadStream(manifest), crlfDelay: Number.POSITIVE_INFINITY });
}

/** Every local path a JSONL manifest names, with every line and field naming it. Streams the file. */
export async function scanLocalPaths(manifest: string, baseDir: string): Promise<LocalRefs> {
  const found: LocalRefs = new Map();
  let number = 0;
  for await (const line of lines(manifest)) {
    number++;
    const row = parseRow(line);
    if (!row) continue;
    const customId = typeof row.custom_id === 'string' ? row.custom_id : null;
    for (const [field, value] of fileFields(row)) {
      const path = localPathOf(value, baseDir);
      if (path) addRef(found, path, { line: number, custom_id: customId, field });
    }
  }
  return found;
}

/**
 * The manifest with every local path replaced by its uploaded uri, as a stream: one line out per
 * line in (so the API's line numbers are the file's), rows without local paths unchanged.
 */
export function rewriteManifest(
  manifest: string,
  baseDir: string,
  uris: ReadonlyMap<string, string>,
): Readable {
  return Readable.from(
    (async function* () {
      for await (const line of lines(manifest)) {
        const row = parseRow(line);
        let changed = false;
        for (const [, value, set] of row ? fileFields(row) : []) {
          const path = localPathOf(value, baseDir);
          const uri = path ? uris.get(path) : undefined;
          if (uri) {
            set(uri);
            changed = true;
          }
        }
        yield `${changed ? JSON.stringify(row) : line}\n`;
      }
    })(),
  );
}
