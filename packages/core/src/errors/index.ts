/** The one error class (stable codes) and zod issues as field paths. */
export * from './app-error.js';
export * from './zod-issues.js';
