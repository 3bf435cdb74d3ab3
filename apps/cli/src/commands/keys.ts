import { Readable } from 'node:stream';
import type { Context } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { ApiKeySchema, CreatedKeySchema, KeyListSchema } from '../schemas.js';

export interface CreateKeyOptions {
  name: string;
  role: 'admin' | 'submitter' | 'viewer';
  tenant: string;
}

/** Mint a key (admin keys only): the key itself is printed once, on stdout, and never again. */
export async function createKey(ctx: Context, opts: CreateKeyOptions): Promise<number> {
  const created = await ctx.client.json(CreatedKeySchema, '/v1/admin/keys', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Readable.from([JSON.stringify({ name: opts.name, role: opts.role, tenant: opts.tenant })]),
  });
  if (ctx.config.json) {
    ctx.out.data(created);
    return EXIT.OK;
  }
  ctx.out.line(created.key);
  ctx.out.note(
    `created ${created.id} (${created.role} of tenant ${created.tenant}); the key above is shown only this once`,
  );
  return EXIT.OK;
}

export async function listKeys(ctx: Context): Promise<number> {
  const list = await ctx.client.json(KeyListSchema, '/v1/admin/keys');
  if (ctx.config.json) {
    ctx.out.data(list);
    return EXIT.OK;
  }
  ctx.out.table(
    ['ID', 'NAME', 'ROLE', 'TENANT', 'PREFIX', 'CREATED', 'REVOKED'],
    list.data.map((k) => [k.id, k.name, k.role, k.tenant, `${k.prefix}…`, k.created_at, k.revoked_at ?? '-']),
  );
  return EXIT.OK;
}

export async function revokeKey(ctx: Context, id: string): Promise<number> {
  const revoked = await ctx.client.json(ApiKeySchema, `/v1/admin/keys/${encodeURIComponent(id)}`, {
    method: 'DELETE',
  });
  if (ctx.config.json) ctx.out.data(revoked);
  else ctx.out.line(`revoked ${revoked.id} (${revoked.name}) at ${revoked.revoked_at}`);
  return EXIT.OK;
}
