/**
 * `pnpm bench [name...]`: run the benchmarks (all by default). Each prints its figures next to a
 * baseline measured in the same run, and the ratio between them.
 */
import { benchBatches } from './batches.js';
import { benchHistory } from './history.js';
import { sharedBenchDatabaseIfAny } from './lib.js';
import { benchLimiter } from './limiter.js';
import { benchNewcomer } from './newcomer.js';
import { benchPolling } from './polling.js';
import { benchReservations } from './reservations.js';
import { benchSubmit } from './submit.js';
import { benchSubmitWait } from './submit-wait.js';

const benches: Record<string, () => Promise<unknown>> = {
  submit: benchSubmit,
  'submit-wait': benchSubmitWait,
  // The three gates' accuracy, then a newcomer's wait behind a backlog with the submits paced.
  limiter: async () => {
    await benchLimiter();
    await benchNewcomer();
  },
  reservations: benchReservations,
  batches: benchBatches,
  polling: benchPolling,
  history: benchHistory,
};

const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!benches[name]) {
    process.stderr.write(`unknown benchmark "${name}"; have: ${Object.keys(benches).join(', ')}\n`);
    process.exit(2);
  }
}
for (const [name, run] of Object.entries(benches)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  await run();
}
// The database the API processes shared (when one was made).
await (await sharedBenchDatabaseIfAny())?.stop();
