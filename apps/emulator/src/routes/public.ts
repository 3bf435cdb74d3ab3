import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseOrThrow } from '../app-input.js';
import type { EmulatorContext } from '../context.js';
import { ProblemError } from '../problem.js';
import { sendBytes } from './send-bytes.js';

const CONTENT_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.md': 'text/markdown; charset=utf-8',
};

const NameParams = z.object({ name: z.string() });
const OutputParams = z.object({ file: z.string() });

/** Fixtures (test media) and task outputs: public, like the provider's CDN URLs. */
export function registerPublicRoutes(app: FastifyInstance, ctx: EmulatorContext): void {
  // Only names that exist at start-up are served: nothing outside the folder can be named.
  const fixtures = new Set(readdirSync(ctx.fixturesDir).filter((name) => !name.startsWith('.')));
  const cache = new Map<string, Buffer>();

  app.get('/fixtures/:name', async (request, reply) => {
    const { name } = parseOrThrow(NameParams, request.params, 'params');
    if (!fixtures.has(name)) throw new ProblemError(404, 'not_found', `fixture not found: ${name}`);
    let bytes = cache.get(name);
    if (!bytes) {
      bytes = await readFile(join(ctx.fixturesDir, name));
      cache.set(name, bytes);
    }
    const type = CONTENT_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
    return sendBytes(request, reply, bytes, type);
  });

  // The app's output is stood in for by the source video itself: same duration, real MP4 bytes.
  app.get('/outputs/:file', async (request, reply) => {
    const { file } = parseOrThrow(OutputParams, request.params, 'params');
    const taskId = file.replace(/\.mp4$/, '');
    const task = ctx.engine.get(taskId);
    const blob = task?.status === 'completed' && task.sourceKey ? ctx.blobs.get(task.sourceKey) : undefined;
    if (!blob) throw new ProblemError(404, 'not_found', `output not found: ${file}`);
    return sendBytes(request, reply, blob.bytes, 'video/mp4');
  });
}
