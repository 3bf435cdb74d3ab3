import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LookupFn } from '../net/ssrf.js';
import { startTestReceiver, type TestReceiver } from '../testing/test-receiver.js';
import { type CallbackSender, createCallbackSender } from './sender.js';
import { generateWebhookSecret, verifyWebhook } from './standard-webhooks.js';

const secrets = [generateWebhookSecret(), generateWebhookSecret()];
const body = JSON.stringify({ type: 'job.completed', timestamp: '2026-01-01T00:00:00.000Z', data: {} });
let receiver: TestReceiver;
let sender: CallbackSender;

// A name that resolves to loopback, and one that answers public first and loopback second
// (DNS rebinding: the early check sees the public address, the connection would get loopback).
let rebindCalls = 0;
const lookup: LookupFn = async (hostname) => {
  if (hostname === 'hooks.internal.test') return [{ address: '127.0.0.1', family: 4 }];
  if (hostname === 'rebind.test')
    return [{ address: rebindCalls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`unexpected lookup of ${hostname}`), { code: 'ENOTFOUND' });
};

beforeAll(async () => {
  receiver = await startTestReceiver();
  sender = createCallbackSender({ secrets, policy: { allowHosts: [receiver.host] }, timeoutMs: 500, lookup });
});
afterAll(async () => {
  await sender.close();
  await receiver.close();
});

describe('createCallbackSender', () => {
  it('POSTs the body as JSON with verifiable Standard Webhooks headers', async () => {
    const result = await sender.send({ url: receiver.url('/ok?token=abc'), id: 'msg_1', body });
    expect(result).toMatchObject({ outcome: 'delivered', status: 200 });
    const [got] = receiver.received('/ok?token=abc');
    expect(got?.body).toBe(body);
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.headers['webhook-id']).toBe('msg_1');
    expect(got?.headers['webhook-timestamp']).toBe(String(result.timestamp));
    for (const secret of secrets) {
      expect(verifyWebhook({ headers: got!.headers, body: got!.body, secrets: [secret] }).ok).toBe(true);
    }
  });

  it('maps 410 to gone, and 5xx, other 4xx and redirects to retry (redirects not followed)', async () => {
    receiver.script('/gone', 410);
    receiver.script('/down', 503);
    receiver.script('/bad', 400);
    receiver.script('/moved', 301);
    const send = (path: string) => sender.send({ url: receiver.url(path), id: 'msg_2', body });
    expect(await send('/gone')).toMatchObject({ outcome: 'gone', status: 410 });
    expect(await send('/down')).toMatchObject({ outcome: 'retry', status: 503 });
    expect(await send('/bad')).toMatchObject({ outcome: 'retry', status: 400 });
    expect(await send('/moved')).toMatchObject({ outcome: 'retry', status: 301, reason: /not followed/ });
    expect(receiver.received('/elsewhere')).toHaveLength(0);
  });

  it('gives up an attempt at the timeout, to be retried', async () => {
    receiver.script('/slow', { status: 200, delayMs: 2_000 });
    const result = await sender.send({ url: receiver.url('/slow'), id: 'msg_3', body });
    expect(result).toMatchObject({ outcome: 'retry', reason: 'no answer within 500 ms' });
    expect(result.durationMs).toBeLessThan(1_500);
  });

  it('retries when nothing listens', async () => {
    const closed = await startTestReceiver();
    await closed.close();
    const open = createCallbackSender({ secrets, policy: { allowHosts: [closed.host] }, timeoutMs: 500 });
    const result = await open.send({ url: closed.url('/x'), id: 'msg_4', body });
    await open.close();
    expect(result).toMatchObject({ outcome: 'retry', reason: /ECONNREFUSED/ });
  });

  it('retries a host name that does not resolve (yet)', async () => {
    const result = await sender.send({ url: 'http://nowhere.test/x', id: 'msg_6', body });
    expect(result).toMatchObject({ outcome: 'retry', reason: /could not resolve host/ });
  });

  it('refuses private addresses that are not allow-listed, by name, literal, scheme or rebinding', async () => {
    const port = receiver.host.split(':')[1];
    const urls = [
      `http://hooks.internal.test:${port}/private`,
      `http://127.0.0.1:${Number(port) + 1}/other-port`,
      'http://169.254.169.254/latest/meta-data',
      'file:///etc/passwd',
      `http://user:pw@${receiver.host}/creds`,
      `http://rebind.test:${port}/rebind`,
    ];
    for (const url of urls) {
      const result = await sender.send({ url, id: 'msg_5', body });
      expect(result, url).toMatchObject({ outcome: 'refused' });
    }
    expect(rebindCalls).toBe(2);
    for (const path of ['/private', '/creds', '/rebind']) expect(receiver.received(path)).toHaveLength(0);
  });

  it('will not start without a usable secret', () => {
    const policy = { allowHosts: [] };
    expect(() => createCallbackSender({ secrets: [], policy, timeoutMs: 1 })).toThrow(/secret/);
    expect(() => createCallbackSender({ secrets: ['short'], policy, timeoutMs: 1 })).toThrow(/secret/);
  });
});
