import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { addRef, type LocalRefs, localPathOf } from './manifest-paths.js';

/**
 * Local paths in a CSV manifest: the `video`, `images` (paths separated by `|`) and `images_N`
 * columns. Parsed as the API parses CSV (BOM, trimmed cells, blank lines skipped), and rewritten
 * so every record starts on the line it started on (blank lines kept), so the API's line numbers
 * are the file's. A CSV this cannot read is sent as it is, for the API to report.
 */

interface Item {
  record: string[];
  line: number;
}

async function* records(manifest: string): AsyncGenerator<Item> {
  const parser = createReadStream(manifest).pipe(
    parse({ bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, info: true }),
  );
  let lastEnd = 0;
  let blanksSeen = 0;
  for await (const item of parser as AsyncIterable<{ record: string[]; info: { empty_lines: number } }>) {
    // The same line arithmetic as the API's parser (core manifest/csv.ts).
    const line = lastEnd + 1 + (item.info.empty_lines - blanksSeen);
    blanksSeen = item.info.empty_lines;
    lastEnd = line + item.record.reduce((n, cell) => n + (cell.match(/\r\n|\r|\n/g)?.length ?? 0), 0);
    yield { record: item.record, line };
  }
}

type Cell = { index: number; kind: 'video' | 'image' | 'list' };

function fileCells(header: string[]): Cell[] {
  return header.flatMap((name, index): Cell[] => {
    if (name === 'video') return [{ index, kind: 'video' }];
    if (name === 'images') return [{ index, kind: 'list' }];
    return /^images_[1-9][0-9]*$/.test(name) ? [{ index, kind: 'image' }] : [];
  });
}

function fieldName(header: string[], cell: Cell, part: number): string {
  return cell.kind === 'list' ? `images.${part}` : (header[cell.index] ?? 'video');
}

/** Every local path the CSV names, with every line and field naming it; undefined when it cannot be read. */
export async function scanCsvLocalPaths(manifest: string, baseDir: string): Promise<LocalRefs | undefined> {
  const found: LocalRefs = new Map();
  let header: string[] | undefined;
  let cells: Cell[] = [];
  let customIdAt = -1;
  try {
    for await (const { record, line } of records(manifest)) {
      if (!header) {
        header = record;
        cells = fileCells(header);
        customIdAt = header.indexOf('custom_id');
        continue;
      }
      const customId = (customIdAt >= 0 ? record[customIdAt] : undefined) || null;
      for (const cell of cells) {
        const value = record[cell.index] ?? '';
        const parts = cell.kind === 'list' ? value.split('|').map((p) => p.trim()) : [value];
        parts.forEach((part, i) => {
          const path = localPathOf(part, baseDir);
          if (path) addRef(found, path, { line, custom_id: customId, field: fieldName(header!, cell, i) });
        });
      }
    }
  } catch {
    return undefined;
  }
  return found;
}

/** A cell as CSV: quoted when it must be (delimiter, quote, line break, edge whitespace). */
function csvCell(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** The CSV with local paths replaced by their uris, each record on its original line. */
export function rewriteCsv(manifest: string, baseDir: string, uris: ReadonlyMap<string, string>): Readable {
  const swap = (value: string) => {
    const path = localPathOf(value, baseDir);
    return (path && uris.get(path)) || value;
  };
  return Readable.from(
    (async function* () {
      let header: string[] | undefined;
      let cells: Cell[] = [];
      let next = 1;
      for await (const { record, line } of records(manifest)) {
        let out = record;
        if (!header) {
          header = record;
          cells = fileCells(header);
        } else {
          out = [...record];
          for (const cell of cells) {
            const value = out[cell.index];
            if (value === undefined) continue;
            out[cell.index] =
              cell.kind === 'list'
                ? value
                    .split('|')
                    .map((p) => swap(p.trim()))
                    .join('|')
                : swap(value);
          }
        }
        const text = out.map(csvCell).join(',');
        yield '\n'.repeat(Math.max(0, line - next));
        yield `${text}\n`;
        next = line + 1 + (text.match(/\r\n|\r|\n/g)?.length ?? 0);
      }
    })(),
  );
}
