import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { probeVideo, SourceVideoError } from './media-probe.js';

const logger = pino({ level: 'silent' });
const fixture = (name: string) => readFile(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)));

describe('probeVideo', () => {
  it.each([
    ['clip-2s-faststart.mp4', 2, 24],
    ['clip-5s-moov-at-end.mp4', 5, 30],
    // The video track of this file is 188 frames at 25 fps; its audio track is the 7.5 s one.
    ['clip-7.5s-audio.mp4', 7.52, 25],
    ['clip-3s.mov', 3, 24],
    // Fragmented (moov durations 0, samples in moof/trun), with and without mehd and mfra.
    ['frag-4.2s-mehd-mfra.mp4', 4.2, 25],
    ['frag-4.2s-mehd.mp4', 4.2, 25],
    ['frag-4.2s-mfra.mp4', 4.2, 25],
    ['frag-4.2s.mp4', 4.2, 25],
  ])('reads the video track of %s: %s s at %s fps', async (name, seconds, fps) => {
    expect(probeVideo(await fixture(name), logger)).toEqual({ seconds, fps });
  });

  it.each(['not-a-video.mp4', 'truncated.mp4'])('rejects %s', async (name) => {
    const bytes = await fixture(name);
    expect(() => probeVideo(bytes, logger)).toThrow(SourceVideoError);
  });

  it('rejects an empty file', () => {
    expect(() => probeVideo(Buffer.alloc(0), logger)).toThrow(SourceVideoError);
  });

  it('keeps mp4box complaints off the console', async () => {
    // clip-3s.mov carries QuickTime metadata boxes mp4box does not know and prints about.
    const bytes = await fixture('clip-3s.mov');
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      probeVideo(bytes, logger);
      expect(error).not.toHaveBeenCalled();
    } finally {
      error.mockRestore();
    }
  });
});
