import type { BatchStore } from '@recast/core/batches';
import type { Logger } from '@recast/core/infra';
import type { JobStore, NotifyQueue, Queues } from '@recast/core/model';
import type { Budgets, Ledger, PriceTable } from '@recast/core/money';
import type { InferenceClient, ProviderGate } from '@recast/core/provider';
import type { BudgetParking, FairQueue } from '@recast/core/scheduling';

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
