import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildEmulator, type Emulator, type EmulatorOptions } from './app.js';

export const API_KEY = 'inf_test_key';

export interface RunningEmulator {
  app: Emulator;
  url: string;
  fixture(name: string): string;
  /** Fetch with the bearer token; returns the parsed JSON body (or text) with status and headers. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  runInput(video: string, extra?: Record<string, unknown>): Record<string, unknown>;
  submit(video: string, extra?: { input?: Record<string, unknown>; webhook?: string }): Promise<string>;
  waitTerminal(id: string): Promise<TaskJson>;
  close(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

export interface OutputJson {
  video: string;
  seed: number;
  output_meta: {
    outputs: Array<{
      type: string;
      width: number;
      height: number;
      resolution: string;
      seconds: number;
      fps: number | null;
    }>;
  };
}

/** The task fields tests read; the emulator's JSON is asserted against it, not trusted. */
export interface TaskJson {
  id: string;
  short_id: string;
  status: number;
  status_text?: string;
  output: OutputJson | null;
  error?: string | null;
  logs: Array<{ content: string; log_type: number }>;
  events: Array<{ status: number }>;
  webhook?: string | null;
  input: Record<string, unknown>;
  usage_events: Array<{ quantity: number }>;
  updated_at: string;
  [key: string]: unknown;
}

/** A listening emulator on an ephemeral port with fast steps (tests never wait whole seconds). */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const app = await buildEmulator({ apiKey: API_KEY, stepMs: 20, ...options });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${API_KEY}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body: parsed };
  };
  const fixture = (name: string) => `${url}/fixtures/${name}`;
  const runInput = (video: string, extra: Record<string, unknown> = {}) => ({
    video,
    images: [fixture('person-a.png'), fixture('person-b.jpg')],
    ...extra,
  });
  const running: RunningEmulator = {
    app,
    url,
    fixture,
    call,
    runInput,
    async submit(video, extra = {}) {
      const response = await call('POST', '/apps/run', {
        app: 'pruna/p-video-replace',
        input: runInput(video, extra.input),
        ...(extra.webhook ? { webhook: extra.webhook } : {}),
      });
      if (response.status !== 200) throw new Error(`submit failed: ${JSON.stringify(response.body)}`);
      return dataOf<TaskJson>(response.body).id;
    },
    async waitTerminal(id) {
      for (let i = 0; i < 1000; i++) {
        const { body } = await call('GET', `/tasks/${id}`);
        const task = dataOf<TaskJson>(body);
        if (['completed', 'failed', 'cancelled'].includes(task.status_text ?? '')) return task;
        await sleep(10);
      }
      throw new Error(`task ${id} did not finish`);
    },
    close: () => app.close(),
  };
  return running;
}

/** Unwraps any of the three envelopes, like a client must, and names the shape the test expects. */
export function dataOf<T = TaskJson>(body: unknown): T {
  if (body && typeof body === 'object' && !Array.isArray(body) && 'data' in body) return body.data as T;
  return body as T;
}

export interface Receiver {
  url: string;
  received: Array<{ at: number; headers: IncomingHttpHeaders; body: Record<string, unknown> }>;
  /** Status the receiver answers with. */
  status: number;
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A webhook receiver on an ephemeral port that records every POST. */
export async function startReceiver(): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const receiver = { status: 200 } as { status: number };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        at: Date.now(),
        headers: request.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      response.statusCode = receiver.status;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/hooks/secret-token`,
    received,
    async waitFor(count: number, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} webhooks, got ${received.length}`);
        await sleep(5);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
