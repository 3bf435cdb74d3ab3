import ipaddr from 'ipaddr.js';

type IP = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Hostnames that reach a cloud provider's instance metadata service. They resolve to link-local
 * addresses anyway, but refusing them by name gives a clearer message and does not depend on the
 * resolver of the moment.
 */
const METADATA_HOSTNAMES = new Set(['metadata.google.internal', 'metadata']);
const METADATA_ADDRESSES = new Set(['169.254.169.254', 'fd00:ec2:0:0:0:0:0:254']);

const RANGE_REASONS: Record<string, string> = {
  unspecified: 'the unspecified address',
  broadcast: 'the broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT address (100.64.0.0/10)',
  private: 'a private network address',
  uniqueLocal: 'a private network address (IPv6 unique local)',
  reserved: 'a reserved address',
};

/** Why a hostname may not be fetched whatever it resolves to, or undefined. */
export function hostnameRefusal(hostname: string): string | undefined {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return METADATA_HOSTNAMES.has(name) ? 'the cloud metadata service' : undefined;
}

/**
 * Why connecting to this IP address is refused, or undefined for a public unicast address.
 * Anything ipaddr.js does not call `unicast` is refused (deny by default): private, loopback,
 * link-local, CGNAT, multicast, documentation, benchmarking, Teredo, ...
 */
export function addressRefusal(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  let ip: IP = ipaddr.parse(address);
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6;
    // ::a.b.c.d (IPv4-compatible, deprecated by RFC 4291) is "unicast" to ipaddr.js; nothing
    // legitimate uses it and some stacks route it to IPv4, so refuse it outright.
    if (v6.parts.slice(0, 6).every((part) => part === 0) && !v6.parts.every((part) => part === 0)) {
      return ip.range() === 'loopback' ? RANGE_REASONS.loopback : 'an IPv4-compatible IPv6 address';
    }
    // Addresses that carry an IPv4 address reach that address: judge the IPv4 one.
    const embedded = embeddedIPv4(v6);
    if (embedded) ip = embedded;
  }
  if (METADATA_ADDRESSES.has(ip.toNormalizedString())) return 'the cloud metadata address';
  const range = ip.range();
  if (range === 'unicast') return undefined;
  return RANGE_REASONS[range] ?? `a special-purpose address (${range})`;
}

/** The IPv4 address inside IPv4-mapped, IPv4-translated, NAT64 (64:ff9b::/96) and 6to4 addresses. */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const parts = ip.parts;
  const fromWords = (high: number, low: number) =>
    new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  switch (ip.range()) {
    case 'ipv4Mapped':
      return ip.toIPv4Address();
    case 'rfc6145':
      return fromWords(parts[6] ?? 0, parts[7] ?? 0);
    case 'rfc6052':
      // Only the well-known /96 prefix embeds the address in the last 32 bits; 64:ff9b:1::/48 is
      // for local use and stays refused below.
      return parts.slice(2, 6).every((part) => part === 0)
        ? fromWords(parts[6] ?? 0, parts[7] ?? 0)
        : undefined;
    case '6to4':
      return fromWords(parts[1] ?? 0, parts[2] ?? 0);
    default:
      return undefined;
  }
}
