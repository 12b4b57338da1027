/**
 * Pillow's bicubic resampling (libImaging/Resample.c), reproduced operation for operation so
 * that an image enlarged here is bit-identical to `Image.resize(..., Image.BICUBIC)`:
 * separable, horizontal pass first, Keys cubic with a = -0.5 and support 2 scaled by the
 * reduction factor, coefficients normalised per output pixel then quantised to 22-bit fixed
 * point, 8-bit clipping between the passes.
 */
const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const CLIP_HIGH = (1 << PRECISION_BITS) * 256;
const SUPPORT = 2;

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coefficients {
  /** Taps per output pixel (row stride of `weights`). */
  ksize: number;
  /** Per output pixel: first input index and tap count. */
  bounds: Int32Array;
  /** Fixed-point weights, ksize per output pixel. */
  weights: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc for the full input range [0, inSize). */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = SUPPORT * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = bicubic((x + xmin - center + 0.5) / filterScale);
      sum += k[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? k[x]! / sum : k[x]!;
      // C's (int) cast truncates toward zero.
      weights[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

function clip8(v: number): number {
  if (v >= CLIP_HIGH) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/** Resizes interleaved 3-channel 8-bit pixels exactly as Pillow's BICUBIC does. */
export function resizeBicubicPil(src: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  const horiz = coefficients(width, outWidth);
  const vert = coefficients(height, outHeight);
  const needH = outWidth !== width;
  const needV = outHeight !== height;
  // Horizontal pass over only the rows the vertical pass reads.
  const first = needV ? vert.bounds[0]! : 0;
  const last = needV ? vert.bounds[outHeight * 2 - 2]! + vert.bounds[outHeight * 2 - 1]! : height;
  let mid = src;
  let midWidth = width;
  if (needH) {
    mid = new Uint8Array(outWidth * (last - first) * 3);
    midWidth = outWidth;
    for (let y = first; y < last; y++) {
      const rowIn = y * width * 3;
      const rowOut = (y - first) * outWidth * 3;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = horiz.bounds[xx * 2]!;
        const n = horiz.bounds[xx * 2 + 1]!;
        const kBase = xx * horiz.ksize;
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let x = 0; x < n; x++) {
          const w = horiz.weights[kBase + x]!;
          const p = rowIn + (xmin + x) * 3;
          s0 += src[p]! * w; s1 += src[p + 1]! * w; s2 += src[p + 2]! * w;
        }
        const o = rowOut + xx * 3;
        mid[o] = clip8(s0); mid[o + 1] = clip8(s1); mid[o + 2] = clip8(s2);
      }
    }
  }
  if (!needV) return needH ? mid : src.slice();
  const offset = needH ? first : 0;
  const out = new Uint8Array(outWidth * outHeight * 3);
  const stride = midWidth * 3;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = vert.bounds[yy * 2]! - offset;
    const n = vert.bounds[yy * 2 + 1]!;
    const kBase = yy * vert.ksize;
    for (let xx = 0; xx < outWidth; xx++) {
      let s0 = HALF, s1 = HALF, s2 = HALF;
      for (let y = 0; y < n; y++) {
        const w = vert.weights[kBase + y]!;
        const p = (ymin + y) * stride + xx * 3;
        s0 += mid[p]! * w; s1 += mid[p + 1]! * w; s2 += mid[p + 2]! * w;
      }
      const o = (yy * outWidth + xx) * 3;
      out[o] = clip8(s0); out[o + 1] = clip8(s1); out[o + 2] = clip8(s2);
    }
  }
  return out;
}
