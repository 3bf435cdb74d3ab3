import { randomUUID } from 'node:crypto';
import type { Services } from '@recast/core/engine';
import { Archiver, type Database } from '@recast/core/history';
import type { Logger } from '@recast/core/infra';

export interface ArchivingOptions {
  intervalMs: number;
  retentionMs: number;
  /** Fault injection (the chaos suite): a pause between a write to PostgreSQL and its mark in Redis. */
  faultPauseMs?: number;
}

/** How long one worker holds the archiving turn without renewing it (a dead worker's lapses). */
const TURN_MS = 30_000;

/**
 * The archiver on a timer. One worker at a time takes the turn (a lock with a lease in Redis, so a
 * worker that dies hands it on within TURN_MS): a second archiver would only write the same upserts
 * twice. A pass that meets PostgreSQL down is logged (not every time) and tried again next tick;
 * the outboxes keep what waits, and /v1/stats and the metrics show it.
 */
export function startArchiving(
  services: Services,
  db: Database,
  logger: Logger,
  options: ArchivingOptions,
): { stop(): Promise<void> } {
  const archiver = new Archiver(services, db, {
    retentionMs: options.retentionMs,
    logger,
    ...(options.faultPauseMs
      ? {
          afterWrite: async (what) => {
            logger.warn(
              { what, pauseMs: options.faultPauseMs },
              'archive fault: pausing between write and mark',
            );
            await new Promise((resolve) => setTimeout(resolve, options.faultPauseMs));
          },
        }
      : {}),
  });
  const { redis, keys } = services;
  // The holder's pid first, so an operator (or the chaos suite) can tell which process has the turn.
  const token = `${process.pid}:${randomUUID()}`;
  let stopped = false;
  let running: Promise<void> | undefined;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;

  const takeTurn = async () =>
    (await redis.set(keys.archiveLock(), token, 'PX', TURN_MS, 'NX')) === 'OK' ||
    (await redis.get(keys.archiveLock())) === token;
  const renew = () => redis.pexpire(keys.archiveLock(), TURN_MS);

  const tick = async () => {
    if (!(await takeTurn())) return;
    try {
      for (let i = 0; i < 1_000 && !stopped; i++) {
        const pass = await archiver.pass();
        await renew();
        const { evicted } = pass;
        if (pass.jobs + pass.charges + pass.batches + evicted.jobs + evicted.charges + evicted.batches > 0) {
          logger.debug({ ...pass }, 'archive pass');
        }
        // A full pass means more is waiting: go on at once.
        if (pass.jobs < 500 && pass.charges < 500 && pass.batches < 500) break;
      }
      if (failures > 0) logger.info({ failedPasses: failures }, 'archiving resumed');
      failures = 0;
    } catch (err) {
      if (failures++ % 30 === 0) {
        logger.warn(
          { err: (err as Error).message, failedPasses: failures },
          'archive pass failed; the outboxes keep what waits',
        );
      }
    }
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(() => {
        running = undefined;
        schedule();
      });
    }, options.intervalMs);
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      // Hand the turn on at once rather than after the lease.
      if ((await redis.get(keys.archiveLock()).catch(() => null)) === token) {
        await redis.del(keys.archiveLock()).catch(() => undefined);
      }
    },
  };
}
