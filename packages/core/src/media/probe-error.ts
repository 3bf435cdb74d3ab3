export type ProbeFailure = 'refused' | 'http' | 'timeout' | 'not_mp4' | 'no_video_track' | 'too_large';

/** Why a source video's duration could not be read. `refused` is the only one that is the user's fault. */
export class ProbeError extends Error {
  override readonly name = 'ProbeError';
  readonly reason: ProbeFailure;

  constructor(reason: ProbeFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}
