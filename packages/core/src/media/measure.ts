import type { Logger } from '../infra/logger.js';
import { type ByteSource, findMovieBox } from './box-walk.js';
import { fragmentedSeconds } from './fragments.js';
import { readMovie } from './movie-duration.js';
import { ProbeError } from './probe-error.js';

export interface MeasureOptions {
  /** Largest moov read, and most bytes of fragment headers read besides it. */
  maxHeaderBytes: number;
  logger?: Logger | undefined;
}

/**
 * The presented duration of the first video track, in seconds (3 decimals at most), from the
 * header boxes alone: the moov, and for a fragmented file its fragment headers (fragments.ts).
 * The remote probe and the local one (uploads, kept outputs) both read through this.
 */
export async function measureVideo(source: ByteSource, options: MeasureOptions): Promise<number> {
  const boxes = await findMovieBox(source, options.maxHeaderBytes);
  const movie = readMovie(boxes, options.logger);
  let seconds = movie.seconds;
  if (movie.fragmented) {
    // The moov of a fragmented file covers at most its first samples: the fragments say the rest.
    const fragments = await fragmentedSeconds(source, boxes.moovEnd, movie.fragmented, {
      maxBytes: options.maxHeaderBytes,
      logger: options.logger,
    });
    seconds = Math.max(seconds, fragments);
  }
  if (!(seconds > 0)) throw new ProbeError('no_video_track', 'the video track has no duration');
  return Math.round(seconds * 1000) / 1000;
}
