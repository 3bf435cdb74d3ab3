import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

export interface LoggerConfig {
  level?: string;
  name?: string;
  /** Write to this destination instead of stdout (tests pass a stream to capture lines). */
  destination?: NodeJS.WritableStream;
}

/**
 * The one logger factory. Secrets never reach a log line: authorization headers, API keys,
 * webhook tokens and the server secret are redacted wherever they appear.
 */
export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = {
    level: config.level ?? 'info',
    base: config.name ? { service: config.name } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        '*.apiKey',
        '*.token',
        '*.secret',
        'apiKey',
        'token',
        'secret',
        'webhookSecret',
      ],
      censor: '[redacted]',
    },
  };
  return config.destination ? pino(options, config.destination as pino.DestinationStream) : pino(options);
}
