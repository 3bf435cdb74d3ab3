import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks (https://www.standardwebhooks.com), symmetric `v1` signatures:
 * `webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`,
 * one entry per current secret, space-separated, so a receiver holding either the old or the new
 * secret verifies during a rotation.
 *
 * Secrets, in the order we recommend them:
 * - `whsec_<base64>`: the spec's format; the HMAC key is the base64-decoded bytes (16 to 64).
 *   This is what the official `standardwebhooks` libraries take by default.
 * - any other string of at least 16 printable ASCII characters (no spaces): the key is its bytes,
 *   as is. Receivers on the official libraries must then say so (`{ format: 'raw' }` in
 *   JavaScript). ASCII only because that library turns a raw string into bytes by char code,
 *   which agrees with UTF-8 on ASCII alone.
 */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

const MIN_KEY_BYTES = 16;
const MAX_KEY_BYTES = 64;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The HMAC key of a configured secret; throws (without echoing the secret) when it is unusable. */
export function webhookSigningKey(secret: string): Buffer {
  if (secret.startsWith(WEBHOOK_SECRET_PREFIX)) {
    const encoded = secret.slice(WEBHOOK_SECRET_PREFIX.length);
    const key = BASE64.test(encoded) ? Buffer.from(encoded, 'base64') : Buffer.alloc(0);
    if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
      throw new Error(
        `invalid webhook secret: after "${WEBHOOK_SECRET_PREFIX}" expected base64 of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes`,
      );
    }
    return key;
  }
  if (secret.length < MIN_KEY_BYTES || !/^[\x21-\x7e]+$/.test(secret)) {
    throw new Error(
      `invalid webhook secret: use "${WEBHOOK_SECRET_PREFIX}<base64>" or at least ${MIN_KEY_BYTES} printable ASCII characters`,
    );
  }
  return Buffer.from(secret, 'ascii');
}

/** A fresh secret in the spec's format (32 random bytes). */
export function generateWebhookSecret(): string {
  return `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

function hmac(key: Buffer, id: string, timestamp: number | string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
}

export interface SignWebhookInput {
  /** The message id: the same for every retry of one message, so receivers can dedupe on it. */
  id: string;
  /** Integer unix seconds of this attempt. */
  timestamp: number;
  /** The exact bytes that will be sent. */
  body: string;
  /** Every current secret; the message is signed with each of them. */
  secrets: readonly string[];
}

/** The three Standard Webhooks headers for one delivery attempt. */
export function signWebhook(input: SignWebhookInput): Record<string, string> {
  const { id, timestamp, body, secrets } = input;
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new Error(`webhook timestamp must be integer unix seconds, got ${timestamp}`);
  }
  if (secrets.length === 0) throw new Error('at least one webhook secret is needed to sign');
  // The signed content is dot-separated, so an id with a dot or space would be ambiguous.
  if (!/^[^\s.]+$/.test(id)) throw new Error('webhook id must be non-empty, without dots or spaces');
  const signatures = secrets.map(
    (secret) => `v1,${hmac(webhookSigningKey(secret), id, timestamp, body).toString('base64')}`,
  );
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures.join(' '),
  };
}

export type WebhookHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyWebhookInput {
  /** The request's headers (any case). */
  headers: WebhookHeaders;
  /** The raw request body, exactly as received: never a re-serialised parse. */
  body: string | Uint8Array;
  /** Every secret the receiver currently accepts; one matching signature suffices. */
  secrets: readonly string[];
  /** How far the timestamp may be from now, either way (replay protection). */
  toleranceSeconds?: number;
  now?: Date;
}

export type WebhookVerificationFailure =
  | 'missing_header'
  | 'invalid_timestamp'
  | 'timestamp_out_of_tolerance'
  | 'no_matching_signature';

export type WebhookVerification =
  | { ok: true; id: string; timestamp: number }
  | { ok: false; reason: WebhookVerificationFailure };

function header(headers: WebhookHeaders, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    const first = typeof value === 'string' ? value : value?.[0];
    if (first) return first;
  }
  return undefined;
}

/** Checks a received callback: timestamp within tolerance, and a `v1` signature of a known secret. */
export function verifyWebhook(input: VerifyWebhookInput): WebhookVerification {
  const id = header(input.headers, 'webhook-id');
  const timestampText = header(input.headers, 'webhook-timestamp');
  const signatureHeader = header(input.headers, 'webhook-signature');
  if (!id || !timestampText || !signatureHeader) return { ok: false, reason: 'missing_header' };
  if (!/^\d{1,15}$/.test(timestampText)) return { ok: false, reason: 'invalid_timestamp' };
  const timestamp = Number(timestampText);
  const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const tolerance = input.toleranceSeconds ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance) return { ok: false, reason: 'timestamp_out_of_tolerance' };

  const given = signatureHeader
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  for (const secret of input.secrets) {
    // Signed over the header's own timestamp text, so a receiver never re-formats it.
    const expected = hmac(webhookSigningKey(secret), id, timestampText, input.body);
    // timingSafeEqual needs equal lengths; a length mismatch reveals nothing about the key.
    if (given.some((sig) => sig.length === expected.length && timingSafeEqual(sig, expected))) {
      return { ok: true, id, timestamp };
    }
  }
  return { ok: false, reason: 'no_matching_signature' };
}
