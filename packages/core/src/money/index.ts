/** Money: prices, budgets and the ledger (reservations, charges, the costs report, billing checks). */
export * from './billing-checks.js';
export * from './budgets.js';
export * from './costs.js';
export * from './ledger.js';
export * from './price-table.js';
export * from './scopes.js';
