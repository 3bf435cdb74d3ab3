import type {
  BatchStore,
  BudgetParking,
  Budgets,
  FairQueue,
  InferenceClient,
  JobStore,
  Ledger,
  Logger,
  NotifyQueue,
  PriceTable,
  ProviderGate,
  Queues,
} from '@recast/core';

/** What every processor works with; built once per worker process (see workers.ts). */
export interface WorkerContext {
  store: JobStore;
  batches: BatchStore;
  budgets: Budgets;
  ledger: Ledger;
  gate: ProviderGate;
  parking: BudgetParking;
  fair: FairQueue;
  queues: Queues;
  client: InferenceClient;
  prices: PriceTable;
  logger: Logger;
  /** Signed callbacks to clients; undefined when no CALLBACK_SECRETS are configured. */
  notify: NotifyQueue | undefined;
  /** Output retention (OUTPUT_STORE): tries per output; undefined when retention is off. */
  retention: { attempts: number } | undefined;
}
