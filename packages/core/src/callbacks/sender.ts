import { type Dispatcher, request } from 'undici';
import { isAppError } from '../errors/app-error.js';
import { redact } from '../media/range-reader.js';
import { assertFetchableUrl, guardedDispatcher, type LookupFn, type UrlPolicy } from '../net/ssrf.js';
import { signWebhook, webhookSigningKey } from './standard-webhooks.js';

/** Origin and path of a URL, for logs: callback URLs may carry a receiver's token in the query. */
export const redactUrl: (url: string) => string = redact;

export interface CallbackSenderOptions {
  /** Every current signing secret (see standard-webhooks.ts); each signs every message. */
  secrets: readonly string[];
  /** Callback URLs are user input: the SSRF policy applies to them as to media URLs. */
  policy: UrlPolicy;
  /** Deadline for one attempt: connect, headers and body. */
  timeoutMs: number;
  /** Resolver; defaults to the shared cached `dns.lookup`. */
  lookup?: LookupFn;
  userAgent?: string;
}

export interface CallbackMessage {
  url: string;
  /** The `webhook-id`, stable across retries. */
  id: string;
  /** The JSON body, sent and signed byte for byte. */
  body: string;
}

/**
 * What one attempt came to:
 * - delivered: a 2xx;
 * - gone: 410, the receiver asked us to stop sending this;
 * - refused: the URL may not be fetched (SSRF policy, scheme, credentials): retrying cannot help;
 * - retry: anything else (other 3xx/4xx, 5xx, timeout, connection error, a name that does not
 *   resolve), worth another attempt.
 */
export type DeliveryResult =
  | { outcome: 'delivered'; status: number; timestamp: number; durationMs: number }
  | { outcome: 'gone'; status: 410; timestamp: number; durationMs: number }
  | { outcome: 'refused'; reason: string; timestamp: number; durationMs: number }
  | { outcome: 'retry'; status?: number; reason: string; timestamp: number; durationMs: number };

export interface CallbackSender {
  send(message: CallbackMessage, now?: Date): Promise<DeliveryResult>;
  close(): Promise<void>;
}

/**
 * Signs and POSTs callbacks through one guarded dispatcher, so the address actually connected to
 * is the one checked. Redirects are not followed: a receiver must give its final URL (a redirect
 * counts as a failed attempt). The response body is drained and ignored.
 */
export function createCallbackSender(options: CallbackSenderOptions): CallbackSender {
  if (options.secrets.length === 0) throw new Error('callbacks need at least one signing secret');
  // Fail at start, not at the first callback, on a malformed secret.
  for (const secret of options.secrets) webhookSigningKey(secret);
  const lookupOption = options.lookup ? { lookup: options.lookup } : {};
  const dispatcher: Dispatcher = guardedDispatcher(options.policy, {
    ...lookupOption,
    connectTimeoutMs: options.timeoutMs,
  });
  const userAgent = options.userAgent ?? 'Recast-Webhooks/1';

  return {
    async send(message, now = new Date()) {
      const timestamp = Math.floor(now.getTime() / 1000);
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      const signal = AbortSignal.timeout(options.timeoutMs);
      try {
        // The early check also refuses what the dispatcher never sees (file:, credentials).
        await assertFetchableUrl(message.url, options.policy, { field: 'callback_url', ...lookupOption });
        const headers = {
          'content-type': 'application/json',
          'user-agent': userAgent,
          ...signWebhook({ id: message.id, timestamp, body: message.body, secrets: options.secrets }),
        };
        const response = await request(message.url, {
          method: 'POST',
          headers,
          body: message.body,
          dispatcher,
          signal,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        });
        const status = response.statusCode;
        await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
        const durationMs = elapsed();
        if (status >= 200 && status < 300) return { outcome: 'delivered', status, timestamp, durationMs };
        if (status === 410) return { outcome: 'gone', status, timestamp, durationMs };
        const reason =
          status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`;
        return { outcome: 'retry', status, reason, timestamp, durationMs };
      } catch (error) {
        const durationMs = elapsed();
        if (isAppError(error) && error.code === 'URL_REFUSED') {
          const reason = error.issues?.[0]?.message ?? error.message;
          // A name that does not resolve today may resolve tomorrow (a DNS change in flight); a
          // private address or a bad scheme will not change, so only those stop for good.
          const dnsCode = (error.cause as NodeJS.ErrnoException | undefined)?.code;
          if (dnsCode === 'ENOTFOUND' || dnsCode === 'ENODATA')
            return { outcome: 'retry', reason, timestamp, durationMs };
          return { outcome: 'refused', reason, timestamp, durationMs };
        }
        const reason = signal.aborted
          ? `no answer within ${options.timeoutMs} ms`
          : `${redact(message.url)}: ${error instanceof Error ? error.message : String(error)}`;
        return { outcome: 'retry', reason, timestamp, durationMs };
      }
    },
    async close() {
      await dispatcher.close();
    },
  };
}
