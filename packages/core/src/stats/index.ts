/** The deployment's figures for GET /v1/stats. */
export * from './stats.js';
