import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Bill } from './billing.js';
import type { BlobStore } from './blob-store.js';
import { wrap } from './envelope.js';
import type { Faults } from './faults.js';
import type { FileStore } from './file-store.js';
import type { Prng } from './prng.js';
import type { RateLimiter } from './rate-limiter.js';
import type { OpenStreams } from './routes/stream.js';
import type { Stats } from './stats.js';
import type { TaskEngine } from './tasks/engine.js';
import type { TaskFate } from './tasks/task-record.js';
import type { WebhookSender } from './webhooks.js';

/** Everything the routes share, passed explicitly (no decorators needed inside the emulator). */
export interface EmulatorContext {
  apiKey: string;
  publicUrl: string | undefined;
  heartbeatMs: number;
  maxReferenceImages: number;
  maxUploadBytes: number;
  fixturesDir: string;
  logger: Logger;
  prng: Prng;
  engine: TaskEngine;
  files: FileStore;
  blobs: BlobStore;
  bill: Bill;
  limiter: RateLimiter;
  webhooks: WebhookSender;
  stats: Stats;
  streams: OpenStreams;
  faults(): Faults;
}

/** The base of URLs handed out: the configured public URL, else whatever host the client used. */
export function baseUrlOf(ctx: EmulatorContext, request: FastifyRequest): string {
  if (ctx.publicUrl) return ctx.publicUrl.replace(/\/+$/, '');
  return `${request.protocol}://${request.host}`;
}

export function sendData(ctx: EmulatorContext, reply: FastifyReply, data: unknown, code = 200) {
  return reply.code(code).send(wrap(ctx.faults().envelope, data));
}

/** All of a task's dice, thrown in a fixed order at submit so fates follow the request sequence. */
export function drawFate(ctx: EmulatorContext): TaskFate {
  const faults = ctx.faults();
  const roll = () => ctx.prng.next();
  return {
    fail: roll() < faults.failureRate,
    webhookDrop: roll() < faults.webhookDropRate,
    webhookDuplicate: roll() < faults.webhookDuplicateRate,
    webhookReorder: roll() < faults.webhookReorderRate,
    webhookDelayDraw: roll(),
    seed: Math.floor(roll() * 2 ** 31),
  };
}
