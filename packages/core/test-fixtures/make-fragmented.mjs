#!/usr/bin/env node
// How the fragmented fixtures were made (run once; tests read the committed files, never ffmpeg).
//
// 1. ffmpeg 5.1 writes the base file the way MediaRecorder, OBS and CMAF packagers do: an empty
//    moov (every duration 0, `mvex`/`trex` but no `mehd`), one `moof`+`mdat` per second, and an
//    `mfra` index at the end:
//
//    ffmpeg -f lavfi -i testsrc=size=128x72:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
//      -t 4.2 -c:v libx264 -g 25 -pix_fmt yuv420p -c:a aac -b:a 32k \
//      -movflags frag_keyframe+empty_moov+default_base_moof frag-base.mp4
//
// 2. This script derives the four layouts from it, byte for byte (node make-fragmented.mjs frag-base.mp4):
//    with and without a `mehd` box (inserted into `mvex`; the moov, mvex and every tfra
//    moof_offset moved by its 16 bytes), and with and without the trailing `mfra` (cut off).
import { readFileSync, writeFileSync } from 'node:fs';

const MEHD_MS = 4200;
const base = readFileSync(process.argv[2] ?? 'frag-base.mp4');

function boxes(buf, start, end) {
  const out = [];
  for (let o = start; o < end; ) {
    const size = buf.readUInt32BE(o);
    out.push({ type: buf.toString('latin1', o + 4, o + 8), start: o, size });
    o += size;
  }
  return out;
}

const top = boxes(base, 0, base.length);
const moov = top.find((b) => b.type === 'moov');
const mfra = top.find((b) => b.type === 'mfra');
const mvex = boxes(base, moov.start + 8, moov.start + moov.size).find((b) => b.type === 'mvex');
if (!moov || !mfra || !mvex) throw new Error('expected moov, mvex and mfra');

const mehd = Buffer.alloc(16);
mehd.writeUInt32BE(16, 0);
mehd.write('mehd', 4, 'latin1');
mehd.writeUInt32BE(MEHD_MS, 12); // version 0: 32-bit fragment_duration, movie timescale (1000)

const withMehd = Buffer.concat([base.subarray(0, mvex.start + 8), mehd, base.subarray(mvex.start + 8)]);
withMehd.writeUInt32BE(moov.size + 16, moov.start);
withMehd.writeUInt32BE(mvex.size + 16, mvex.start);
// tfra entries hold absolute moof offsets: each moved by the 16 inserted bytes.
const shiftedMfra = mfra.start + 16;
for (const tfra of boxes(withMehd, shiftedMfra + 8, shiftedMfra + mfra.size).filter(
  (b) => b.type === 'tfra',
)) {
  const version = withMehd[tfra.start + 8];
  const sizes = withMehd.readUInt32BE(tfra.start + 16);
  const entries = withMehd.readUInt32BE(tfra.start + 20);
  const tail = ((sizes >> 4) & 3) + 1 + ((sizes >> 2) & 3) + 1 + (sizes & 3) + 1;
  const wide = version === 1 ? 8 : 4;
  for (let i = 0, o = tfra.start + 24; i < entries; i++, o += 2 * wide + tail) {
    const at = o + wide;
    if (wide === 8) withMehd.writeBigUInt64BE(withMehd.readBigUInt64BE(at) + 16n, at);
    else withMehd.writeUInt32BE(withMehd.readUInt32BE(at) + 16, at);
  }
}

writeFileSync('frag-4.2s-mfra.mp4', base);
writeFileSync('frag-4.2s.mp4', base.subarray(0, mfra.start));
writeFileSync('frag-4.2s-mehd-mfra.mp4', withMehd);
writeFileSync('frag-4.2s-mehd.mp4', withMehd.subarray(0, shiftedMfra));
