import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, signWebhook, verifyWebhook, webhookSigningKey } from './standard-webhooks.js';

// The reference test vector of the Standard Webhooks libraries.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const at = (seconds: number) => new Date(seconds * 1000);

describe('signWebhook', () => {
  it('matches the Standard Webhooks reference vector', () => {
    const headers = signWebhook({
      id: VECTOR.id,
      timestamp: VECTOR.timestamp,
      body: VECTOR.body,
      secrets: [VECTOR.secret],
    });
    expect(headers).toEqual({
      'webhook-id': VECTOR.id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': VECTOR.signature,
    });
  });

  it('signs with every secret, space-separated, in order', () => {
    const other = generateWebhookSecret();
    const headers = signWebhook({ ...VECTOR, secrets: [VECTOR.secret, other] });
    const entries = headers['webhook-signature']!.split(' ');
    expect(entries).toHaveLength(2);
    expect(entries[0]).toBe(VECTOR.signature);
    expect(entries[1]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
  });

  it('refuses a non-integer timestamp, no secret, or an id that would make the signed content ambiguous', () => {
    expect(() => signWebhook({ ...VECTOR, timestamp: 1.5, secrets: [VECTOR.secret] })).toThrow(/integer/);
    expect(() => signWebhook({ ...VECTOR, secrets: [] })).toThrow(/secret/);
    expect(() => signWebhook({ ...VECTOR, id: 'a.b', secrets: [VECTOR.secret] })).toThrow(/dots/);
  });
});

describe('webhookSigningKey', () => {
  it('base64-decodes whsec_ secrets and takes other strings as UTF-8 bytes', () => {
    expect(webhookSigningKey(VECTOR.secret)).toEqual(
      Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'),
    );
    expect(webhookSigningKey('a-raw-secret-of-24-chars')).toEqual(Buffer.from('a-raw-secret-of-24-chars'));
    expect(webhookSigningKey(generateWebhookSecret())).toHaveLength(32);
  });

  it('rejects short, malformed or oversized secrets without echoing them', () => {
    const bad = [
      'short',
      'a raw secret with spaces',
      'ünïcödé-sëcrét-ünïcödé',
      'whsec_not*base64!',
      'whsec_c2hvcnQ=',
      `whsec_${'A'.repeat(100)}`,
    ];
    for (const secret of bad) {
      let message = '';
      try {
        webhookSigningKey(secret);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/invalid webhook secret/);
      expect(message).not.toContain(secret);
    }
  });
});

describe('verifyWebhook', () => {
  const newSecret = generateWebhookSecret();
  const signed = signWebhook({ ...VECTOR, secrets: [VECTOR.secret, newSecret] });
  const base = { headers: signed, body: VECTOR.body, now: at(VECTOR.timestamp + 10) };

  it('accepts the reference vector', () => {
    expect(
      verifyWebhook({
        headers: {
          'webhook-id': VECTOR.id,
          'webhook-timestamp': String(VECTOR.timestamp),
          'webhook-signature': VECTOR.signature,
        },
        body: VECTOR.body,
        secrets: [VECTOR.secret],
        now: at(VECTOR.timestamp),
      }),
    ).toEqual({ ok: true, id: VECTOR.id, timestamp: VECTOR.timestamp });
  });

  it('accepts a message signed under two secrets with either one (rotation), but not with a third', () => {
    expect(verifyWebhook({ ...base, secrets: [VECTOR.secret] }).ok).toBe(true);
    expect(verifyWebhook({ ...base, secrets: [newSecret] }).ok).toBe(true);
    expect(verifyWebhook({ ...base, secrets: [generateWebhookSecret(), newSecret] }).ok).toBe(true);
    expect(verifyWebhook({ ...base, secrets: [generateWebhookSecret()] })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
  });

  it('rejects a tampered body, id or timestamp', () => {
    const secrets = [VECTOR.secret];
    expect(verifyWebhook({ ...base, secrets, body: '{"test": 2432232315}' }).ok).toBe(false);
    expect(verifyWebhook({ ...base, secrets, headers: { ...signed, 'webhook-id': 'msg_other' } }).ok).toBe(
      false,
    );
    const later = String(VECTOR.timestamp + 1);
    expect(verifyWebhook({ ...base, secrets, headers: { ...signed, 'webhook-timestamp': later } })).toEqual({
      ok: false,
      reason: 'no_matching_signature',
    });
  });

  it('rejects a timestamp outside the tolerance, either way', () => {
    const secrets = [VECTOR.secret];
    const out = { ok: false, reason: 'timestamp_out_of_tolerance' };
    expect(verifyWebhook({ ...base, secrets, now: at(VECTOR.timestamp + 301) })).toEqual(out);
    expect(verifyWebhook({ ...base, secrets, now: at(VECTOR.timestamp - 301) })).toEqual(out);
    expect(verifyWebhook({ ...base, secrets, now: at(VECTOR.timestamp + 300) }).ok).toBe(true);
    expect(verifyWebhook({ ...base, secrets, now: at(VECTOR.timestamp + 30), toleranceSeconds: 20 })).toEqual(
      out,
    );
  });

  it('rejects missing headers and a malformed timestamp; reads headers in any case and raw bytes', () => {
    const secrets = [VECTOR.secret];
    const { 'webhook-signature': _, ...unsigned } = signed;
    expect(verifyWebhook({ ...base, secrets, headers: unsigned })).toEqual({
      ok: false,
      reason: 'missing_header',
    });
    expect(
      verifyWebhook({ ...base, secrets, headers: { ...signed, 'webhook-timestamp': '1614265330.5' } }),
    ).toEqual({ ok: false, reason: 'invalid_timestamp' });
    const shouty = Object.fromEntries(Object.entries(signed).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyWebhook({ ...base, secrets, headers: shouty, body: Buffer.from(VECTOR.body) }).ok).toBe(
      true,
    );
  });

  it('ignores signature versions it does not know and garbage entries', () => {
    const headers = { ...signed, 'webhook-signature': `v1a,abc v2,xyz v1,!!! ${VECTOR.signature}` };
    expect(verifyWebhook({ ...base, headers, secrets: [VECTOR.secret] }).ok).toBe(true);
    const onlyOther = { ...signed, 'webhook-signature': 'v1a,abc v1,' };
    expect(verifyWebhook({ ...base, headers: onlyOther, secrets: [VECTOR.secret] }).ok).toBe(false);
  });
});
