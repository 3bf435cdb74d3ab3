/** API keys: hashed, per tenant and role. */
export * from './api-keys.js';
