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

/** Which job a task's webhook URL names, and its attempt (see webhookUrl). */
export function webhookOwner(task: {
  webhook?: string | undefined;
}): { jobId: string; attempt: string | null } | undefined {
  if (!task.webhook) return undefined;
  try {
    const url = new URL(task.webhook);
    const match = /\/webhooks\/inference\/([^/]+)$/.exec(url.pathname);
    if (!match) return undefined;
    return { jobId: decodeURIComponent(match[1]!), attempt: url.searchParams.get('attempt') };
  } catch {
    return undefined;
  }
}

/** Does this task's webhook URL name this job (and this attempt, when given)? */
export function belongsTo(task: { webhook?: string | undefined }, jobId: string, attempt?: number): boolean {
  const owner = webhookOwner(task);
  return owner?.jobId === jobId && (attempt === undefined || owner.attempt === String(attempt));
}
