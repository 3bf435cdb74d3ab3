/** Media: MP4/MOV durations from HTTP range requests or local files, and the job duration estimate. */
export * from './estimate.js';
export * from './local-probe.js';
export * from './probe.js';
