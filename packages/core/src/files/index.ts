/** File inputs and kept outputs: sniffing, spooling, provider uploads, the output store, retention. */
export * from './byte-range.js';
export * from './file-inputs.js';
export * from './output-store.js';
export * from './retain.js';
export * from './sniff.js';
export * from './spool.js';
export * from './uploader.js';
