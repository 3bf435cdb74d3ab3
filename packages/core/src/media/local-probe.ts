import { open } from 'node:fs/promises';
import type { Logger } from '../infra/logger.js';
import type { ByteSource } from './box-walk.js';
import { measureVideo } from './measure.js';

export const DEFAULT_LOCAL_MAX_MOOV_BYTES = 64 * 1024 * 1024;

/**
 * The video duration of an MP4/MOV on the local disk (an upload in its temp file, a downloaded
 * output): the same box walk and mp4box reading as the remote probe (fragmented files included),
 * over positional reads, so an uploaded file is never fetched back from the provider to be measured.
 * Throws ProbeError (`not_mp4`, `no_video_track`, `too_large`) when the file cannot be read.
 */
export async function probeLocalVideo(
  path: string,
  options: { maxMoovBytes?: number; logger?: Logger } = {},
): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const source: ByteSource = {
      size,
      async read(start, length) {
        const wanted = Math.max(0, Math.min(length, size - start));
        const buffer = Buffer.alloc(wanted);
        const { bytesRead } = wanted > 0 ? await handle.read(buffer, 0, wanted, start) : { bytesRead: 0 };
        return buffer.subarray(0, bytesRead);
      },
    };
    return await measureVideo(source, {
      maxHeaderBytes: options.maxMoovBytes ?? DEFAULT_LOCAL_MAX_MOOV_BYTES,
      logger: options.logger,
    });
  } finally {
    await handle.close();
  }
}
