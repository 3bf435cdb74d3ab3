import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import pino, { type Logger } from 'pino';
import { Bill, DEFAULT_PRICES, type Prices } from './billing.js';
import { BlobStore } from './blob-store.js';
import type { EmulatorContext } from './context.js';
import { createControls, type EmulatorControls, type FaultsCell } from './controls.js';
import {
  defaultFaults,
  type FaultsPatch,
  FaultsPatchSchema,
  mergeFaults,
  type RateLimitsPatch,
} from './faults.js';
import { FileStore } from './file-store.js';
import { downloadImage, downloadVideo, isImage, probeVideo } from './media-probe.js';
import { createPrng } from './prng.js';
import { codeForStatus, ProblemError, problemBody } from './problem.js';
import { RateLimiter } from './rate-limiter.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerAppRoutes } from './routes/apps.js';
import { registerFileRoutes } from './routes/files.js';
import { registerPublicRoutes } from './routes/public.js';
import { OpenStreams } from './routes/stream.js';
import { registerTaskRoutes } from './routes/tasks.js';
import { Stats } from './stats.js';
import { type SourceResult, TaskEngine } from './tasks/engine.js';
import { WebhookSender } from './webhooks.js';

export type { EmulatorControls, EmulatorState } from './controls.js';
export type { Faults, FaultsPatch, RateLimits, RateLimitsPatch } from './faults.js';

export interface EmulatorOptions {
  /** Bearer token the provider endpoints accept. Default `inf_local_emulator`. */
  apiKey?: string;
  /** Base of every URL handed out (outputs, uploads, file URIs). Default: from the request's Host. */
  publicUrl?: string;
  /** Time per lifecycle status. Default 1000. */
  stepMs?: number;
  /** NDJSON stream heartbeat interval. Default 10000. */
  heartbeatMs?: number;
  /** Seed of the one PRNG behind every fault decision. Default 1. */
  seed?: number;
  /** Initial fault knobs; `faults.rateLimits` wins over `rateLimits`. */
  faults?: FaultsPatch;
  /** Per group requests/window; default run 100, get 1000, upload 50 per 60 s; `false` disables. */
  rateLimits?: RateLimitsPatch;
  /** Micro-dollars per output second. Default { '720p': 30000, '1080p': 60000 }. */
  prices?: Partial<Prices>;
  /** Default: a silent pino logger. */
  logger?: Logger;
  /** Upper bound on `input.images`. Default 4 (upstream listings say 3). */
  maxReferenceImages?: number;
  /** Source video download: time limit (default 30 s) and size cap (default 64 MiB, also the upload cap). */
  download?: { timeoutMs?: number; maxBytes?: number };
  /** Folder served at /fixtures. Default: this app's `fixtures/`. */
  fixturesDir?: string;
}

/** The Fastify instance, not yet listening, plus the emulator's controls. `close()` stops all timers. */
export type Emulator = FastifyInstance & { emulator: EmulatorControls };

const DEFAULT_FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

export async function buildEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const seed = options.seed ?? 1;
  const initialFaults = mergeFaults(
    mergeFaults(defaultFaults(), { rateLimits: options.rateLimits }),
    FaultsPatchSchema.parse(options.faults ?? {}),
  );
  const cell: FaultsCell = { current: initialFaults };
  const faults = () => cell.current;
  const download = {
    timeoutMs: options.download?.timeoutMs ?? 30_000,
    maxBytes: options.download?.maxBytes ?? 64 << 20,
  };
  // Reference images are small: the provider's own limit is not documented, 20 MiB is Recast's.
  const imageDownload = { timeoutMs: download.timeoutMs, maxBytes: Math.min(download.maxBytes, 20 << 20) };
  const blobs = new BlobStore();
  const bill = new Bill({ ...DEFAULT_PRICES, ...options.prices });
  const stats = new Stats();
  const webhooks = new WebhookSender({ logger: logger.child({ component: 'webhooks' }), faults });

  const files = new FileStore();
  const loadSource = async (url: string, signal: AbortSignal): Promise<SourceResult> => {
    try {
      // An uploaded file is read from the emulator's own storage, as the provider reads its own.
      const own = files.resolve(url);
      if (own === 'missing') return { ok: false, error: `file not found (never uploaded): ${url}` };
      const { bytes, contentType } = own ?? (await downloadVideo(url, { ...download, signal }));
      const { seconds, fps } = probeVideo(bytes, logger);
      return { ok: true, key: blobs.put(bytes, contentType), seconds, fps };
    } catch (error) {
      return { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  };

  const engine = new TaskEngine({
    stepMs: options.stepMs ?? 1000,
    logger: logger.child({ component: 'tasks' }),
    faults,
    loadSource,
    loadImages: async (urls, signal) => {
      // All at once, the first failure in input order reported; an uploaded one from own storage.
      const failures = await Promise.all(
        urls.map(async (url) => {
          const own = files.resolve(url);
          if (own === 'missing') return `file not found (never uploaded): ${url}`;
          try {
            if (own) {
              if (!isImage(own.bytes)) return `${url} is not an image`;
            } else {
              await downloadImage(url, { ...imageDownload, signal });
            }
            return undefined;
          } catch (error) {
            return error instanceof Error ? error.message : String(error);
          }
        }),
      );
      return failures.find((failure) => failure !== undefined);
    },
    onTerminal: (task) => {
      const output = task.output?.output_meta.outputs[0];
      if (task.status === 'completed' && output && task.completedAt) {
        bill.charge(task.id, output.resolution, output.seconds, task.completedAt);
      }
      logger.info({ taskId: task.id, status: task.status }, 'task finished');
      webhooks.taskTerminal(task);
    },
  });

  const ctx: EmulatorContext = {
    apiKey: options.apiKey ?? 'inf_local_emulator',
    publicUrl: options.publicUrl,
    heartbeatMs: options.heartbeatMs ?? 10_000,
    maxReferenceImages: options.maxReferenceImages ?? 4,
    maxUploadBytes: download.maxBytes,
    fixturesDir: options.fixturesDir ?? DEFAULT_FIXTURES_DIR,
    logger,
    prng: createPrng(seed),
    engine,
    files,
    blobs,
    bill,
    limiter: new RateLimiter(initialFaults.rateLimits),
    webhooks,
    stats,
    streams: new OpenStreams(),
    faults,
  };
  const controls = createControls(ctx, cell, { faults: initialFaults, seed });

  // Typed as the base logger so route helpers take a plain FastifyInstance.
  const loggerInstance: FastifyBaseLogger = logger;
  // Per-request logs would drown a benchmark; the request log is in /_emulator/state instead.
  const logController = new LogController({ disableRequestLogging: true });
  // All connections are cut on close (state is in memory, there is nothing to drain to); open
  // streams get their final line out first, in preClose.
  const app: FastifyInstance = Fastify({ loggerInstance, logController, forceCloseConnections: true });
  installPlumbing(app, ctx);
  registerAppRoutes(app, ctx);
  registerTaskRoutes(app, ctx);
  registerFileRoutes(app, ctx);
  registerPublicRoutes(app, ctx);
  registerAdminRoutes(app, controls);
  // preClose, not onClose: open streams must end before the server cuts its connections.
  app.addHook('preClose', async () => {
    engine.close();
    webhooks.reset();
    await ctx.streams.drain(1000);
  });
  app.decorate('emulator', controls);
  await app.ready();
  // decorate() does not change the static type; the assignment restates the same value for it.
  return Object.assign(app, { emulator: controls });
}

function installPlumbing(app: FastifyInstance, ctx: EmulatorContext): void {
  // The SDK posts `Content-Type: application/json` with no body (cancel): that is not an error.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new ProblemError(400, 'invalid_request', 'body: not valid JSON'), undefined);
    }
  });

  const arrivedAt = new WeakMap<object, number>();
  app.addHook('onRequest', async (request) => {
    arrivedAt.set(request, Date.now());
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? '*';
    if (route.startsWith('/_emulator')) return;
    ctx.stats.recordRequest({
      at: arrivedAt.get(request) ?? Date.now(),
      method: request.method,
      route,
      status: reply.statusCode,
    });
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof ProblemError) {
      return reply
        .code(error.status)
        .headers(error.headers)
        .type('application/problem+json')
        .send(error.toBody());
    }
    const status = statusOf(error);
    if (status >= 500) request.log.error({ err: error }, 'unhandled error');
    const detail = status >= 500 ? 'internal error' : error instanceof Error ? error.message : String(error);
    return reply
      .code(status)
      .type('application/problem+json')
      .send(problemBody(status, codeForStatus(status), detail));
  });

  app.setNotFoundHandler((request, reply) => {
    const body = problemBody(404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(404).type('application/problem+json').send(body);
  });
}

function statusOf(error: unknown): number {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    const { statusCode } = error;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 600) return statusCode;
  }
  return 500;
}
