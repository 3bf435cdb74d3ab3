/** Infrastructure: the Redis factory (producer and worker roles), every key, the logger. */

export * from './console.js';
export * from './durable.js';
export * from './keys.js';
export * from './logger.js';
export * from './redis.js';
