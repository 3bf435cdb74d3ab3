/**
 * The engine: one owner of a job's life (submit, dispatch, settle, cancel, reconcile, orphan
 * adoption, maintenance) over one set of services built in one place.
 */
export type { CancelStepResult } from './cancel.js';
export type { EngineContext, OrphanSearchOptions, ProviderBinding, StepOutcome } from './context.js';
export type { DispatchResult, DispatchStep } from './dispatch.js';
export type { DuplicateResult } from './duplicates.js';
export { Engine, type EngineOptions, type IntakeOptions } from './engine.js';
export type { ReconcilePass } from './reconcile.js';
export {
  createServices,
  pricesOf,
  reconcileDelaysOf,
  type Services,
  type ServicesOptions,
} from './services.js';
export { type SettleResult, targetState } from './settle.js';
export type { WatchResult } from './watch.js';
export type { WebhookHint } from './webhooks.js';
