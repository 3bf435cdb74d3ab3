import type { LookupAddress } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';

/** Resolves a hostname to every address it has (like `dns.lookup(host, { all: true })`). */
export type LookupFn = (hostname: string) => Promise<readonly LookupAddress[]>;

export const systemLookup: LookupFn = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface LookupCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/**
 * A small in-process cache in front of a resolver: a manifest names the same few hosts thousands
 * of times. Failures are not cached. The answer that was checked is also the one connected to
 * (the guarded dispatcher asks the same cache), so caching never opens a rebinding window.
 */
export function createCachedLookup(resolve: LookupFn, options: LookupCacheOptions = {}): LookupFn {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 512;
  const now = options.now ?? Date.now;
  const entries = new Map<string, { expires: number; addresses: readonly LookupAddress[] }>();
  return async (hostname) => {
    const key = hostname.toLowerCase();
    const hit = entries.get(key);
    if (hit && hit.expires > now()) return hit.addresses;
    entries.delete(key);
    const addresses = await resolve(hostname);
    entries.set(key, { expires: now() + ttlMs, addresses });
    // Map iteration is insertion order, so the first key is the oldest entry.
    while (entries.size > maxEntries) {
      const oldest = entries.keys().next().value;
      if (oldest === undefined) break;
      entries.delete(oldest);
    }
    return addresses;
  };
}

/** The resolver used when a caller injects none. */
export const defaultLookup: LookupFn = createCachedLookup(systemLookup);
