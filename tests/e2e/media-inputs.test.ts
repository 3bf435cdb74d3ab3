import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemPerTest } from './system.js';

// Media as users send it, through the whole system: the API's URL probe, its upload probe, the
// emulator's own reading (the billing oracle), and the ledger.
const FIXTURES = resolve(import.meta.dirname, '../../apps/emulator/fixtures');
const { start } = systemPerTest();

const FRAGMENTED = ['frag-4.2s-mehd-mfra.mp4', 'frag-4.2s-mehd.mp4', 'frag-4.2s-mfra.mp4', 'frag-4.2s.mp4'];

describe('fragmented MP4 (MediaRecorder, OBS, CMAF)', () => {
  it('is estimated, uploaded and billed at its real 4.2 s, with and without mehd and mfra', async () => {
    const s = await start({ emulator: { stepMs: 5 }, worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' } });
    const images = [s.fixture('person-a.png')];
    const jobs = [];
    for (const file of FRAGMENTED) {
      const job = await s.submit({ video: s.fixture(file), images });
      // Probed from its header by range requests: 4.2 s × $0.03, not the 120 s fallback.
      expect(job.estimate, file).toMatchObject({ seconds: 4.2, source: 'probe', micro_usd: 126_000 });
      jobs.push(job);
    }
    // Uploaded as a file: measured from its bytes, not refused as unreadable.
    const form = new FormData();
    form.set(
      'file',
      new Blob([new Uint8Array(readFileSync(join(FIXTURES, 'frag-4.2s-mfra.mp4')))]),
      'rec.mp4',
    );
    const uploaded = await fetch(`${s.apiUrl}/v1/files`, {
      method: 'POST',
      body: form,
      headers: s.authHeaders,
    });
    expect(uploaded.status).toBe(201);
    const file = (await uploaded.json()) as { uri: string; seconds: number; kind: string };
    expect(file).toMatchObject({ kind: 'video', seconds: 4.2 });
    jobs.push(await s.submit({ video: file.uri, images }));

    // The emulator reads them as the provider measures its output: every one completes at 4.2 s.
    for (const job of jobs) {
      const done = await s.waitTerminal(job.id);
      expect(done, job.input.video).toMatchObject({
        state: 'completed',
        cost: { seconds: 4.2, micro_usd: 126_000 },
      });
    }
    const { bill } = await s.emulatorState();
    expect(bill.total_micro_usd).toBe(5 * 126_000);
  });
});

describe('hopeless videos', () => {
  it('refuses, as row errors naming video, the rows whose video no one can read; runs the rest', async () => {
    const s = await start({ noWorker: true });
    const images = [s.fixture('person-a.png')];
    const rows = [
      { custom_id: 'ok', video: s.fixture('clip-2s-faststart.mp4'), images },
      { custom_id: '404', video: s.fixture('missing.mp4'), images },
      { custom_id: 'text', video: s.fixture('not-a-video.mp4'), images },
      { custom_id: 'cut', video: s.fixture('truncated.mp4'), images },
    ];
    const body = `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
    const post = (query: string) =>
      fetch(`${s.apiUrl}/v1/batches${query}`, {
        method: 'POST',
        body,
        headers: { ...s.authHeaders, 'content-type': 'application/x-ndjson' },
      });
    const atomic = await post('');
    expect(atomic.status).toBe(422);
    const refused = (await atomic.json()) as {
      error: { issues: { line: number; custom_id: string; path: string; message: string }[] };
    };
    expect(refused.error.issues.map((i) => [i.line, i.custom_id, i.path])).toEqual([
      [2, '404', 'video'],
      [3, 'text', 'video'],
      [4, 'cut', 'video'],
    ]);
    expect(refused.error.issues[0]?.message).toMatch(/cannot be read: HTTP 404/);

    const partial = await post('?mode=partial');
    expect(partial.status).toBe(202);
    expect(await partial.json()).toMatchObject({ rows: { total: 1, invalid: 3 } });
  });
});
