/** Intake: a job coming in (validated, estimated, written and lined up in one step) and a cancel. */
export * from './cancel.js';
export * from './creator.js';
export * from './submit.js';
export * from './url-checks.js';
