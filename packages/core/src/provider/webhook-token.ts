import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The provider does not sign task webhooks, so each job's webhook URL carries an unguessable
 * token: HMAC-SHA256 of the job id under a server secret. Verifiable without a Redis read, so a
 * forged request costs us nothing.
 */
export function webhookToken(secret: string, jobId: string): string {
  return createHmac('sha256', secret).update(`inference-webhook:${jobId}`).digest('base64url');
}

export function verifyWebhookToken(secret: string, jobId: string, token: string | undefined): boolean {
  if (!token) return false;
  const expected = Buffer.from(webhookToken(secret, jobId));
  const given = Buffer.from(token);
  // Constant time, so the token cannot be guessed byte by byte from response timings.
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The URL the worker hands the provider for one job's terminal webhook. */
export function webhookUrl(publicUrl: string, secret: string, jobId: string, attempt: number): string {
  const url = new URL(
    `webhooks/inference/${encodeURIComponent(jobId)}`,
    publicUrl.endsWith('/') ? publicUrl : `${publicUrl}/`,
  );
  url.searchParams.set('attempt', String(attempt));
  url.searchParams.set('token', webhookToken(secret, jobId));
  return url.toString();
}
