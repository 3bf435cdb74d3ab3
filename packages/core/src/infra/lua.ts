import { readFileSync } from 'node:fs';

/**
 * Read a Lua script shipped next to the code. Called from factories, never at import time.
 * Script files are named `<name>-<numKeys>.lua` (or `<name>-n.lua` for a variable key count), so
 * the key count is read off the name.
 */
export function loadLua(url: URL): { lua: string; numberOfKeys?: number } {
  const match = /-(\d+|n)\.lua$/.exec(url.pathname);
  if (!match) throw new Error(`Lua script name must end in -<numKeys>.lua or -n.lua: ${url.pathname}`);
  // `-n.lua` takes a variable number of keys: the caller passes the key count first.
  const lua = readFileSync(url, 'utf8');
  return match[1] === 'n' ? { lua } : { lua, numberOfKeys: Number(match[1]) };
}
