/** Prometheus metrics: a registry per process, the metrics the code observes, cluster gauges. */
export { type ClusterCollectorOptions, QUEUE_STATES, registerClusterCollectors } from './collectors.js';
export { type LedgerResolutionTotals, LedgerTotals, type LedgerTotalsByResolution } from './ledger-totals.js';
export {
  createMetrics,
  providerResponseObserver,
  type RecastMetrics,
  timeStep,
  webhookOutcome,
} from './metrics.js';
export {
  createMetricsRegistry,
  type MetricsPage,
  type MetricsRegistryOptions,
  type Registry,
  renderMetrics,
} from './registry.js';
