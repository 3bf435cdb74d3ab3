import { createServices, Engine, type Services } from '@recast/core/engine';
import {
  createOutputStore,
  type FileInputLimits,
  FileUploader,
  type OutputStore,
  sweepStaleSpools,
} from '@recast/core/files';
import { keepMigrating } from '@recast/core/history';
import { type Logger, onReconnect } from '@recast/core/infra';
import { createDurationEstimator, type DurationEstimator } from '@recast/core/media';
import { DEFAULT_JOB_SCHEMA_LIMITS, type JobSchemaLimits } from '@recast/core/model';
import type { LookupFn, UrlPolicy } from '@recast/core/net';
import { createInferenceClient, type InferenceClient, TaskTrails } from '@recast/core/provider';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ApiConfig } from '../config.js';

/** What every route works with: the engine, its services, and the API's own pieces. */
export interface RecastDeps extends Services {
  engine: Engine;
  estimator: DurationEstimator;
  limits: JobSchemaLimits;
  webhookSecret: string;
  urlPolicy: UrlPolicy;
  /** True when CALLBACK_SECRETS are configured: jobs may then carry a callback_url. */
  callbacks: boolean;
  /** File inputs: the uploader and its limits; undefined when the API has no provider key. */
  files: { uploader: FileUploader; limits: FileInputLimits } | undefined;
  /** Where kept outputs are read from; undefined when retention is off. */
  outputs: OutputStore | undefined;
  /** The provider, when the API has a key (file inputs, the audit of the books). */
  provider: InferenceClient | undefined;
  /** The provider's events and logs of a job's task (cached reads), when the API has a key. */
  trails: TaskTrails | undefined;
  /** The history database is migrated (readiness says so while it is not). */
  migrated(): boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    recast: RecastDeps;
  }
}

export interface RecastPluginOptions {
  config: ApiConfig;
  logger: Logger;
  /** The resolver of every SSRF check (tests answer for made-up hosts); the shared cached DNS by default. */
  lookup?: LookupFn;
}

/** The engine and its services, built once from the API's settings and closed with the app. */
export const recastPlugin = fp(
  async (app: FastifyInstance, { config, logger, lookup }: RecastPluginOptions) => {
    // Waits for the first connection; if Redis is down at boot the API still starts, and /readyz
    // and 503s say so.
    const services = await createServices({ config, logger, role: 'producer', name: 'recast-api' });
    const migration = keepMigrating(config.DATABASE_URL, logger);
    await migration.first;
    const urlPolicy: UrlPolicy = { allowHosts: config.SSRF_ALLOW_HOSTS, ...(lookup ? { lookup } : {}) };
    const estimator = createDurationEstimator({
      policy: urlPolicy,
      logger,
      fallbackSeconds: config.ESTIMATE_FALLBACK_SECONDS,
      concurrency: config.PROBE_CONCURRENCY,
      timeoutMs: config.PROBE_TIMEOUT_MS,
      maxMoovBytes: config.PROBE_MAX_HEADER_BYTES,
    });
    const provider = config.INFERENCE_API_KEY
      ? createInferenceClient({
          baseUrl: config.INFERENCE_API_URL,
          apiKey: config.INFERENCE_API_KEY,
          requestTimeoutMs: config.INFERENCE_TIMEOUT_MS,
          connections: 4,
          logger,
          // Uploads (POST /files) and timeline reads wait their turn in the quotas every process shares.
          admission: services.admission,
        })
      : undefined;
    const fileLimits: FileInputLimits = {
      tmpDir: config.UPLOAD_TMP_DIR,
      maxVideoBytes: config.UPLOAD_MAX_VIDEO_BYTES,
      maxImageBytes: config.UPLOAD_MAX_IMAGE_BYTES,
      maxDataUriBytes: config.DATA_URI_MAX_BYTES,
    };
    const uploader = provider
      ? new FileUploader({
          redis: services.redis,
          keys: services.keys,
          provider,
          ttlSeconds: config.UPLOAD_REUSE_SECONDS,
          putTimeoutMs: config.UPLOAD_PUT_TIMEOUT_MS,
          logger,
        })
      : undefined;
    if (uploader) {
      // Left by a process that crashed mid-upload; older than a day is older than any upload.
      const swept = await sweepStaleSpools(fileLimits.tmpDir, 24 * 3600_000);
      if (swept > 0) logger.info({ swept, dir: fileLimits.tmpDir }, 'removed stale upload temp files');
    }
    const limits = {
      ...DEFAULT_JOB_SCHEMA_LIMITS,
      maxImages: config.MAX_IMAGES,
      maxMetadataBytes: config.MAX_METADATA_BYTES,
    };
    const callbacks = config.CALLBACK_SECRETS.length > 0;
    const engine = new Engine(services, {
      callbacks,
      intake: { estimator, urlPolicy, callbacks, limits, ...(uploader ? { uploader } : {}) },
    });
    app.decorate('recast', {
      ...services,
      engine,
      estimator,
      limits,
      webhookSecret: config.WEBHOOK_SECRET,
      urlPolicy,
      callbacks,
      files: uploader ? { uploader, limits: fileLimits } : undefined,
      outputs: config.OUTPUT_STORE ? createOutputStore(config.OUTPUT_STORE) : undefined,
      provider,
      trails: provider ? new TaskTrails(provider) : undefined,
      migrated: () => migration.done,
    } satisfies RecastDeps);
    // The webhooks this process refused while Redis was unreachable are not sent again: once it is
    // back, every job waiting on the provider is looked at now (the workers do the same).
    const stopWatchingOutages = onReconnect(services.redis, () => {
      engine
        .afterRedisOutage()
        .catch((err: unknown) =>
          logger.error(
            { err: (err as Error).message },
            'could not bring the reconcile of in-flight jobs forward',
          ),
        );
    });
    app.addHook('onClose', async () => {
      stopWatchingOutages();
      migration.stop();
      await estimator.close();
      await uploader?.close();
      await provider?.close();
      await services.close();
    });
  },
);
