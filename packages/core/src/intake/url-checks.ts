import { AppError, isAppError } from '../errors/app-error.js';
import type { ReplaceInput } from '../model/schema.js';
import { assertFetchableUrl, type UrlPolicy } from '../net/ssrf.js';

/**
 * Every URL of a job's input (`video`, `images.N`) must be one Recast could fetch itself, whether
 * or not it will: a `duration_seconds` hint skips the probe, but the URL still goes to the
 * provider, and a provider that fetches `http://169.254.169.254/` or `http://10.0.0.1/` on our
 * behalf is the same hole. A DNS check, no fetch (the cached resolver: a manifest naming one host
 * 5,000 times resolves it once). `skip` holds URLs that are not the user's (upload placeholders).
 *
 * A resolver that fails for now (not "no such host") is a 503 the client retries, never a pass.
 */
export async function assertInputUrls(
  input: Pick<ReplaceInput, 'video' | 'images'>,
  policy: UrlPolicy,
  skip: ReadonlySet<string> = new Set(),
): Promise<void> {
  const fields: [string, string][] = [
    ['video', input.video],
    ...input.images.map((url, i): [string, string] => [`images.${i}`, url]),
  ];
  await assertUrlFields(
    fields.filter(([, url]) => !skip.has(url)),
    policy,
  );
}

/** Each `[field, url]` checked in order; the first refusal (URL_REFUSED, 400) names its field. */
export async function assertUrlFields(fields: readonly [string, string][], policy: UrlPolicy): Promise<void> {
  for (const [field, url] of fields) {
    try {
      await assertFetchableUrl(url, policy, { field });
    } catch (error) {
      if (isAppError(error)) throw error;
      throw new AppError('DNS_UNAVAILABLE', `${field}: ${(error as Error).message}; retry shortly`, {
        statusCode: 503,
        retryable: true,
        issues: [{ path: field, message: (error as Error).message }],
        cause: error,
      });
    }
  }
}
