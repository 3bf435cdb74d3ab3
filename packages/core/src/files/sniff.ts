/**
 * What a file is, from its first bytes. Written here rather than taken from a library such as
 * `file-type`: five signatures are a few lines, and a general detector would name (and so invite
 * us to think about) hundreds of formats we refuse anyway. The extension and the declared
 * Content-Type are never trusted; only these bytes are.
 */

export const MEDIA_KINDS = ['video', 'image'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

export type MediaType = 'video/mp4' | 'video/quicktime' | 'image/png' | 'image/jpeg' | 'image/webp';

export interface Sniffed {
  kind: MediaKind;
  contentType: MediaType;
  /** The extension a stored copy gets (`.mp4`, `.png`, ...). */
  extension: string;
}

/** Bytes enough to tell every accepted format apart. */
export const SNIFF_BYTES = 16;

/** ISO-BMFF brands of still images (HEIF, AVIF): an `ftyp` box, but not a video. */
const IMAGE_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'mif1', 'msf1', 'avif', 'avis']);
/** QuickTime files written before `ftyp` existed start straight with one of these boxes. */
const QUICKTIME_FIRST_BOXES = new Set(['moov', 'mdat', 'wide', 'free', 'skip', 'pnot']);

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The media type of a file from its first bytes, or undefined when it is none we accept. */
export function sniffMedia(head: Buffer): Sniffed | undefined {
  if (head.length >= 8 && head.subarray(0, 8).equals(PNG)) {
    return { kind: 'image', contentType: 'image/png', extension: '.png' };
  }
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) {
    return { kind: 'image', contentType: 'image/jpeg', extension: '.jpg' };
  }
  if (
    head.length >= 12 &&
    head.toString('latin1', 0, 4) === 'RIFF' &&
    head.toString('latin1', 8, 12) === 'WEBP'
  ) {
    return { kind: 'image', contentType: 'image/webp', extension: '.webp' };
  }
  if (head.length < 12) return undefined;
  const boxSize = head.readUInt32BE(0);
  const boxType = head.toString('latin1', 4, 8);
  if (boxType === 'ftyp') {
    const brand = head.toString('latin1', 8, 12);
    if (IMAGE_BRANDS.has(brand)) return undefined;
    return brand === 'qt  '
      ? { kind: 'video', contentType: 'video/quicktime', extension: '.mov' }
      : { kind: 'video', contentType: 'video/mp4', extension: '.mp4' };
  }
  // A box size of 0 (to the end), 1 (64-bit size follows) or at least a header's 8 bytes.
  if (QUICKTIME_FIRST_BOXES.has(boxType) && (boxSize === 0 || boxSize === 1 || boxSize >= 8)) {
    return { kind: 'video', contentType: 'video/quicktime', extension: '.mov' };
  }
  return undefined;
}

/** How the accepted types of a kind read in an error message. */
export function acceptedTypes(kinds: readonly MediaKind[]): string {
  const names: Record<MediaKind, string> = { video: 'MP4/MOV video', image: 'JPEG, PNG or WebP image' };
  return kinds.map((k) => names[k]).join(' or ');
}
