import type { Context } from '../context.js';
import { EXIT } from '../exit-codes.js';

export interface CreateKeyOptions {
  name: string;
  role: 'admin' | 'submitter' | 'viewer';
  tenant: string;
}

/** Mint a key (admin keys only): the key itself is printed once, on stdout, and never again. */
export async function createKey(ctx: Context, opts: CreateKeyOptions): Promise<number> {
  const { api } = ctx.client;
  const created = await api.send(
    api.api.POST('/v1/admin/keys', { body: { name: opts.name, role: opts.role, tenant: opts.tenant } }),
  );
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
  const { api } = ctx.client;
  const list = await api.send(api.api.GET('/v1/admin/keys'));
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
  const { api } = ctx.client;
  const revoked = await api.send(api.api.DELETE('/v1/admin/keys/{id}', { params: { path: { id } } }));
  if (ctx.config.json) ctx.out.data(revoked);
  else ctx.out.line(`revoked ${revoked.id} (${revoked.name}) at ${revoked.revoked_at}`);
  return EXIT.OK;
}
