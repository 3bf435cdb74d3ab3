import { createFile, MP4BoxBuffer } from 'mp4box';
import type { Logger } from '../infra/logger.js';
import { type ByteSource, readBoxHeader } from './box-walk.js';
import type { FragmentedTrack } from './movie-duration.js';
import { withLibraryConsole } from './movie-duration.js';
import { ProbeError } from './probe-error.js';

/**
 * The duration of a fragmented MP4 (what MediaRecorder, OBS and CMAF/DASH packagers write): its
 * moov says 0 and the samples are described in `moof`/`traf`/`trun` boxes spread through the
 * file. In order of cost: `mehd` (in the moov, read already), else the `mfra` index at the end
 * (found through the 16-byte `mfro` that closes the file: the first and last fragments are read,
 * nothing in between), else every `moof`, one small read each, `mdat`s skipped.
 *
 * mp4box parses each box (moof, mfra) once it has been read; which bytes to read is ours, as in
 * box-walk.ts: mp4box takes buffers, it does not say which ranges hold what.
 */

/** Bytes read at a box's offset: a whole moof and the next box's header, for ordinary fragments. */
const WINDOW = 4096;
const TFHD_DEFAULT_SAMPLE_DURATION = 0x8;
const TRUN_SAMPLE_DURATION = 0x100;

// The few fields read from mp4box's parsed boxes (its box classes are not exported by name).
interface Tfhd {
  track_id: number;
  flags: number;
  default_sample_duration: number;
}
interface Trun {
  flags: number;
  sample_count: number;
  sample_duration: number[];
}
interface Traf {
  tfhd?: Tfhd;
  tfdt?: { baseMediaDecodeTime: number };
  truns?: Trun[];
}
interface Tfra {
  track_ID: number;
  entries: { time: number; moof_offset: number }[];
}

export interface FragmentLimits {
  /** Most bytes of fragment headers (moofs, the mfra) read in all. */
  maxBytes: number;
  logger?: Logger | undefined;
}

/** Media time covered so far, in the track's timescale. */
interface Span {
  start: number | undefined;
  end: number;
}

/** The video track's duration in seconds from its fragments (0 when they say nothing). */
export async function fragmentedSeconds(
  source: ByteSource,
  moovEnd: number,
  track: FragmentedTrack,
  limits: FragmentLimits,
): Promise<number> {
  if (track.mehdSeconds !== undefined) return track.mehdSeconds;
  const reader = new FragmentReader(source, track, limits);
  // A moov with samples of its own starts the track at 0; an empty one at the first fragment.
  const span: Span = { start: track.moovMediaDuration > 0 ? 0 : undefined, end: track.moovMediaDuration };
  const index = await reader.index(moovEnd);
  if (index && (await reader.fromIndex(index, span))) return secondsOf(span, track);
  await reader.walk(moovEnd, index?.start ?? source.size, span);
  return secondsOf(span, track);
}

function secondsOf(span: Span, track: FragmentedTrack): number {
  const ticks = span.end - (span.start ?? 0);
  return track.timescale > 0 && ticks > 0 ? ticks / track.timescale : 0;
}

class FragmentReader {
  private bytesRead = 0;
  private last: { start: number; bytes: Buffer } | undefined;
  /** Where each moof read so far ends. */
  private readonly moofEnd = new Map<number, number>();

  constructor(
    private readonly source: ByteSource,
    private readonly track: FragmentedTrack,
    private readonly limits: FragmentLimits,
  ) {}

  /** The mfra at the end of the file and the video track's entries, when there is one. */
  async index(moovEnd: number): Promise<{ start: number; entries: Tfra['entries'] } | undefined> {
    const size = this.source.size;
    if (size === undefined || size - moovEnd < 16 + 8) return undefined;
    const tailStart = Math.max(moovEnd, size - WINDOW);
    const tail = await this.read(tailStart, size - tailStart);
    const mfro = tail.subarray(tail.length - 16);
    if (mfro.length < 16 || mfro.toString('latin1', 4, 8) !== 'mfro') return undefined;
    const mfraSize = mfro.readUInt32BE(12);
    const start = size - mfraSize;
    if (mfraSize < 16 + 8 || start < moovEnd) return undefined;
    const bytes = start >= tailStart ? tail.subarray(start - tailStart) : await this.read(start, mfraSize);
    if (bytes.toString('latin1', 4, 8) !== 'mfra' || bytes.readUInt32BE(0) !== mfraSize) return undefined;
    const mfra = parseBox(bytes, this.limits.logger) as { tfras?: Tfra[] } | undefined;
    const tfra = mfra?.tfras?.find((t) => t.track_ID === this.track.trackId);
    const entries = [...(tfra?.entries ?? [])].sort((a, b) => a.moof_offset - b.moof_offset);
    return entries.length > 0 ? { start, entries } : { start, entries: [] };
  }

  /**
   * The first fragment (where the track starts) and the last random access point's fragment,
   * walked to the index (a few fragments after it may hold no random access point). False when
   * the index points at no fragment of the track: the caller walks them all instead.
   */
  async fromIndex(index: { start: number; entries: Tfra['entries'] }, span: Span): Promise<boolean> {
    const first = index.entries[0];
    const last = index.entries[index.entries.length - 1];
    if (!first || !last) return false;
    if (!(await this.fragmentAt(first.moof_offset, span, first.time))) return false;
    if (last.moof_offset === first.moof_offset) {
      await this.walk(this.nextOffset(first.moof_offset), index.start, span);
    } else {
      await this.walk(last.moof_offset, index.start, span, last.time);
    }
    return true;
  }

  /** Every moof from `from` to `to` (exclusive; the end of the file when unknown). */
  async walk(from: number, to: number | undefined, span: Span, firstTime?: number): Promise<void> {
    let time = firstTime;
    for (let offset = from; to === undefined || offset < to; ) {
      const head = await this.peek(offset, 16);
      if (head.length < 8) return;
      const { type, size } = readBoxHeader(head, offset, this.source.size);
      if (type === 'mfra') return;
      if (type === 'moof') {
        await this.fragmentAt(offset, span, time);
        time = undefined;
      }
      offset += size;
    }
  }

  private nextOffset(moofOffset: number): number {
    return this.moofEnd.get(moofOffset) ?? moofOffset;
  }

  /** Reads the moof at `offset` and adds its video fragments; false when there is no moof there. */
  private async fragmentAt(offset: number, span: Span, fallbackTime?: number): Promise<boolean> {
    const head = await this.peek(offset, 16);
    if (head.length < 8) return false;
    const { type, size } = readBoxHeader(head, offset, this.source.size);
    if (type !== 'moof') return false;
    this.moofEnd.set(offset, offset + size);
    const moof = parseBox(await this.peek(offset, size), this.limits.logger) as
      | { trafs?: Traf[] }
      | undefined;
    for (const traf of moof?.trafs ?? []) {
      if (traf.tfhd?.track_id !== this.track.trackId) continue;
      const begin = traf.tfdt?.baseMediaDecodeTime ?? fallbackTime ?? span.end;
      span.start ??= begin;
      span.end = Math.max(span.end, begin + this.trafDuration(traf));
    }
    return true;
  }

  private trafDuration(traf: Traf): number {
    const tfhd = traf.tfhd;
    const fallback =
      tfhd && tfhd.flags & TFHD_DEFAULT_SAMPLE_DURATION
        ? tfhd.default_sample_duration
        : this.track.defaultSampleDuration;
    let ticks = 0;
    for (const trun of traf.truns ?? []) {
      if (trun.flags & TRUN_SAMPLE_DURATION) {
        for (const duration of trun.sample_duration) ticks += duration;
      } else {
        ticks += trun.sample_count * fallback;
      }
    }
    return ticks;
  }

  /** `length` bytes at `offset`, from the last read when it holds them (a moof's next header). */
  private async peek(offset: number, length: number): Promise<Buffer> {
    const last = this.last;
    if (last && offset >= last.start && offset + length <= last.start + last.bytes.length) {
      return last.bytes.subarray(offset - last.start, offset - last.start + length);
    }
    const bytes = await this.read(offset, Math.max(length, WINDOW));
    this.last = { start: offset, bytes };
    return bytes.subarray(0, length);
  }

  private async read(offset: number, length: number): Promise<Buffer> {
    if (this.bytesRead + length > this.limits.maxBytes) {
      throw new ProbeError(
        'too_large',
        `the fragment headers of this fragmented MP4 need more than ${this.limits.maxBytes} bytes`,
      );
    }
    const bytes = await this.source.read(offset, length);
    this.bytesRead += bytes.length;
    return bytes;
  }
}

/** One whole top-level box (a moof, an mfra) parsed by mp4box, or undefined. */
function parseBox(bytes: Buffer, logger: Logger | undefined): unknown {
  const file = createFile();
  withLibraryConsole(logger, () => {
    try {
      file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(new Uint8Array(bytes).buffer, 0), true);
      file.flush();
    } catch (error) {
      logger?.debug({ err: error }, 'mp4box threw');
    }
  });
  return file.boxes[0];
}
