/** Callbacks: signed (Standard Webhooks) job and batch callbacks to clients. */
export * from './notify.js';
export * from './payloads.js';
export * from './sender.js';
export * from './standard-webhooks.js';
export * from './terminal.js';
