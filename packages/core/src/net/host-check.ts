import type { LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { AppError } from '../errors/app-error.js';
import { addressRefusal, hostnameRefusal } from './address-policy.js';
import type { LookupFn } from './dns-cache.js';

export interface UrlPolicy {
  /**
   * Hosts fetched without the address check, lowercase, as they appear in a URL's host: a
   * hostname (`media.internal`), a hostname with a port (`127.0.0.1:8080`), IPv6 in brackets
   * (`[::1]:8080`). Meant for the emulator and test servers, not for user content.
   */
  allowHosts: readonly string[];
  /** Resolver of every check under this policy; defaults to the shared cached `dns.lookup` (tests inject one). */
  lookup?: LookupFn;
}

export function refusal(reason: string, field = 'url', cause?: unknown): AppError {
  return new AppError('URL_REFUSED', `cannot fetch ${field}: ${reason}`, {
    statusCode: 400,
    issues: [{ path: field, message: reason }],
    ...(cause === undefined ? {} : { cause }),
  });
}

/** `hostname` as undici and node:net see it (IPv6 without brackets); `port` empty for the default. */
export function isAllowedHost(policy: UrlPolicy, hostname: string, port: string, protocol: string): boolean {
  if (policy.allowHosts.length === 0) return false;
  const host = (isIP(hostname) === 6 ? `[${hostname}]` : hostname).toLowerCase();
  const effectivePort = port || (protocol === 'https:' ? '443' : '80');
  return policy.allowHosts.includes(host) || policy.allowHosts.includes(`${host}:${effectivePort}`);
}

/**
 * The refusal that needs no DNS: a refused hostname, or an IP literal that is not public.
 * undefined when the literal is public or the name must be resolved to tell.
 */
export function staticRefusal(hostname: string, field?: string): AppError | undefined {
  const named = hostnameRefusal(hostname);
  if (named) return refusal(`${hostname} is ${named}`, field);
  if (isIP(hostname) === 0) return undefined;
  const reason = addressRefusal(hostname);
  return reason ? refusal(`${hostname} is ${reason}`, field) : undefined;
}

/**
 * Every address `hostname` (IPv6 without brackets) may be reached at, or a URL_REFUSED error when
 * any of them is not public: with several answers the connection may use any one.
 */
export async function checkedAddresses(
  hostname: string,
  lookup: LookupFn,
  field?: string,
): Promise<LookupAddress[]> {
  const refused = staticRefusal(hostname, field);
  if (refused) throw refused;
  const family = isIP(hostname);
  if (family !== 0) return [{ address: hostname, family }];
  let addresses: readonly LookupAddress[];
  try {
    addresses = await lookup(hostname);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A name that does not exist is the caller's mistake (400); a resolver that failed for now
    // (EAI_AGAIN, timeouts, SERVFAIL) is ours, and must not turn a good URL into a refusal.
    if (code === 'ENOTFOUND' || code === 'ENODATA' || code === undefined)
      throw refusal(`could not resolve host "${hostname}"${code ? ` (${code})` : ''}`, field, error);
    throw new Error(`DNS lookup of "${hostname}" failed for now (${code})`, { cause: error });
  }
  if (addresses.length === 0) throw refusal(`could not resolve host "${hostname}" (no addresses)`, field);
  for (const { address } of addresses) {
    const reason = addressRefusal(address);
    if (reason) throw refusal(`host "${hostname}" resolves to ${address}, ${reason}`, field);
  }
  return [...addresses];
}
