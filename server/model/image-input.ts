/**
 * Safe decoding of untrusted image bytes.
 *
 * Everything is checked from the header (sharp.metadata(), which parses no pixel data) before a
 * single pixel is decoded: format allow-list, dimensions, a pixel budget against decompression
 * bombs, and single-frame only. Decoding itself runs with libvips' `failOn: "error"` and
 * `limitInputPixels` as a second guard, so truncated or corrupt data fails instead of being
 * silently padded with grey. Every rejection is an `ImageInputError` carrying the HTTP status a
 * client error deserves; nothing here should ever surface as a 5xx.
 *
 * The decoded pixels keep the source's layout (grey / grey16 / RGB / CMYK, alpha or not, 8 or 16
 * bit) so that preprocess.ts can convert colour exactly the way Python's PIL path does.
 */
import sharp, { type ColourspaceEnum, type Metadata, type OutputInfo, type Sharp } from "sharp";

export const DEFAULT_MAX_PIXELS = 40_000_000;
export const DEFAULT_MAX_INPUT_BYTES = 25 * 1024 * 1024;

/** Raster formats we decode. SVG/PDF (renderers, external references) and exotic loaders are refused. */
const ALLOWED_FORMATS = new Set(["jpeg", "png", "webp", "gif", "tiff", "heif"]);

export type ImageInputErrorCode =
  | "empty"
  | "too_large"
  | "not_an_image"
  | "unsupported_format"
  | "too_many_pixels"
  | "animated"
  | "truncated"
  | "corrupt";

/**
 * The HTTP answer to each rejection. A size limit is 413 (send less); everything wrong with the
 * bytes themselves is 422 (the JSON was fine, its image is not acceptable), each with its own
 * title and so its own problem type; 415 stays reserved for a body that is not JSON.
 */
const ANSWER: Record<ImageInputErrorCode, { status: number; title: string }> = {
  empty: { status: 422, title: "Empty Image" },
  too_large: { status: 413, title: "Image Too Large" },
  not_an_image: { status: 422, title: "Not an Image" },
  unsupported_format: { status: 422, title: "Unsupported Image Format" },
  too_many_pixels: { status: 422, title: "Too Many Pixels" },
  animated: { status: 422, title: "Animated Image" },
  truncated: { status: 422, title: "Truncated Image" },
  corrupt: { status: 422, title: "Corrupt Image" },
};

/** A client-side problem with an image. `status` is the 4xx the HTTP layer should answer. */
export class ImageInputError extends Error {
  override readonly name = "ImageInputError";
  readonly status: number;
  /** Problem title (and so problem type) of this rejection. */
  readonly title: string;
  /** Position of the offending image when it came in a batch (set by Embedder.embedImages). */
  index?: number;
  constructor(readonly code: ImageInputErrorCode, message: string) {
    super(message);
    this.status = ANSWER[code].status;
    this.title = ANSWER[code].title;
  }
}

export interface ImageLimits {
  /** Largest width * height accepted (after reading the header, before decoding). */
  maxPixels: number;
  /** Largest encoded size in bytes. */
  maxInputBytes: number;
}

export const DEFAULT_LIMITS: ImageLimits = { maxPixels: DEFAULT_MAX_PIXELS, maxInputBytes: DEFAULT_MAX_INPUT_BYTES };

/** How to decode an image so that its pixels can be converted exactly as PIL would. */
export interface DecodePlan {
  layout: PixelLayout;
  bits: 8 | 16;
  hasAlpha: boolean;
  /** libvips colourspace to process in (CMYK must not pass through sRGB), or null for the default. */
  pipeline: ColourspaceKey | null;
  target: ColourspaceKey;
}

type ColourspaceKey = keyof ColourspaceEnum & string;

export interface ImageInfo {
  format: string;
  /** Stored dimensions (before EXIF orientation). */
  width: number;
  height: number;
  /** Dimensions after EXIF auto-orientation. */
  orientedWidth: number;
  orientedHeight: number;
  plan: DecodePlan;
}

export type PixelLayout = "grey" | "rgb" | "cmyk";

/** Decoded, EXIF-oriented pixels in the source's own colour layout, interleaved (HWC). */
export interface DecodedImage {
  width: number;
  height: number;
  layout: PixelLayout;
  /** 8 or 16 bits per sample (16 only for 16-bit sources). */
  bits: 8 | 16;
  /** Colour channels (1 grey, 3 rgb, 4 cmyk) plus one when hasAlpha. */
  channels: number;
  hasAlpha: boolean;
  data: Uint8Array | Uint16Array;
}

function isTruncation(message: string): boolean {
  return /premature end|truncat|unexpected end|end of (file|stream|data)|read error|not enough data|short read|EOF/i.test(message);
}

function decodeFailure(err: unknown): ImageInputError {
  const message = err instanceof Error ? err.message : String(err);
  if (/unsupported image format/i.test(message)) return new ImageInputError("not_an_image", "the data is not a supported image");
  if (/pixel limit/i.test(message)) return new ImageInputError("too_many_pixels", "the image has too many pixels");
  if (isTruncation(message)) return new ImageInputError("truncated", `the image data is truncated (${firstLine(message)})`);
  return new ImageInputError("corrupt", `the image could not be decoded (${firstLine(message)})`);
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.trim().slice(0, 200);
}

function checkBytes(bytes: Uint8Array, limits: ImageLimits): void {
  if (bytes.length === 0) throw new ImageInputError("empty", "the image is empty (0 bytes)");
  if (bytes.length > limits.maxInputBytes) {
    throw new ImageInputError("too_large", `the image is ${bytes.length} bytes; the limit is ${limits.maxInputBytes}`);
  }
}

/** Reads and validates the header only. Rejects with ImageInputError; decodes no pixels. */
export async function inspectImage(bytes: Uint8Array, limits: ImageLimits = DEFAULT_LIMITS): Promise<ImageInfo> {
  checkBytes(bytes, limits);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw decodeFailure(err);
  }
  const format = meta.format ?? "unknown";
  if (!ALLOWED_FORMATS.has(format)) {
    throw new ImageInputError("unsupported_format", `image format ${format} is not accepted (accepted: JPEG, PNG, WebP, GIF, TIFF, AVIF)`);
  }
  const { width, height } = meta;
  if (!width || !height) throw new ImageInputError("corrupt", "the image header has no dimensions");
  const frames = format === "png" ? apngFrames(bytes) : meta.pages ?? 1;
  if (frames > 1) {
    throw new ImageInputError("animated", `animated or multi-page images are not accepted (${frames} frames)`);
  }
  if (width * height > limits.maxPixels) {
    throw new ImageInputError("too_many_pixels", `the image is ${width}x${height} = ${width * height} pixels; the limit is ${limits.maxPixels}`);
  }
  const swap = (meta.orientation ?? 1) >= 5;
  return { format, width, height, orientedWidth: swap ? height : width, orientedHeight: swap ? width : height, plan: planOf(meta) };
}

/**
 * Frames of an animated PNG (APNG), 1 for a still PNG. libvips reads only an APNG's default
 * image and reports one page, so the frame count comes from the `acTL` chunk, which the APNG
 * spec requires before the first `IDAT`.
 */
export function apngFrames(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!, bytes[at + 6]!, bytes[at + 7]!);
    if (type === "IDAT" || type === "IEND") return 1;
    if (type === "acTL") return at + 12 <= bytes.length ? Math.max(1, view.getUint32(at + 8)) : 1;
    at += 12 + length;
  }
  return 1;
}

function planOf(meta: Metadata): DecodePlan {
  const space = meta.space ?? "srgb";
  const bits = meta.depth === "ushort" ? 16 : 8;
  const hasAlpha = meta.hasAlpha === true;
  if (space === "cmyk") return { layout: "cmyk", bits: 8, hasAlpha, pipeline: "cmyk", target: "cmyk" };
  // 16-bit grey without alpha is PIL's "I;16", whose 8-bit scaling differs from every other mode.
  if (bits === 16 && (space === "grey16" || space === "b-w") && !hasAlpha) {
    return { layout: "grey", bits, hasAlpha, pipeline: null, target: "grey16" };
  }
  // Everything else as RGB: libvips replicates grey into three equal bands, as PIL's L -> RGB does.
  return { layout: "rgb", bits, hasAlpha, pipeline: null, target: bits === 16 ? "rgb16" : "srgb" };
}

/**
 * The decoder for validated bytes. Embedded ICC profiles are ignored, as PIL ignores them (the
 * model was trained on PIL's pixels); CMYK stays CMYK for the same reason.
 */
function decoder(bytes: Uint8Array, info: ImageInfo, limits: ImageLimits): Sharp {
  let image = sharp(bytes, { failOn: "error", limitInputPixels: limits.maxPixels, sequentialRead: true, autoOrient: true, ignoreIcc: true });
  if (info.plan.pipeline) image = image.pipelineColourspace(info.plan.pipeline);
  return image.toColourspace(info.plan.target);
}

async function run(image: Sharp, depth: "uchar" | "ushort"): Promise<{ data: Buffer; info: OutputInfo }> {
  try {
    return await image.raw({ depth }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeFailure(err);
  }
}

/** Validates (unless `info` is given), then decodes to EXIF-oriented pixels in the source layout. */
export async function decodeImage(bytes: Uint8Array, limits: ImageLimits = DEFAULT_LIMITS, info?: ImageInfo): Promise<DecodedImage> {
  const header = info ?? await inspectImage(bytes, limits);
  const { layout, bits } = header.plan;
  const { data, info: out } = await run(decoder(bytes, header, limits), bits === 16 ? "ushort" : "uchar");
  const samples = bits === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const colour = layout === "grey" ? 1 : layout === "rgb" ? 3 : 4;
  return { width: out.width, height: out.height, layout, bits, channels: out.channels, hasAlpha: out.channels > colour, data: samples };
}

/** Whether `decodeResized` reproduces PIL's colour path for this image (8-bit RGB or grey, no alpha). */
export function canDecodeResized(info: ImageInfo): boolean {
  return info.plan.layout === "rgb" && info.plan.bits === 8 && !info.plan.hasAlpha;
}

/**
 * Decode + orient + shrink in one libvips pipeline (no full-size copy through JavaScript), for
 * images where `canDecodeResized`. Shrink-on-load (JPEG DCT scaling) is off: it is not PIL's filter.
 */
export async function decodeResized(bytes: Uint8Array, info: ImageInfo, width: number, height: number,
  limits: ImageLimits = DEFAULT_LIMITS): Promise<{ width: number; height: number; data: Uint8Array }> {
  if (!canDecodeResized(info)) throw new Error("decodeResized: image needs colour conversion first");
  const image = decoder(bytes, info, limits).resize(width, height, { kernel: "cubic", fit: "fill", fastShrinkOnLoad: false });
  const { data, info: out } = await run(image, "uchar");
  if (out.channels !== 3) throw new ImageInputError("corrupt", `decoded ${out.channels} channels where 3 were expected`);
  return { width: out.width, height: out.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
