/**
 * Generated test images (no files in the repo): photo-like gradients with noise in every layout
 * the preprocessing must handle — alpha, greyscale, 16-bit, CMYK, EXIF-rotated, palette, tiny —
 * plus the bad inputs the service must reject (truncated, animated, decompression bomb, non-image).
 */
import sharp from "sharp";
import zlib from "node:zlib";
import { rng as prng } from "../../index/shared/synthetic.ts";

/** Interleaved RGB gradient + blobs + noise: smooth regions and edges, like a photo. */
export function photoPixels(width: number, height: number, seed = 1, channels = 3): Uint8Array {
  const rand = prng(seed);
  const out = new Uint8Array(width * height * channels);
  const cx = width * (0.3 + 0.4 * rand());
  const cy = height * (0.3 + 0.4 * rand());
  const r2 = (Math.min(width, height) * 0.25) ** 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inBlob = (x - cx) ** 2 + (y - cy) ** 2 < r2;
      const base = [255 * x / width, 255 * y / height, 255 * (x + y) / (width + height), 255 * (1 - x / width)];
      for (let c = 0; c < channels; c++) {
        const v = (inBlob ? 255 - base[c]! : base[c]!) + (rand() - 0.5) * 50;
        out[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return out;
}

function raw(data: Uint8Array | Uint16Array, width: number, height: number, channels: 1 | 2 | 3 | 4) {
  return sharp(data, { raw: { width, height, channels } });
}

export interface NamedImage { name: string; bytes: Buffer }

/** Valid images covering the layouts preprocessing converts, each a few hundred pixels wide. */
export async function parityImages(): Promise<NamedImage[]> {
  const w = 320, h = 240;
  const rgb = photoPixels(w, h, 1);
  const rgba = photoPixels(w, h, 2, 4);
  for (let i = 0; i < w * h; i++) rgba[i * 4 + 3] = Math.round(255 * (i % w) / w); // alpha ramp, 0 on the left
  const grey = photoPixels(w, h, 3, 1);
  const greyAlpha = photoPixels(w, h, 7, 2);
  for (let i = 0; i < w * h; i++) greyAlpha[i * 2 + 1] = Math.round(255 * Math.floor(i / w) / h); // alpha ramp, top to bottom
  const grey16 = new Uint16Array(w * h).map((_, i) => Math.round(65535 * (((i % w) / w) * 0.7 + 0.3 * ((i * 7919) % 101) / 100)));
  const rgb16 = new Uint16Array(photoPixels(w, h, 4)).map((v, i) => Math.min(65535, v * 257 + (i % 200)));
  const portrait = photoPixels(200, 300, 5);
  return [
    { name: "photo.jpg", bytes: await raw(rgb, w, h, 3).jpeg({ quality: 90 }).toBuffer() },
    { name: "photo.png", bytes: await raw(rgb, w, h, 3).png().toBuffer() },
    { name: "p3-profile.jpg", bytes: await raw(rgb, w, h, 3).jpeg({ quality: 90 }).withIccProfile("p3").toBuffer() },
    { name: "photo.webp", bytes: await raw(rgb, w, h, 3).webp({ lossless: true }).toBuffer() },
    { name: "portrait.png", bytes: await raw(portrait, 200, 300, 3).png().toBuffer() },
    { name: "alpha.png", bytes: await raw(rgba, w, h, 4).png().toBuffer() },
    { name: "transparent.gif", bytes: await raw(rgba, w, h, 4).gif().toBuffer() },
    { name: "grey-alpha.png", bytes: await raw(greyAlpha, w, h, 2).toColourspace("b-w").png().toBuffer() },
    { name: "grey.png", bytes: await raw(grey, w, h, 1).toColourspace("b-w").png().toBuffer() },
    { name: "grey16.png", bytes: await raw(grey16, w, h, 1).toColourspace("grey16").png().toBuffer() },
    { name: "rgb16.png", bytes: await raw(rgb16, w, h, 3).toColourspace("rgb16").png().toBuffer() },
    { name: "cmyk.jpg", bytes: await raw(rgb, w, h, 3).toColourspace("cmyk").jpeg({ quality: 90 }).toBuffer() },
    { name: "palette.png", bytes: await raw(rgb, w, h, 3).png({ palette: true, colours: 64 }).toBuffer() },
    { name: "tiny.png", bytes: await raw(photoPixels(20, 14, 6), 20, 14, 3).png().toBuffer() },
    ...(await Promise.all([3, 6, 8].map(async (o) => ({
      name: `exif${o}.jpg`,
      bytes: await raw(portrait, 200, 300, 3).jpeg({ quality: 90 }).withMetadata({ orientation: o }).toBuffer(),
    })))),
  ];
}

/** A PNG whose header claims `width` x `height` but whose pixel data is a few bytes of zlib. */
export function pngBomb(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(0, 9); // greyscale
  // One all-zero row compresses to almost nothing; a real bomb repeats it `height` times.
  const idat = zlib.deflateSync(Buffer.alloc(width + 1), { level: 9 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", Buffer.alloc(0))]);
}

/** A two-frame animated GIF. */
export async function animatedGif(): Promise<Buffer> {
  const frame = photoPixels(16, 16, 9);
  const frames = new Uint8Array(frame.length * 2);
  frames.set(frame, 0);
  frames.set(frame.map((v) => 255 - v), frame.length);
  return sharp(frames, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).gif().toBuffer();
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** An animated PNG (APNG) of `frames` 64x48 frames: acTL, then fcTL + IDAT, then fcTL + fdAT per frame. */
export async function apng(frames: number): Promise<Buffer> {
  const still = await sharp(photoPixels(64, 48, 11), { raw: { width: 64, height: 48, channels: 3 } }).png().toBuffer();
  const chunks: Array<{ type: string; data: Buffer }> = [];
  for (let at = 8; at < still.length;) {
    const length = still.readUInt32BE(at);
    chunks.push({ type: still.toString("ascii", at + 4, at + 8), data: still.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  const ihdr = chunks.find((c) => c.type === "IHDR")!.data;
  const idat = Buffer.concat(chunks.filter((c) => c.type === "IDAT").map((c) => c.data));
  let sequence = 0;
  const fctl = () => {
    const d = Buffer.alloc(26);
    d.writeUInt32BE(sequence++, 0);
    d.writeUInt32BE(64, 4);
    d.writeUInt32BE(48, 8);
    d.writeUInt16BE(1, 20); // delay 1/10 s
    d.writeUInt16BE(10, 22);
    return pngChunk("fcTL", d);
  };
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(frames, 0);
  const parts = [still.subarray(0, 8), pngChunk("IHDR", ihdr), pngChunk("acTL", actl), fctl(), pngChunk("IDAT", idat)];
  for (let f = 1; f < frames; f++) {
    parts.push(fctl());
    const seq = Buffer.alloc(4);
    seq.writeUInt32BE(sequence++);
    parts.push(pngChunk("fdAT", Buffer.concat([seq, idat])));
  }
  parts.push(pngChunk("IEND", Buffer.alloc(0)));
  return Buffer.concat(parts);
}
