import { readFileSync } from 'node:fs';

/**
 * Read a Lua script shipped next to the code. Called from factories, never at import time.
 * Script files are named `<name>-<numKeys>.lua`, so the key count is read off the name.
 */
export function loadLua(url: URL): { lua: string; numberOfKeys: number } {
  const match = /-(\d+)\.lua$/.exec(url.pathname);
  if (!match) throw new Error(`Lua script name must end in -<numKeys>.lua: ${url.pathname}`);
  return { lua: readFileSync(url, 'utf8'), numberOfKeys: Number(match[1]) };
}
