import type { Engine } from '@recast/core/engine';

/** `reconcile` (the maintenance queue's job scheduler): one pass of the engine's reconciler. */
export function createReconcileProcessor(engine: Engine) {
  return () => engine.reconcile();
}
