import type { FastifyInstance } from 'fastify';
import type { EmulatorControls } from '../controls.js';

/** Test and benchmark controls under /_emulator; no bearer token, never part of the provider API. */
export function registerAdminRoutes(app: FastifyInstance, controls: EmulatorControls): void {
  app.get('/_emulator/state', async () => controls.state());
  app.get('/_emulator/faults', async () => controls.faults());
  app.put('/_emulator/faults', async (request) => controls.setFaults(request.body ?? {}));
  app.post('/_emulator/reset', async () => {
    controls.reset();
    return { ok: true };
  });
}
