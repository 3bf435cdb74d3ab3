/** Configuration shared by every process, and the env parsing helpers. */
export * from './common.js';
export * from './env.js';
