import { Output, type Streams } from './cli/output.js';
import { type CliClient, createCliClient } from './client.js';

export const DEFAULT_URL = 'http://127.0.0.1:3000';

/** The global flags, as commander hands them over. */
export interface GlobalOptions {
  url?: string;
  apiKey?: string;
  tenant?: string;
  json?: boolean;
}

export interface Config {
  url: string;
  apiKey?: string;
  tenant?: string;
  json: boolean;
}

/** Flags win over the environment, which wins over the defaults; empty variables count as unset. */
export function resolveConfig(opts: GlobalOptions, env: Record<string, string | undefined>): Config {
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] || undefined);
  const apiKey = pick(opts.apiKey, 'RECAST_API_KEY');
  const tenant = pick(opts.tenant, 'RECAST_TENANT');
  return {
    url: pick(opts.url, 'RECAST_URL') ?? DEFAULT_URL,
    json: opts.json === true,
    ...(apiKey ? { apiKey } : {}),
    ...(tenant ? { tenant } : {}),
  };
}

export interface Io {
  streams: Streams;
  env: Record<string, string | undefined>;
  /** Aborted on Ctrl-C: a watch stops polling and says how to resume. */
  signal?: AbortSignal;
  /** Poll interval of --watch. */
  pollMs?: number;
}

export interface Context {
  client: CliClient;
  out: Output;
  config: Config;
  signal?: AbortSignal;
  pollMs: number;
}

export function createContext(opts: GlobalOptions, io: Io): Context {
  const config = resolveConfig(opts, io.env);
  return {
    config,
    out: new Output(io.streams, config.json),
    client: createCliClient({
      baseUrl: config.url,
      ...(config.apiKey ? { apiKey: config.apiKey } : {}),
      ...(config.tenant ? { tenant: config.tenant } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
    }),
    ...(io.signal ? { signal: io.signal } : {}),
    pollMs: io.pollMs ?? 1_000,
  };
}
