import { collectDefaultMetrics, Registry } from 'prom-client';

export type { Registry };

export interface MetricsRegistryOptions {
  /** Which process this is (`api`, `worker`): a label on every series, so one query can tell them apart. */
  process: string;
  /** Node's own metrics (CPU, memory, event loop lag, GC, handles): on unless a test turns them off. */
  defaultMetrics?: boolean;
}

/**
 * A process's registry, made once at its entry and passed down. Never prom-client's global
 * default registry: tests build several APIs and workers in one process, each with its own.
 */
export function createMetricsRegistry(options: MetricsRegistryOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process: options.process });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

export interface MetricsPage {
  contentType: string;
  body: string;
}

/**
 * One scrape, ready to send: the HTTP handlers (the metrics port, and later an admin route on the
 * public port) all answer with this, whatever server they run in.
 */
export async function renderMetrics(registry: Registry): Promise<MetricsPage> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
