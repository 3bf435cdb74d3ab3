import { defaultLookup, type LookupFn } from './dns-cache.js';
import { checkedAddresses, isAllowedHost, refusal, type UrlPolicy } from './host-check.js';

export { addressRefusal } from './address-policy.js';
export { createCachedLookup, type LookupCacheOptions, type LookupFn, systemLookup } from './dns-cache.js';
export { type GuardedDispatcherOptions, guardedDispatcher } from './guarded-dispatcher.js';
export type { UrlPolicy } from './host-check.js';

export interface FetchableUrlOptions {
  /** The request field the URL came from (`video`, `images.1`): named in the error's issue. */
  field?: string;
  /** Resolver; defaults to the shared cached `dns.lookup`. */
  lookup?: LookupFn;
}

/**
 * Refuses (AppError URL_REFUSED, 400) a user-supplied URL our servers must not fetch: anything
 * but http(s), credentials in the URL, or a host that is, or resolves to, a non-public address
 * (loopback, private, link-local, CGNAT, metadata, ...), unless the host is allow-listed.
 * IP literals are judged as WHATWG URL normalises them, so `http://0x7f.1/` is 127.0.0.1.
 *
 * This is the early, friendly check (400 at submit time); the guarded dispatcher checks again
 * when it connects, and redirects must be re-checked by whoever follows them.
 */
export async function assertFetchableUrl(
  url: string,
  policy: UrlPolicy,
  options: FetchableUrlOptions = {},
): Promise<void> {
  const { field } = options;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refusal('not a valid URL', field);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw refusal(`only http and https URLs can be fetched, not ${parsed.protocol}`, field);
  }
  if (parsed.username || parsed.password) {
    throw refusal('URLs with a user name or password are not fetched', field);
  }
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isAllowedHost(policy, hostname, parsed.port, parsed.protocol)) return;
  await checkedAddresses(hostname, options.lookup ?? policy.lookup ?? defaultLookup, field);
}
