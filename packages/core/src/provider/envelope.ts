export type Unwrapped =
  | { ok: true; data: unknown }
  /** A v1 envelope that says `success: false`: the caller turns it into an error. */
  | { ok: false; envelope: Record<string, unknown> };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Unwrap the three envelope generations the provider still serves, in the order the doc gives:
 * v1 `{success: true, status, data}` (a boolean `success` decides), v3 `{data, messages}` (any
 * non-array object with a `data` key), v2 the bare object. The order matters: a v1 body also has
 * `data`, and only v1 can say "failed" inside a 2xx.
 */
export function unwrapEnvelope(body: unknown): Unwrapped {
  if (!isRecord(body)) return { ok: true, data: body };
  if (typeof body.success === 'boolean') {
    return body.success ? { ok: true, data: body.data } : { ok: false, envelope: body };
  }
  if ('data' in body) return { ok: true, data: body.data };
  return { ok: true, data: body };
}
