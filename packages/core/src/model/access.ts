import { z } from 'zod';

/** Tenant ids: lowercase letters, digits, `_` and `-`, 1-63 characters, starting with a letter or digit. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * Roles, widest first. `admin`: everything, every tenant (and key management). `submitter`:
 * submit, cancel and retry, and read its own tenant. `viewer`: read its own tenant.
 */
export const ROLES = ['admin', 'submitter', 'viewer'] as const;
export const RoleSchema = z.enum(ROLES, { message: 'must be "admin", "submitter" or "viewer"' });
export type Role = z.infer<typeof RoleSchema>;
