import { format } from 'node:util';
import type { Logger } from './logger.js';

type Level = 'error' | 'warn' | 'info' | 'debug';

/**
 * Routes what libraries print to the console through pino, so every line a process writes is one
 * JSON object a log pipeline can read. BullMQ prints an emitter's 'error' with console.error when
 * nothing listens for it (a Queue during a Redis outage: one multi-line ECONNREFUSED stack per
 * retry), and Node prints its warnings to stderr. An entry file calls this once, after its logger.
 *
 * The same text within a second is logged once (with how often it repeated since), as the Redis
 * factory does for connection errors: a flapping connection must not flood the log.
 */
export function routeConsoleToLogger(logger: Logger): () => void {
  const target = console;
  const saved = {
    log: target.log,
    info: target.info,
    warn: target.warn,
    error: target.error,
    debug: target.debug,
    trace: target.trace,
  };
  const last = new Map<string, { at: number; repeated: number }>();
  const to =
    (level: Level) =>
    (...args: unknown[]): void => {
      const err = args.find((arg): arg is Error => arg instanceof Error);
      const text = err && args.length === 1 ? err.message : format(...args);
      const key = `${level}:${text}`;
      const now = Date.now();
      const seen = last.get(key);
      if (seen && now - seen.at < 1_000) {
        seen.repeated++;
        return;
      }
      if (last.size > 1_000) last.clear();
      last.set(key, { at: now, repeated: 0 });
      const fields = {
        source: 'console',
        ...(err ? { err } : {}),
        ...(seen?.repeated ? { repeated: seen.repeated } : {}),
      };
      logger[level](fields, text.split('\n')[0] ?? text);
    };
  Object.assign(target, {
    log: to('info'),
    info: to('info'),
    warn: to('warn'),
    error: to('error'),
    debug: to('debug'),
    trace: to('debug'),
  });
  // Node's default warning printer is a 'warning' listener installed at start: replace it.
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  const onWarning = (warning: Error) => logger.warn({ err: warning, source: 'node' }, warning.message);
  process.on('warning', onWarning);
  return () => {
    Object.assign(target, saved);
    process.off('warning', onWarning);
    for (const printer of printers) process.on('warning', printer);
  };
}
