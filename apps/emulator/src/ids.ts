import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

function encode(value: bigint, length: number): string {
  let out = '';
  let rest = value;
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[Number(rest & 31n)] + out;
    rest >>= 5n;
  }
  return out;
}

/**
 * ULID-shaped (time prefix + randomness), lower case like the provider's ids. Not drawn from the
 * seeded PRNG on purpose: ids must stay unique across emulator restarts, or a Recast that kept its
 * Redis would adopt a stale task id from a previous run.
 */
export function newId(now: number = Date.now()): string {
  const random = BigInt(`0x${randomBytes(10).toString('hex')}`);
  return encode(BigInt(now), 10) + encode(random, 16);
}

export function newShortId(): string {
  return encode(BigInt(`0x${randomBytes(5).toString('hex')}`), 8);
}
