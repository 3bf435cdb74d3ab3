/**
 * The history: PostgreSQL keeps what has finished (jobs, batches, every charge as a line item);
 * the archiver writes it from the outboxes; reads merge it with the live records; the costs
 * report and line items come from it; the audit checks it against the provider.
 */
export {
  type ArchiveBacklog,
  type ArchivePass,
  Archiver,
  type ArchiverOptions,
  readBacklog,
} from './archiver.js';
export { type AuditOptions, type AuditReport, auditBooks } from './audit.js';
export { historyCostReport, type ItemQuery, lineItems, type SourcedCostReport } from './costs.js';
export { asDatabaseError, connectDatabase, type Database, type DatabaseOptions } from './db.js';
export { keepMigrating, MIGRATIONS_DIR, migrateDatabase } from './migrate.js';
export { Records, type RecordsDeps } from './records.js';
export type { LineItem } from './writes.js';
