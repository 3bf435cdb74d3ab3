import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ulid } from 'ulid';
import { z } from 'zod';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import { type Role, RoleSchema, tenantIdProblem } from '../model/access.js';

/** What a request may do, and for whom: decided by its API key. */
export interface Principal {
  keyId: string;
  role: Role;
  /** The key's tenant (an admin acts for its own unless it names another one with X-Tenant). */
  tenant: string;
  /** Sees and touches every tenant's resources (admin keys). */
  allTenants: boolean;
}

export const ApiKeyRecordSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: RoleSchema,
  tenant: z.string(),
  /** The first characters of the key, to recognise it in a listing (never enough to use it). */
  prefix: z.string(),
  sha256: z.string(),
  created_at: z.string(),
  revoked_at: z.string().optional(),
});
export type ApiKeyRecord = z.infer<typeof ApiKeyRecordSchema>;

/** A key as listings show it: never the hash, never the key. */
export function apiKeyView(record: ApiKeyRecord) {
  const { sha256: _, ...rest } = record;
  return { object: 'api_key' as const, ...rest, revoked_at: record.revoked_at ?? null };
}

const REVOKED = 'revoked:';

export const API_KEY_PATTERN = /^rk_[A-Za-z0-9_]{16,128}$/;

function sha256(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * API keys in Redis, stored only as SHA-256 hashes (a key is 256 random bits, so a fast hash is
 * enough: there is nothing to brute-force, unlike a password). A key is shown once, when created.
 * A lookup is one read (the record is kept under the key's hash as well as by id); revocation
 * rewrites both in one MULTI, so a revoked key fails at once on every API process (after at most
 * `cacheMs` on processes that looked it up just before).
 */
export class ApiKeys {
  /** Live records by key hash, for `cacheMs`: a poller's every request need not read Redis. */
  private readonly cache = new Map<string, { record: ApiKeyRecord; expires: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /**
     * How long a looked-up key is trusted without reading Redis again (API_KEY_CACHE_MS). A key
     * revoked here stops at once in this process, and within this long in every other one.
     */
    private readonly cacheMs = 0,
  ) {}

  /** Mint a key for a tenant and role. Returns the key itself (shown once) and its record. */
  async create(input: { name: string; role: Role; tenant: string; now?: Date }) {
    const problem = tenantIdProblem(input.tenant);
    if (problem) {
      throw new AppError('VALIDATION_FAILED', `invalid tenant: ${problem}`, {
        statusCode: 400,
        issues: [{ path: 'tenant', message: problem }],
      });
    }
    const key = `rk_${randomBytes(32).toString('base64url').replace(/-/g, '_')}`;
    const record = await this.store(key, input);
    return { key, record };
  }

  /**
   * Make sure `key` exists (the bootstrap admin key from the environment). Idempotent: the same
   * key maps to the same record on every start. A key that was revoked stays revoked (undefined is
   * returned): a restart with the old value in the environment must not bring it back.
   */
  async ensure(
    key: string,
    input: { name: string; role: Role; tenant: string },
  ): Promise<ApiKeyRecord | undefined> {
    if (!API_KEY_PATTERN.test(key)) {
      throw new AppError('CONFIG_INVALID', 'an API key is rk_ followed by 16-128 letters, digits or _', {
        statusCode: 500,
      });
    }
    const existing = await this.redis.get(this.keys.apiKeyHash(sha256(key)));
    if (existing?.startsWith(REVOKED)) return undefined;
    if (existing) return this.lookup(key);
    return this.store(key, input);
  }

  private async store(key: string, input: { name: string; role: Role; tenant: string; now?: Date }) {
    const record: ApiKeyRecord = {
      id: `key_${ulid()}`,
      name: input.name,
      role: input.role,
      tenant: input.tenant,
      prefix: key.slice(0, 10),
      sha256: sha256(key),
      created_at: (input.now ?? new Date()).toISOString(),
    };
    // The record under its hash too: a lookup is one GET on the request path.
    await this.redis
      .multi()
      .hset(this.keys.apiKeys(), record.id, JSON.stringify(record))
      .set(this.keys.apiKeyHash(record.sha256), JSON.stringify(record))
      .exec();
    return record;
  }

  /** The live record of a key, or undefined (unknown, malformed or revoked). */
  async lookup(key: string): Promise<ApiKeyRecord | undefined> {
    if (!API_KEY_PATTERN.test(key)) return undefined;
    const hash = sha256(key);
    const hit = this.cache.get(hash);
    if (hit && hit.expires > Date.now()) return hit.record;
    const raw = await this.redis.get(this.keys.apiKeyHash(hash));
    if (!raw || raw.startsWith(REVOKED)) {
      this.cache.delete(hash);
      return undefined;
    }
    const record = ApiKeyRecordSchema.parse(JSON.parse(raw));
    if (record.revoked_at) return undefined;
    if (this.cacheMs > 0) {
      // Bounded: a flood of distinct (valid) keys must not grow this without end.
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(hash, { record, expires: Date.now() + this.cacheMs });
    }
    return record;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const all = await this.redis.hgetall(this.keys.apiKeys());
    return Object.values(all)
      .map((raw) => ApiKeyRecordSchema.parse(JSON.parse(raw)))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Revoke a key by id; idempotent. Undefined for an unknown id. */
  async revoke(id: string, now = new Date()): Promise<ApiKeyRecord | undefined> {
    const raw = await this.redis.hget(this.keys.apiKeys(), id);
    if (!raw) return undefined;
    const record = ApiKeyRecordSchema.parse(JSON.parse(raw));
    if (record.revoked_at) return record;
    const revoked = { ...record, revoked_at: now.toISOString() };
    this.cache.delete(record.sha256);
    await this.redis
      .multi()
      .hset(this.keys.apiKeys(), id, JSON.stringify(revoked))
      // A tombstone, not a delete: the hash stays known as revoked (see ensure).
      .set(this.keys.apiKeyHash(record.sha256), `${REVOKED}${id}`)
      .exec();
    return revoked;
  }
}
