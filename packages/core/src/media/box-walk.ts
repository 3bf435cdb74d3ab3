import { ProbeError } from './probe-error.js';

/**
 * Hand-written on purpose, and kept to top-level box headers: mp4box parses the buffers it is
 * given but cannot say which byte ranges to fetch, so finding `moov` without downloading `mdat`
 * (which may come first, in a file not made "faststart") is ours. Everything inside `moov` is
 * left to mp4box.
 */

/** Enough for a box header with a 64-bit size, plus the next few small boxes' headers. */
const HEADER_WINDOW = 64;
const MAX_FTYP_BYTES = 4096;
/** Boxes an MP4 or QuickTime file may start with; anything else is not one. */
const FIRST_BOXES = new Set(['ftyp', 'styp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid', 'pdin']);
const PRINTABLE_TYPE = /^[\x20-\x7e]{4}$/;

export interface ByteSource {
  /**
   * Bytes [start, start + length); fewer at the end of the file. Reads mostly move forward (a
   * remote source answers a backward read with a new request).
   */
  read(start: number, length: number): Promise<Buffer>;
  /** The file's size, once known. */
  readonly size: number | undefined;
}

export interface MovieBoxes {
  ftyp: Buffer | undefined;
  moov: Buffer;
  /** File offset just past the moov box: where the fragments of a fragmented file begin. */
  moovEnd: number;
}

/** Walks the top-level boxes with small reads and returns the `moov` box (and `ftyp`, if any). */
export async function findMovieBox(source: ByteSource, maxMoovBytes: number): Promise<MovieBoxes> {
  // The last read; `atEnd` when it came back short, i.e. it reached the end of the file.
  let window: { start: number; bytes: Buffer; atEnd: boolean } = {
    start: 0,
    bytes: Buffer.alloc(0),
    atEnd: false,
  };
  const slice = async (offset: number, length: number): Promise<Buffer> => {
    const end = window.start + window.bytes.length;
    // What the last read already holds is never asked for again: reads only move forward.
    const head =
      offset >= window.start && offset < end ? window.bytes.subarray(offset - window.start) : undefined;
    if (head && (head.length >= length || window.atEnd)) return head.subarray(0, length);
    const from = head ? end : offset;
    const wanted = Math.max(length - (head?.length ?? 0), HEADER_WINDOW);
    const bytes = await source.read(from, wanted);
    window = {
      start: offset,
      bytes: head ? Buffer.concat([head, bytes]) : bytes,
      atEnd: bytes.length < wanted,
    };
    return window.bytes.subarray(0, length);
  };

  let ftyp: Buffer | undefined;
  for (let offset = 0, index = 0; source.size === undefined || offset < source.size; index++) {
    const header = await slice(offset, 16);
    if (header.length === 0) break;
    const type = header.toString('latin1', 4, 8);
    if (header.length < 8 || !PRINTABLE_TYPE.test(type) || (index === 0 && !FIRST_BOXES.has(type))) {
      if (index === 0) throw notMp4(`not an MP4/MOV file: it starts with ${hex(header.subarray(0, 8))}`);
      throw notMp4(`unreadable box header at byte ${offset}`);
    }
    const { size } = readBoxHeader(header, offset, source.size);
    if (type === 'ftyp' && size <= MAX_FTYP_BYTES) ftyp = Buffer.from(await slice(offset, size));
    if (type === 'moov') {
      if (size > maxMoovBytes) {
        throw new ProbeError(
          'too_large',
          `the moov box is ${size} bytes, over the ${maxMoovBytes}-byte limit`,
        );
      }
      const moov = await slice(offset, size);
      if (moov.length < size) throw notMp4('the file ends inside its moov box (truncated?)');
      return { ftyp, moov, moovEnd: offset + size };
    }
    offset += size;
  }
  throw notMp4('no moov box (movie header) found: truncated, or not an MP4/MOV file');
}

/** A box header's type and size (`header` holds at least its first 8 bytes, 16 for a 64-bit size). */
export function readBoxHeader(
  header: Buffer,
  offset: number,
  fileSize: number | undefined,
): { type: string; size: number; headerLength: number } {
  const type = header.toString('latin1', 4, 8);
  const size32 = header.readUInt32BE(0);
  let size: number;
  let headerLength = 8;
  if (size32 === 1) {
    if (header.length < 16) throw notMp4(`the file ends inside the box header at byte ${offset}`);
    const size64 = header.readBigUInt64BE(8);
    if (size64 > BigInt(Number.MAX_SAFE_INTEGER)) throw notMp4(`box at byte ${offset} is impossibly large`);
    size = Number(size64);
    headerLength = 16;
  } else if (size32 === 0) {
    // "Extends to the end of the file": only the last box may say so.
    if (fileSize === undefined)
      throw notMp4(`box at byte ${offset} runs to an end of file the server did not tell`);
    size = fileSize - offset;
  } else {
    size = size32;
  }
  if (size < headerLength) throw notMp4(`box "${type}" at byte ${offset} has an invalid size ${size}`);
  return { type, size, headerLength };
}

function notMp4(message: string): ProbeError {
  return new ProbeError('not_mp4', message);
}

function hex(bytes: Buffer): string {
  return bytes.toString('hex').replace(/(..)(?!$)/g, '$1 ');
}
