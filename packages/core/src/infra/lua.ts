import { readFileSync } from 'node:fs';

const FRAGMENTS = new URL('./lua/', import.meta.url);
const INCLUDE = /^--@include ([a-z0-9-]+)$/gm;

/**
 * Read a Lua script shipped next to the code. Called from factories, never at import time.
 * Script files are named `<name>-<numKeys>.lua` (or `<name>-n.lua` for a variable key count), so
 * the key count is read off the name. A line `--@include <fragment>` is replaced by
 * `infra/lua/<fragment>.lua`: lines two scripts share (local functions) are written once. Redis
 * has no include of its own, and the scripts stay one readable file each on disk.
 */
export function loadLua(url: URL): { lua: string; numberOfKeys?: number } {
  const match = /-(\d+|n)\.lua$/.exec(url.pathname);
  if (!match) throw new Error(`Lua script name must end in -<numKeys>.lua or -n.lua: ${url.pathname}`);
  const lua = readFileSync(url, 'utf8').replace(INCLUDE, (_, name: string) =>
    readFileSync(new URL(`${name}.lua`, FRAGMENTS), 'utf8').trimEnd(),
  );
  // `-n.lua` takes a variable number of keys: the caller passes the key count first.
  return match[1] === 'n' ? { lua } : { lua, numberOfKeys: Number(match[1]) };
}
