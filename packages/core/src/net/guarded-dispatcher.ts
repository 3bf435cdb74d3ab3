import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { defaultLookup, type LookupFn } from './dns-cache.js';
import { checkedAddresses, isAllowedHost, staticRefusal, type UrlPolicy } from './host-check.js';

export interface GuardedDispatcherOptions {
  /** Resolver; defaults to the shared cached `dns.lookup`. */
  lookup?: LookupFn;
  connectTimeoutMs?: number;
  /** Sockets per origin. */
  connections?: number;
}

/**
 * An undici Agent that checks addresses where it matters: when the socket connects. Checking a
 * URL first and letting the HTTP client resolve the name again leaves a window for DNS
 * rebinding (a public answer for the check, 127.0.0.1 for the connection); here the connection
 * goes to an address that was just checked. It does not follow redirects: callers do that
 * themselves, re-checking each Location with `assertFetchableUrl`.
 */
export function guardedDispatcher(policy: UrlPolicy, options: GuardedDispatcherOptions = {}): Agent {
  const lookup = options.lookup ?? policy.lookup ?? defaultLookup;
  const base = { timeout: options.connectTimeoutMs ?? 10_000 };
  // Allow-listed hosts resolve through the same lookup, unchecked.
  const direct = buildConnector({ ...base, lookup: lookupFunction(lookup, false) });
  const guarded = buildConnector({ ...base, lookup: lookupFunction(lookup, true) });
  return new Agent({
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    connect(connectOptions, callback) {
      const { hostname, port, protocol } = connectOptions;
      if (isAllowedHost(policy, hostname, port, protocol)) {
        direct(connectOptions, callback);
        return;
      }
      // node:net skips `lookup` for IP literals, so those are judged here; names by the lookup.
      const refused = staticRefusal(hostname);
      if (refused) callback(refused, null);
      else guarded(connectOptions, callback);
    },
  });
}

/** A `net.connect` lookup (one address or all, as asked) that may answer only with checked ones. */
function lookupFunction(lookup: LookupFn, check: boolean): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    (check ? checkedAddresses(hostname, lookup) : lookup(hostname).then((found) => [...found])).then(
      (addresses) => {
        const wanted = familyFilter(addresses, options.family);
        const first = wanted[0];
        if (!first) {
          const error: NodeJS.ErrnoException = new Error(
            `no address of the requested family for ${hostname}`,
          );
          error.code = 'ENOTFOUND';
          callback(error, []);
        } else if (options.all) callback(null, wanted);
        else callback(null, first.address, first.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, []),
    );
  };
}

function familyFilter(addresses: LookupAddress[], family: LookupOptions['family']): LookupAddress[] {
  const wanted = family === 4 || family === 'IPv4' ? 4 : family === 6 || family === 'IPv6' ? 6 : 0;
  return wanted === 0 ? addresses : addresses.filter((entry) => entry.family === wanted);
}
