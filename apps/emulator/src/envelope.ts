export type Envelope = 'v1' | 'v2' | 'v3';

/** The three response generations the provider has shipped; clients must accept all of them. */
export function wrap(envelope: Envelope, data: unknown): unknown {
  switch (envelope) {
    case 'v1':
      return { success: true, status: 200, data };
    case 'v2':
      return data;
    case 'v3':
      return { data, messages: [] };
  }
}
