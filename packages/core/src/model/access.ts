import { z } from 'zod';

/** Tenant ids: lowercase letters, digits, `_` and `-`, 1-63 characters, starting with a letter or digit. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const TENANT_RULE = '1-63 lowercase letters, digits, _ and -, starting with a letter or digit';

/** What is wrong with a tenant id, naming the character at fault; undefined when it is fine. */
export function tenantIdProblem(id: string): string | undefined {
  if (TENANT_PATTERN.test(id)) return undefined;
  if (id.length === 0) return `is empty: a tenant id is ${TENANT_RULE}`;
  const chars = [...id];
  if (chars.length > 63) return `is ${chars.length} characters long: a tenant id is ${TENANT_RULE}`;
  const at = chars.findIndex((c) => !/[a-z0-9_-]/.test(c));
  if (at >= 0) {
    const char = chars[at]!;
    const shown = /^[\x21-\x7e]$/.test(char)
      ? `"${char}"`
      : `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    const hint = /[A-Z]/.test(char) ? ` (use "${char.toLowerCase()}")` : '';
    return `has ${shown} at position ${at + 1}${hint}: a tenant id is ${TENANT_RULE}`;
  }
  return `starts with "${chars[0]}": a tenant id is ${TENANT_RULE}`;
}

/** A tenant id field: the message names the character at fault. */
export const TenantIdSchema = z
  .string({ message: `must be a tenant id (${TENANT_RULE})` })
  .superRefine((id, ctx) => {
    const problem = tenantIdProblem(id);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * Roles, widest first. `admin`: everything, every tenant (and key management). `submitter`:
 * submit, cancel and retry, and read its own tenant. `viewer`: read its own tenant.
 */
export const ROLES = ['admin', 'submitter', 'viewer'] as const;
export const RoleSchema = z.enum(ROLES, { message: 'must be "admin", "submitter" or "viewer"' });
export type Role = z.infer<typeof RoleSchema>;
