/** Untrusted image bytes: every bad-input class is an ImageInputError with a 4xx status, decided before decoding where possible. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import sharp from "sharp";
import { apngFrames, decodeImage, DEFAULT_LIMITS, ImageInputError, inspectImage, type ImageInputErrorCode } from "../server/model/image-input.ts";
import { animatedGif, apng, parityImages, photoPixels, pngBomb } from "./helpers/images.ts";

async function rejects(bytes: Uint8Array, code: ImageInputErrorCode, status: number, limits = DEFAULT_LIMITS): Promise<void> {
  await assert.rejects(decodeImage(bytes, limits), (err: unknown) => {
    assert.ok(err instanceof ImageInputError, `expected ImageInputError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    return true;
  });
}

const jpeg = () => sharp(photoPixels(64, 48), { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer();
const png = () => sharp(photoPixels(64, 48), { raw: { width: 64, height: 48, channels: 3 } }).png().toBuffer();

describe("image input: rejections", () => {
  test("empty input", () => rejects(new Uint8Array(0), "empty", 422));

  test("bytes that are not an image", async () => {
    await rejects(Buffer.from("hello, this is not an image at all"), "not_an_image", 422);
    await rejects(Buffer.from(JSON.stringify({ image: "cat.jpg" })), "not_an_image", 422);
  });

  test("a known signature followed by garbage is corrupt", async () => {
    await rejects(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]), "corrupt", 422);
    const j = await jpeg();
    const mangled = Buffer.from(j);
    mangled.fill(0x55, 200, Math.min(j.length - 2, 2000));
    await assert.rejects(decodeImage(mangled), (err: unknown) => err instanceof ImageInputError && err.status === 422);
  });

  test("vector and document formats are refused", async () => {
    await rejects(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'), "unsupported_format", 422);
  });

  test("truncated JPEG and PNG", async () => {
    const j = await jpeg();
    const p = await png();
    await rejects(j.subarray(0, Math.floor(j.length / 2)), "truncated", 422);
    await rejects(p.subarray(0, Math.floor(p.length / 2)), "truncated", 422);
  });

  test("animated images", async () => rejects(await animatedGif(), "animated", 422));

  test("animated PNG (APNG) is refused like animated GIF; a one-frame APNG is a still", async () => {
    const frames = await apng(5);
    // libvips reads an APNG's default image only: it would pass as a still without the acTL check.
    assert.equal((await sharp(frames).metadata()).pages ?? 1, 1);
    await rejects(frames, "animated", 422);
    assert.equal(apngFrames(frames), 5);
    assert.equal(apngFrames(await png()), 1);
    assert.equal((await decodeImage(await apng(1))).width, 64);
  });

  test("decompression bomb: refused from the header, before any pixel is decoded", async () => {
    const bomb = pngBomb(50_000, 50_000); // 2.5 gigapixels in a few hundred bytes
    assert.ok(bomb.length < 2000);
    const started = performance.now();
    await rejects(bomb, "too_many_pixels", 422);
    assert.ok(performance.now() - started < 2000, "rejection must not decode the image");
  });

  test("pixel and byte limits come from configuration", async () => {
    const p = await png();
    await rejects(p, "too_many_pixels", 422, { maxPixels: 64 * 48 - 1, maxInputBytes: 1e9 });
    await rejects(p, "too_large", 413, { maxPixels: 1e9, maxInputBytes: p.length - 1 });
    assert.equal((await decodeImage(p, { maxPixels: 64 * 48, maxInputBytes: p.length })).width, 64);
  });
});

describe("image input: accepted images", () => {
  test("every parity image decodes, in its source layout", async () => {
    const expected: Record<string, { layout: string; bits: number; alpha: boolean }> = {
      "photo.jpg": { layout: "rgb", bits: 8, alpha: false },
      "alpha.png": { layout: "rgb", bits: 8, alpha: true },
      "grey.png": { layout: "rgb", bits: 8, alpha: false },
      "grey-alpha.png": { layout: "rgb", bits: 8, alpha: true },
      "grey16.png": { layout: "grey", bits: 16, alpha: false },
      "rgb16.png": { layout: "rgb", bits: 16, alpha: false },
      "cmyk.jpg": { layout: "cmyk", bits: 8, alpha: false },
      "transparent.gif": { layout: "rgb", bits: 8, alpha: true },
    };
    for (const im of await parityImages()) {
      const img = await decodeImage(im.bytes);
      assert.equal(img.data.length, img.width * img.height * img.channels, im.name);
      const want = expected[im.name];
      if (want) assert.deepEqual({ layout: img.layout, bits: img.bits, alpha: img.hasAlpha }, want, im.name);
    }
  });

  test("EXIF orientation is applied (5-8 swap width and height)", async () => {
    const images = await parityImages();
    for (const [name, w, h] of [["exif3.jpg", 200, 300], ["exif6.jpg", 300, 200], ["exif8.jpg", 300, 200]] as const) {
      const bytes = images.find((i) => i.name === name)!.bytes;
      const info = await inspectImage(bytes);
      assert.deepEqual([info.orientedWidth, info.orientedHeight], [w, h], name);
      const img = await decodeImage(bytes);
      assert.deepEqual([img.width, img.height], [w, h], name);
    }
  });
});
