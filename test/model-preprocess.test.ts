/**
 * sharp preprocessing against Python's PIL `preprocess_image`, pixel by pixel, on generated
 * images in every layout (RGB, alpha, grey, 16-bit, CMYK, palette, EXIF-rotated, tiny).
 * Colour conversion must be exact; resampling (libvips cubic vs PIL BICUBIC) within a few levels.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import sharp from "sharp";
import { decodeImage } from "../server/model/image-input.ts";
import {
  normalizeTable, parsePreprocessConfig, preprocessImage, PreprocessConfigError, roundHalfEven, shortestEdgeSize, toRgb,
  type PreprocessConfig,
} from "../server/model/preprocess.ts";
import { parityImages, type NamedImage } from "./helpers/images.ts";
import { pythonUnavailableReason } from "./helpers/python-ref.ts";
import { pythonReferences, type ReferenceResult } from "./helpers/reference.ts";

const OPENAI = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], background: [255, 255, 255] };
const json = (size: number, crop: number) => ({ size, crop_size: crop, interpolation: "bicubic", resize: "shortest_edge", ...OPENAI });

/** Differences in 8-bit levels (undoing the normalisation) between two CHW tensors. */
function levelDiff(a: Float32Array, b: Float32Array, config: PreprocessConfig): { mean: number; max: number } {
  assert.equal(a.length, b.length);
  const plane = a.length / 3;
  let sum = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) * config.std[Math.floor(i / plane)]! * 255;
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

describe("preprocess config and arithmetic", () => {
  test("Python's round: half to even", () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4, 2.6, 7].map(roundHalfEven), [0, 2, 2, 4, 2, 3, 7]);
  });

  test("shortest edge sizes as Python computes them", () => {
    assert.deepEqual(shortestEdgeSize(640, 480, 224), { width: 299, height: 224 });
    assert.deepEqual(shortestEdgeSize(333, 500, 224), { width: 224, height: 336 });
    assert.deepEqual(shortestEdgeSize(5, 3, 3), { width: 5, height: 3 });
    assert.deepEqual(shortestEdgeSize(10000, 1, 32), { width: 320000, height: 32 });
    assert.deepEqual(shortestEdgeSize(7, 2, 5), { width: 18, height: 5 }); // 17.5 -> 18 (even)
    assert.deepEqual(shortestEdgeSize(9, 2, 5), { width: 22, height: 5 }); // 22.5 -> 22 (even)
  });

  test("parses preprocess.json and refuses what it cannot reproduce", () => {
    const cfg = parsePreprocessConfig(json(256, 224));
    assert.equal(cfg.size, 256);
    assert.equal(cfg.cropSize, 224);
    assert.deepEqual(cfg.background, [255, 255, 255]);
    assert.throws(() => parsePreprocessConfig({ ...json(224, 224), interpolation: "bilinear" }), PreprocessConfigError);
    assert.throws(() => parsePreprocessConfig({ ...json(224, 224), resize: "longest_edge" }), PreprocessConfigError);
    assert.throws(() => parsePreprocessConfig({ ...json(224, 224), size: 0 }), /size/);
    assert.throws(() => parsePreprocessConfig({ ...json(224, 224), std: [1, 0, 1] }), /std/);
    assert.throws(() => parsePreprocessConfig({ ...json(224, 224), mean: [1, 2] }), /mean/);
    assert.throws(() => parsePreprocessConfig({ ...json(224, 224), background: [256, 0, 0] }), /background/);
    assert.throws(() => parsePreprocessConfig(null), PreprocessConfigError);
  });

  test("normalise table follows numpy's float32 steps", () => {
    const table = normalizeTable(parsePreprocessConfig(json(224, 224)));
    const f = Math.fround;
    assert.equal(table[0][0], f(f(0 - f(OPENAI.mean[0]!)) / f(OPENAI.std[0]!)));
    assert.equal(table[2][255], f(f(1 - f(OPENAI.mean[2]!)) / f(OPENAI.std[2]!)));
  });
});

describe("colour conversion (PIL's to_rgb)", () => {
  test("alpha composites on the background with PIL's rounding", async () => {
    const px = Uint8Array.from([100, 200, 50, 128, 10, 20, 30, 0, 1, 2, 3, 255]);
    const img = await decodeImage(await sharp(px, { raw: { width: 3, height: 1, channels: 4 } }).png().toBuffer());
    const rgb = toRgb(img, [255, 0, 10]);
    const blend = (bg: number, fg: number, a: number) => { const t = bg * (255 - a) + fg * a + 128; return ((t >> 8) + t) >> 8; };
    assert.deepEqual(Array.from(rgb.data), [blend(255, 100, 128), blend(0, 200, 128), blend(10, 50, 128), 255, 0, 10, 1, 2, 3]);
  });

  test("CMYK converts by PIL's formula, not an ICC transform", async () => {
    const cmyk = Uint8Array.from([0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 100, 50, 25, 60]);
    const img = { width: 4, height: 1, layout: "cmyk" as const, bits: 8 as const, channels: 4, hasAlpha: false, data: cmyk };
    const nk = 255 - 60;
    const mul = (c: number) => { const t = c * nk + 128; return nk - (((t >> 8) + t) >> 8); };
    assert.deepEqual(Array.from(toRgb(img, [255, 255, 255]).data), [255, 255, 255, 0, 255, 255, 0, 0, 0, mul(100), mul(50), mul(25)]);
  });

  test("16-bit grey scales by 65535, or by 255 when no value exceeds 255 (as to_rgb does)", () => {
    const img = (data: number[]) => ({ width: data.length, height: 1, layout: "grey" as const, bits: 16 as const, channels: 1, hasAlpha: false, data: Uint16Array.from(data) });
    assert.deepEqual(Array.from(toRgb(img([0, 65535, 32768]), [0, 0, 0]).data), [0, 0, 0, 255, 255, 255, 128, 128, 128]);
    assert.deepEqual(Array.from(toRgb(img([0, 255, 100]), [0, 0, 0]).data), [0, 0, 0, 255, 255, 255, 100, 100, 100]);
  });
});

const RESAMPLED = [[224, 224], [32, 32], [256, 224]] as const;

describe("parity with Python's preprocess_image", { skip: pythonUnavailableReason() ?? false }, () => {
  let images: NamedImage[];
  let flat: NamedImage[];
  let refs: ReferenceResult[];
  before(async () => {
    images = await parityImages();
    flat = [];
    for (const im of images) {
      const meta = await sharp(im.bytes).metadata();
      if (meta.width === 320 && meta.height === 240) flat.push(im);
    }
    refs = await pythonReferences([
      { preprocess: json(240, 240), images: flat },
      ...RESAMPLED.map(([size, crop]) => ({ preprocess: json(size, crop), images })),
    ]);
  });

  test("without resampling, every layout converts bit-exactly", async () => {
    // 320x240 sources at size 240: no resize, only orientation, colour conversion, crop, normalise.
    assert.ok(flat.length >= 10, `${flat.length} images`);
    const config = parsePreprocessConfig(json(240, 240));
    const ref = refs[0]!;
    for (const [i, im] of flat.entries()) {
      const ours = await preprocessImage(im.bytes, config);
      const diff = levelDiff(ours, ref.pixels[i]!, config);
      assert.ok(diff.max < 1e-3, `${im.name}: max difference ${diff.max.toFixed(4)} levels`);
    }
  });

  for (const [k, [size, crop]] of RESAMPLED.entries()) {
    test(`resize ${size} / crop ${crop}: within a level of PIL on average`, async (t) => {
      const config = parsePreprocessConfig(json(size, crop));
      const ref = refs[k + 1]!;
      const report: string[] = [];
      for (const [i, im] of images.entries()) {
        const diff = levelDiff(await preprocessImage(im.bytes, config), ref.pixels[i]!, config);
        report.push(`${im.name} ${diff.mean.toFixed(3)}/${diff.max.toFixed(0)}`);
        // Shrinking is libvips' cubic (sub-pixel positions quantised to 1/128): a level on
        // average, more only at the hard noisy edges of these synthetic images. Enlarging is exact.
        assert.ok(diff.mean < 1 && diff.max <= 16, `${im.name}: mean ${diff.mean.toFixed(3)}, max ${diff.max.toFixed(2)} levels`);
      }
      t.diagnostic(`mean/max 8-bit levels vs PIL: ${report.join(", ")}`);
    });
  }
});
