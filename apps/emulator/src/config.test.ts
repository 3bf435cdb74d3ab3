import { describe, expect, it } from 'vitest';
import { loadConfig, parseRateLimits } from './config.js';

describe('loadConfig', () => {
  it('has local defaults', () => {
    expect(loadConfig({})).toEqual({
      port: 4010,
      host: '127.0.0.1',
      publicUrl: undefined,
      apiKey: 'inf_local_emulator',
      stepMs: 1000,
      heartbeatMs: 10_000,
      seed: 1,
      downloadTimeoutMs: 30_000,
      rateLimits: undefined,
      faults: {},
      logLevel: 'info',
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      EMULATOR_PORT: '5000',
      EMULATOR_HOST: '0.0.0.0',
      EMULATOR_PUBLIC_URL: 'http://emulator:5000',
      EMULATOR_API_KEY: 'inf_x',
      EMULATOR_STEP_MS: '50',
      EMULATOR_HEARTBEAT_MS: '200',
      EMULATOR_SEED: '9',
      EMULATOR_DOWNLOAD_TIMEOUT_MS: '5000',
      EMULATOR_RATE_LIMITS: 'run=5/1000, upload=off',
      EMULATOR_FAULTS: '{"failureRate":0.1,"envelope":"v1","latencyMs":{"min":1,"max":5}}',
      LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      port: 5000,
      host: '0.0.0.0',
      publicUrl: 'http://emulator:5000',
      apiKey: 'inf_x',
      stepMs: 50,
      heartbeatMs: 200,
      seed: 9,
      downloadTimeoutMs: 5000,
      rateLimits: { run: { limit: 5, windowMs: 1000 }, upload: false },
      faults: { failureRate: 0.1, envelope: 'v1', latencyMs: { min: 1, max: 5 } },
      logLevel: 'debug',
    });
  });

  it('turns rate limits off', () => {
    expect(loadConfig({ EMULATOR_RATE_LIMITS: 'off' }).rateLimits).toBe(false);
  });

  it.each([
    [{ EMULATOR_PORT: 'abc' }, 'EMULATOR_PORT'],
    [{ EMULATOR_STEP_MS: '0' }, 'EMULATOR_STEP_MS'],
    [{ EMULATOR_PUBLIC_URL: 'ftp://x' }, 'EMULATOR_PUBLIC_URL'],
    [{ EMULATOR_RATE_LIMITS: 'run=fast' }, 'EMULATOR_RATE_LIMITS'],
    [{ EMULATOR_FAULTS: '{not json' }, 'EMULATOR_FAULTS'],
    [{ EMULATOR_FAULTS: '{"failureRate": 3}' }, 'EMULATOR_FAULTS.failureRate'],
    [{ EMULATOR_FAULTS: '{"statusText": "true"}' }, 'EMULATOR_FAULTS.statusText'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ])('rejects %o naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });
});

describe('parseRateLimits', () => {
  it('reads partial lists', () => {
    expect(parseRateLimits('get=10/500')).toEqual({ get: { limit: 10, windowMs: 500 } });
  });

  it('rejects a zero limit', () => {
    expect(() => parseRateLimits('run=0/1000')).toThrow(/positive/);
  });
});
