/**
 * Image preprocessing that reproduces Python's `countclip.model.preprocess.preprocess_image` (PIL):
 *
 *   EXIF auto-orient -> PIL-style RGB conversion (alpha composited on `background`, grey
 *   replicated, CMYK by PIL's naive formula, 16-bit scaled as `to_rgb` does) -> resize the
 *   shortest edge to `size` (bicubic; new sides rounded half-to-even like Python's round) ->
 *   centre crop `crop_size` (zero-filled outside, like PIL's crop) -> x/255, (x - mean) / std in
 *   float32 -> CHW.
 *
 * Colour conversion is done here rather than by libvips because libvips applies ICC transforms
 * (notably to CMYK) that PIL does not, and the model was trained on PIL's pixels; it is
 * bit-exact. Enlarging is bit-exact too (Pillow's algorithm, resample.ts). Shrinking is libvips'
 * cubic (Catmull-Rom, a = -0.5, antialiased), the same kernel as PIL's BICUBIC, run off the
 * event loop; it agrees with PIL to within a few 8-bit levels (test/model-preprocess.test.ts).
 */
import sharp from "sharp";
import { resizeBicubicPil } from "./resample.ts";
import { canDecodeResized, decodeImage, decodeResized, DEFAULT_LIMITS, inspectImage, type DecodedImage, type ImageLimits } from "./image-input.ts";

export interface PreprocessConfig {
  size: number;
  cropSize: number;
  interpolation: "bicubic";
  resize: "shortest_edge";
  mean: [number, number, number];
  std: [number, number, number];
  background: [number, number, number];
}

export class PreprocessConfigError extends Error {
  override readonly name = "PreprocessConfigError";
}

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved RGB, 8 bits per sample. */
  data: Uint8Array;
}

function triple(raw: unknown, field: string, check: (v: number) => boolean, expected: string): [number, number, number] {
  if (!Array.isArray(raw) || raw.length !== 3 || !raw.every((v) => typeof v === "number" && check(v))) {
    throw new PreprocessConfigError(`preprocess.json: "${field}" must be three ${expected}`);
  }
  return [raw[0], raw[1], raw[2]] as [number, number, number];
}

/** Validates preprocess.json (PreprocessConfig.to_json() of the Python side). */
export function parsePreprocessConfig(raw: unknown): PreprocessConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new PreprocessConfigError("preprocess.json: not an object");
  const cfg = raw as Record<string, unknown>;
  const posInt = (key: string): number => {
    const v = cfg[key];
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new PreprocessConfigError(`preprocess.json: "${key}" must be a positive integer`);
    return v as number;
  };
  const interpolation = cfg["interpolation"] ?? "bicubic";
  if (interpolation !== "bicubic") throw new PreprocessConfigError(`preprocess.json: interpolation ${JSON.stringify(interpolation)} is not supported (bicubic)`);
  const resize = cfg["resize"] ?? "shortest_edge";
  if (resize !== "shortest_edge") throw new PreprocessConfigError(`preprocess.json: resize ${JSON.stringify(resize)} is not supported (shortest_edge)`);
  return {
    size: posInt("size"),
    cropSize: posInt("crop_size"),
    interpolation,
    resize,
    mean: triple(cfg["mean"], "mean", Number.isFinite, "finite numbers"),
    std: triple(cfg["std"], "std", (v) => Number.isFinite(v) && v > 0, "positive numbers"),
    background: triple(cfg["background"] ?? [255, 255, 255], "background", (v) => Number.isInteger(v) && v >= 0 && v <= 255, "integers in 0..255"),
  };
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const frac = x - floor;
  if (frac !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** PIL's DIV255 rounding: (a + 128 + ((a + 128) >> 8)) >> 8. */
function div255(a: number): number {
  const t = a + 128;
  return ((t >> 8) + t) >> 8;
}

/** 16-bit samples as PIL reads 16-bit RGB(A) and LA: the high byte. */
function highBytes(data: Uint16Array): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! >> 8;
  return out;
}

/** PIL "I;16" -> uint8, as `to_rgb` does it: scale by 65535 when any value exceeds 255, else by 255. */
function grey16ToRgb(data: Uint16Array, out: Uint8Array): void {
  let peak = 255;
  for (let i = 0; i < data.length; i++) if (data[i]! > 255) { peak = 65535; break; }
  for (let p = 0; p < data.length; p++) out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = roundHalfEven((data[p]! / peak) * 255);
}

/** PIL cmyk2rgb: nk - c * nk / 255 with PIL's rounding (no ICC profile). Extra channels are ignored. */
function cmykToRgb(src: Uint8Array, channels: number, out: Uint8Array): void {
  const n = out.length / 3;
  for (let p = 0, i = 0; p < n; p++, i += channels) {
    const nk = 255 - src[i + 3]!;
    out[p * 3] = nk - div255(src[i]! * nk);
    out[p * 3 + 1] = nk - div255(src[i + 1]! * nk);
    out[p * 3 + 2] = nk - div255(src[i + 2]! * nk);
  }
}

/** PIL paste(mask=A) of RGBA on an RGB canvas: DIV255(bg * (255 - a) + fg * a) per channel. */
function compositeRgba(src: Uint8Array, background: readonly [number, number, number], out: Uint8Array): void {
  const [br, bg, bb] = background;
  const n = out.length / 3;
  for (let p = 0, i = 0; p < n; p++, i += 4) {
    const a = src[i + 3]!;
    const na = 255 - a;
    out[p * 3] = div255(br * na + src[i]! * a);
    out[p * 3 + 1] = div255(bg * na + src[i + 1]! * a);
    out[p * 3 + 2] = div255(bb * na + src[i + 2]! * a);
  }
}

/** Any decoded image -> 8-bit RGB exactly as `countclip.model.preprocess.to_rgb` produces it. */
export function toRgb(img: DecodedImage, background: readonly [number, number, number]): RgbImage {
  const { width, height } = img;
  if (img.layout === "grey" && img.bits === 16) {
    const out = new Uint8Array(width * height * 3);
    grey16ToRgb(img.data as Uint16Array, out);
    return { width, height, data: out };
  }
  const src = img.bits === 16 ? highBytes(img.data as Uint16Array) : (img.data as Uint8Array);
  if (img.layout === "rgb" && img.channels === 3) return { width, height, data: src };
  const out = new Uint8Array(width * height * 3);
  if (img.layout === "cmyk") cmykToRgb(src, img.channels, out);
  else if (img.layout === "rgb" && img.channels === 4) compositeRgba(src, background, out);
  else throw new Error(`unexpected decoded layout ${img.layout} with ${img.channels} channels`);
  return { width, height, data: out };
}

/** New size when the shortest edge becomes `size`; Python's arithmetic and rounding. */
export function shortestEdgeSize(width: number, height: number, size: number): { width: number; height: number } {
  const scale = size / Math.min(width, height);
  return { width: Math.max(1, roundHalfEven(width * scale)), height: Math.max(1, roundHalfEven(height * scale)) };
}

/**
 * Shrinking runs in libvips (off the event loop; its reduce kernel agrees with PIL's to a few
 * levels). Enlarging runs Pillow's own algorithm (resample.ts): libvips upsamples with a
 * different pixel-centre convention, and enlarged inputs are small, so this is cheap.
 */
export async function resizeShortestEdge(rgb: RgbImage, size: number): Promise<RgbImage> {
  const target = shortestEdgeSize(rgb.width, rgb.height, size);
  if (target.width === rgb.width && target.height === rgb.height) return rgb;
  if (target.width >= rgb.width && target.height >= rgb.height) {
    return { ...target, data: resizeBicubicPil(rgb.data, rgb.width, rgb.height, target.width, target.height) };
  }
  const data = await sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 }, limitInputPixels: false })
    .resize(target.width, target.height, { kernel: "cubic", fit: "fill" })
    .raw()
    .toBuffer();
  return { width: target.width, height: target.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Per-channel lookup table: uint8 -> float32 ((v / 255) - mean) / std, in numpy's float32 steps. */
export type NormalizeTable = [Float32Array, Float32Array, Float32Array];

export function normalizeTable(config: PreprocessConfig): NormalizeTable {
  const f = Math.fround;
  const make = (c: 0 | 1 | 2) => {
    const mean = f(config.mean[c]);
    const std = f(config.std[c]);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = f(f(f(v / 255) - mean) / std);
    return table;
  };
  return [make(0), make(1), make(2)];
}

/**
 * Centre-crops `cropSize` and writes normalised CHW floats into `out` at `offset`.
 * Pixels outside the image (crop larger than the resized image) are 0 before normalising, as PIL's crop pads.
 */
export function cropNormalizeInto(rgb: RgbImage, cropSize: number, table: NormalizeTable, out: Float32Array, offset = 0): void {
  const left = Math.floor((rgb.width - cropSize) / 2);
  const top = Math.floor((rgb.height - cropSize) / 2);
  const plane = cropSize * cropSize;
  for (let y = 0; y < cropSize; y++) {
    const sy = top + y;
    for (let x = 0; x < cropSize; x++) {
      const sx = left + x;
      const inside = sy >= 0 && sy < rgb.height && sx >= 0 && sx < rgb.width;
      const src = (sy * rgb.width + sx) * 3;
      const dst = offset + y * cropSize + x;
      for (let c = 0; c < 3; c++) out[dst + c * plane] = table[c as 0 | 1 | 2][inside ? rgb.data[src + c]! : 0]!;
    }
  }
}

/**
 * Untrusted bytes -> normalised CHW floats written into `out` at `offset` (one image of a batch).
 * Rejects with ImageInputError on bad input. Plain 8-bit RGB/grey images that shrink are
 * decoded and resized in one libvips pipeline; everything else is decoded, converted like PIL,
 * then resized.
 */
export async function preprocessInto(bytes: Uint8Array, config: PreprocessConfig, table: NormalizeTable,
  out: Float32Array, offset = 0, limits: ImageLimits = DEFAULT_LIMITS): Promise<void> {
  const info = await inspectImage(bytes, limits);
  const target = shortestEdgeSize(info.orientedWidth, info.orientedHeight, config.size);
  let rgb: RgbImage;
  if (config.size < Math.min(info.orientedWidth, info.orientedHeight) && canDecodeResized(info)) {
    rgb = await decodeResized(bytes, info, target.width, target.height, limits);
  } else {
    rgb = await resizeShortestEdge(toRgb(await decodeImage(bytes, limits, info), config.background), config.size);
  }
  cropNormalizeInto(rgb, config.cropSize, table, out, offset);
}

/** Untrusted bytes -> Float32Array [3, cropSize, cropSize]. Rejects with ImageInputError on bad input. */
export async function preprocessImage(bytes: Uint8Array, config: PreprocessConfig, limits: ImageLimits = DEFAULT_LIMITS): Promise<Float32Array> {
  const out = new Float32Array(3 * config.cropSize * config.cropSize);
  await preprocessInto(bytes, config, normalizeTable(config), out, 0, limits);
  return out;
}
