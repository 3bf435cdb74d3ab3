import { createFile, type Movie, MP4BoxBuffer } from 'mp4box';
import type { Logger } from '../infra/logger.js';
import type { MovieBoxes } from './box-walk.js';
import { ProbeError } from './probe-error.js';

/** mp4box wants an `ftyp` before `moov`; old QuickTime files may have none, so lend it one. */
const QUICKTIME_FTYP = Buffer.concat([
  Buffer.from([0, 0, 0, 20]),
  Buffer.from('ftypqt  ', 'latin1'),
  Buffer.from([0, 0, 0, 0]),
  Buffer.from('qt  ', 'latin1'),
]);

/** What the moov says about the first video track of a fragmented file (one with `mvex`). */
export interface FragmentedTrack {
  trackId: number;
  /** The track's media timescale (mdhd): fragment times and sample durations are in it. */
  timescale: number;
  /** trex default_sample_duration: the duration of a sample no tfhd or trun gives one. */
  defaultSampleDuration: number;
  /** Media time the moov's own sample table covers (0 for the usual empty moov). */
  moovMediaDuration: number;
  /** The whole movie's duration from `mehd`, seconds, when the muxer wrote one. */
  mehdSeconds: number | undefined;
}

export interface MovieReading {
  /** Presented duration of the first video track from the moov alone; 0 when it does not say. */
  seconds: number;
  /** Set when the file is fragmented: the moov's durations are then not the whole story. */
  fragmented: FragmentedTrack | undefined;
}

/**
 * Reads the first video track from the moov: its presented duration (tkhd, which honours the edit
 * list, else the media duration, else the movie's; the movie duration alone can be longer than
 * the picture: AAC priming on the audio track), and what a fragmented file's fragments need.
 */
export function readMovie(boxes: MovieBoxes, logger?: Logger): MovieReading {
  const parsed = parseMovie(Buffer.concat([boxes.ftyp ?? QUICKTIME_FTYP, boxes.moov]), logger);
  if (!parsed) throw new ProbeError('not_mp4', 'mp4box could not read the moov box');
  const { movie, moov } = parsed;
  const track = movie.videoTracks[0];
  if (!track) throw new ProbeError('no_video_track', 'the file has no video track');
  const mvex = moov?.mvex;
  if (!movie.isFragmented || !mvex) return { seconds: trackSeconds(track, movie), fragmented: undefined };
  const mehd = mvex.mehd?.fragment_duration ?? 0;
  const movieTimescale = moov.mvhd?.timescale ?? movie.timescale;
  return {
    seconds: trackSeconds(track, movie),
    fragmented: {
      trackId: track.id,
      timescale: track.timescale,
      defaultSampleDuration: mvex.trexs?.find((t) => t.track_id === track.id)?.default_sample_duration ?? 0,
      moovMediaDuration: Math.max(track.samples_duration || 0, 0),
      mehdSeconds: mehd > 0 && movieTimescale > 0 ? mehd / movieTimescale : undefined,
    },
  };
}

function trackSeconds(track: Movie['tracks'][number], movie: Movie): number {
  const movieTimescale = track.movie_timescale || movie.timescale;
  if (track.movie_duration > 0 && movieTimescale > 0) return track.movie_duration / movieTimescale;
  if (track.duration > 0 && track.timescale > 0) return track.duration / track.timescale;
  if (movie.duration > 0 && movie.timescale > 0) return movie.duration / movie.timescale;
  return 0;
}

function parseMovie(
  bytes: Buffer,
  logger: Logger | undefined,
): { movie: Movie; moov: ReturnType<typeof createFile>['moov'] | undefined } | undefined {
  const file = createFile();
  let movie: Movie | undefined;
  file.onReady = (info) => {
    movie = info;
  };
  file.onError = (module, message) => {
    logger?.debug({ module, message }, 'mp4box reported a problem');
  };
  const copy = new Uint8Array(bytes).buffer;
  withLibraryConsole(logger, () => {
    try {
      file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(copy, 0), true);
      file.flush();
    } catch (error) {
      logger?.debug({ err: error }, 'mp4box threw');
    }
  });
  // `moov` is typed as always there, but it is only once mp4box has read one.
  return movie ? { movie, moov: file.moov as typeof file.moov | undefined } : undefined;
}

/**
 * mp4box prints some complaints (unknown QuickTime metadata boxes, e.g. in clip-3s.mov) straight
 * to the console with no way to turn them off. Parsing is synchronous, so borrowing the console
 * for its duration routes them to our logger without affecting anything else.
 */
export function withLibraryConsole(logger: Logger | undefined, fn: () => void): void {
  const target = console;
  const saved = { error: target.error, warn: target.warn, info: target.info, debug: target.debug };
  const sink = (...args: unknown[]) => logger?.debug({ mp4box: args.map(String).join(' ') }, 'mp4box');
  Object.assign(target, { error: sink, warn: sink, info: sink, debug: sink });
  try {
    fn();
  } finally {
    Object.assign(target, saved);
  }
}
