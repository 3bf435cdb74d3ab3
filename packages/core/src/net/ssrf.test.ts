import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { assertFetchableUrl, createCachedLookup, guardedDispatcher, type LookupFn } from './ssrf.js';

const noAllow = { allowHosts: [] };
/** A resolver that must not be asked: IP literals and refused names need no DNS. */
const noDns: LookupFn = async (hostname) => {
  throw new Error(`unexpected lookup of ${hostname}`);
};
const resolvesTo =
  (...addresses: string[]): LookupFn =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

async function refusal(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(AppError);
  expect(error).toMatchObject({ code: 'URL_REFUSED', statusCode: 400 });
  return error as AppError;
}

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((_, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('assertFetchableUrl', () => {
  it.each([
    ['http://2130706433/', /127\.0\.0\.1 is a loopback address/],
    ['http://0x7f.1/', /127\.0\.0\.1 is a loopback address/],
    ['http://017700000001/', /127\.0\.0\.1 is a loopback address/],
    ['http://[::ffff:127.0.0.1]/', /::ffff:7f00:1 is a loopback address/],
    ['http://[::1]/', /::1 is a loopback address/],
    ['http://[::127.0.0.1]/', /::7f00:1 is an IPv4-compatible IPv6 address/],
    ['http://169.254.169.254/latest', /169\.254\.169\.254 is the cloud metadata address/],
    ['http://[fd00:ec2::254]/latest', /is the cloud metadata address/],
    [
      'http://metadata.google.internal/computeMetadata/v1/',
      /metadata\.google\.internal is the cloud metadata service/,
    ],
    ['http://169.254.1.1/', /a link-local address/],
    ['http://[fe80::1]/', /a link-local address/],
    ['http://10.0.0.1/', /10\.0\.0\.1 is a private network address/],
    ['http://172.16.5.4/', /a private network address/],
    ['http://192.168.1.1', /192\.168\.1\.1 is a private network address/],
    ['http://[fc00::1]/', /a private network address \(IPv6 unique local\)/],
    ['http://100.64.0.1', /100\.64\.0\.1 is a carrier-grade NAT address/],
    ['http://0.0.0.0/', /the unspecified address/],
    ['http://[::]/', /the unspecified address/],
    ['http://255.255.255.255/', /the broadcast address/],
    ['http://224.0.0.1/', /a multicast address/],
    ['http://240.0.0.1/', /a reserved address/],
    ['http://[64:ff9b::a00:1]/', /a private network address/],
    ['http://[2002:c0a8:101::1]/', /a private network address/],
    ['ftp://x', /only http and https URLs can be fetched, not ftp:/],
    ['file:///etc/passwd', /only http and https/],
    ['http://user:secret@example.com/', /with a user name or password/],
    ['not a url', /not a valid URL/],
  ])('refuses %s', async (url, message) => {
    const error = await refusal(assertFetchableUrl(url, noAllow, { lookup: noDns }));
    expect(error.message).toMatch(message);
    expect(error.issues?.[0]?.message).toMatch(message);
  });

  it.each(['http://93.184.216.34/', 'https://[2606:4700::1111]/v.mp4', 'http://[::ffff:93.184.216.34]/'])(
    'lets the public IP %s through without DNS',
    async (url) => {
      await expect(assertFetchableUrl(url, noAllow, { lookup: noDns })).resolves.toBeUndefined();
    },
  );

  it('names the request field in the error', async () => {
    const error = await refusal(assertFetchableUrl('http://10.0.0.1/a.png', noAllow, { field: 'images.1' }));
    expect(error.issues).toEqual([{ path: 'images.1', message: '10.0.0.1 is a private network address' }]);
    expect(error.message).toBe('cannot fetch images.1: 10.0.0.1 is a private network address');
  });

  it('refuses a name that resolves to a private address', async () => {
    const error = await refusal(
      assertFetchableUrl('https://cdn.example.com/v.mp4', noAllow, { lookup: resolvesTo('10.1.2.3') }),
    );
    expect(error.message).toMatch(
      /host "cdn\.example\.com" resolves to 10\.1\.2\.3, a private network address/,
    );
  });

  it('refuses a name when any one of its addresses is private', async () => {
    const lookup = resolvesTo('93.184.216.34', '2606:4700::1111', '127.0.0.1');
    const error = await refusal(assertFetchableUrl('https://cdn.example.com/v.mp4', noAllow, { lookup }));
    expect(error.message).toMatch(/resolves to 127\.0\.0\.1, a loopback address/);
  });

  it('accepts a name whose addresses are all public', async () => {
    const lookup = resolvesTo('93.184.216.34', '2606:4700::1111');
    await expect(
      assertFetchableUrl('https://cdn.example.com/v.mp4', noAllow, { lookup }),
    ).resolves.toBeUndefined();
  });

  it('refuses a name that does not resolve', async () => {
    const lookup: LookupFn = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    const error = await refusal(assertFetchableUrl('http://nowhere.invalid/', noAllow, { lookup }));
    expect(error.message).toMatch(/could not resolve host "nowhere\.invalid" \(ENOTFOUND\)/);
  });

  it('does not call a temporary resolver failure a refusal', async () => {
    const lookup: LookupFn = async () => {
      throw Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' });
    };
    const error = await assertFetchableUrl('http://cdn.example.com/', noAllow, { lookup }).catch(
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: string }).code).not.toBe('URL_REFUSED');
    expect((error as Error).message).toMatch(/failed for now \(EAI_AGAIN\)/);
  });

  it('resolves with the system resolver by default', async () => {
    const error = await refusal(assertFetchableUrl(`http://localhost:${port}/`, noAllow));
    expect(error.message).toMatch(/host "localhost" resolves to .*a loopback address/);
  });

  it('skips the address check for allow-listed hosts, by name or by name and port', async () => {
    const url = `http://127.0.0.1:${port}/`;
    await refusal(assertFetchableUrl(url, { allowHosts: [`127.0.0.1:${port + 1}`] }));
    await expect(assertFetchableUrl(url, { allowHosts: [`127.0.0.1:${port}`] })).resolves.toBeUndefined();
    await expect(assertFetchableUrl(url, { allowHosts: ['127.0.0.1'] })).resolves.toBeUndefined();
    await expect(
      assertFetchableUrl('http://[::1]:8080/', { allowHosts: ['[::1]:8080'] }),
    ).resolves.toBeUndefined();
    await expect(
      assertFetchableUrl('http://emulator/v.mp4', { allowHosts: ['emulator:80'] }, { lookup: noDns }),
    ).resolves.toBeUndefined();
  });

  it('still refuses other schemes and credentials on allow-listed hosts', async () => {
    const policy = { allowHosts: ['emulator'] };
    await refusal(assertFetchableUrl('ftp://emulator/v.mp4', policy));
    await refusal(assertFetchableUrl('http://u:p@emulator/v.mp4', policy));
  });
});

describe('guardedDispatcher', () => {
  const get = async (url: string, dispatcher: ReturnType<typeof guardedDispatcher>) => {
    try {
      const response = await request(url, { dispatcher });
      return { status: response.statusCode, body: await response.body.text() };
    } finally {
      await dispatcher.destroy();
    }
  };

  it('refuses to connect to a loopback literal that is not allow-listed', async () => {
    const error = await refusal(get(`http://127.0.0.1:${port}/`, guardedDispatcher(noAllow)));
    expect(error.message).toMatch(/127\.0\.0\.1 is a loopback address/);
  });

  it('connects to an allow-listed host', async () => {
    const dispatcher = guardedDispatcher({ allowHosts: [`127.0.0.1:${port}`] });
    expect(await get(`http://127.0.0.1:${port}/`, dispatcher)).toEqual({ status: 200, body: 'ok' });
  });

  it('refuses a name that resolves to loopback when it connects', async () => {
    const dispatcher = guardedDispatcher(noAllow, { lookup: resolvesTo('127.0.0.1') });
    const error = await refusal(get(`http://video.example.com:${port}/`, dispatcher));
    expect(error.message).toMatch(/resolves to 127\.0\.0\.1, a loopback address/);
  });

  it('resolves allow-listed names with the same lookup, unchecked', async () => {
    // video.example.com exists only in this lookup: the connection reaches the local server.
    const dispatcher = guardedDispatcher(
      { allowHosts: [`video.example.com:${port}`] },
      { lookup: resolvesTo('127.0.0.1') },
    );
    expect(await get(`http://video.example.com:${port}/`, dispatcher)).toEqual({ status: 200, body: 'ok' });
  });

  it('defeats DNS rebinding: public when checked, loopback when connecting', async () => {
    let answers = 0;
    const rebinding: LookupFn = async () => [
      { address: answers++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 },
    ];
    const url = `http://rebind.example.com:${port}/`;
    await expect(assertFetchableUrl(url, noAllow, { lookup: rebinding })).resolves.toBeUndefined();
    const error = await refusal(get(url, guardedDispatcher(noAllow, { lookup: rebinding })));
    expect(error.message).toMatch(/resolves to 127\.0\.0\.1/);
    expect(answers).toBe(2);
  });
});

describe('createCachedLookup', () => {
  it('asks the resolver once per host within the TTL, and again after it', async () => {
    let now = 0;
    const asked: string[] = [];
    const lookup = createCachedLookup(
      async (hostname) => {
        asked.push(hostname);
        return [{ address: '93.184.216.34', family: 4 }];
      },
      { ttlMs: 30_000, maxEntries: 2, now: () => now },
    );
    await lookup('a.example');
    await lookup('A.example');
    expect(asked).toEqual(['a.example']);
    now = 30_001;
    await lookup('a.example');
    expect(asked).toEqual(['a.example', 'a.example']);
    await lookup('b.example');
    await lookup('c.example');
    await lookup('a.example');
    expect(asked).toEqual(['a.example', 'a.example', 'b.example', 'c.example', 'a.example']);
  });

  it('does not remember failures', async () => {
    let calls = 0;
    const lookup = createCachedLookup(async () => {
      calls++;
      throw new Error('SERVFAIL');
    });
    await expect(lookup('x.example')).rejects.toThrow('SERVFAIL');
    await expect(lookup('x.example')).rejects.toThrow('SERVFAIL');
    expect(calls).toBe(2);
  });
});
