export type ProbeFailure = 'refused' | 'http' | 'timeout' | 'not_mp4' | 'no_video_track' | 'too_large';

/**
 * Why a source video's duration could not be read. `refused` (a URL Recast may not fetch) and the
 * definite answers (see `isDefinite`) are the user's to fix; the rest may pass by themselves.
 */
export class ProbeError extends Error {
  override readonly name = 'ProbeError';
  readonly reason: ProbeFailure;
  /** The HTTP status that ended the probe, for `http` failures that had an answer. */
  readonly status: number | undefined;

  constructor(reason: ProbeFailure, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.status = options?.status;
  }

  /**
   * Whether the video will not be readable by anyone, now or on a retry: not an MP4/MOV (wrong
   * type, a truncated header), no video track, or a client error such as 404 or 410 (not 408 or
   * 429, which ask for a retry). A network error, a timeout, a 5xx or a header over the limits
   * says nothing about the file: the estimate then falls back instead.
   */
  get definite(): boolean {
    if (this.reason === 'not_mp4' || this.reason === 'no_video_track') return true;
    const status = this.status;
    return (
      this.reason === 'http' &&
      status !== undefined &&
      status >= 400 &&
      status < 500 &&
      ![408, 425, 429].includes(status)
    );
  }
}
