/**
 * The Embedder over a real exported bundle: shapes, normalisation, batching, caching, closing,
 * and parity with Python's ONNX path (PIL preprocess_image + transformers tokenizer + onnxruntime).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import type { Embedder } from "../server/model/types.ts";
import { ImageInputError } from "../server/model/image-input.ts";
import { loadEmbedder } from "../server/model/embedder.ts";
import { bundleUnavailableReason, testBundle } from "./helpers/bundle.ts";
import { parityImages, photoPixels, type NamedImage } from "./helpers/images.ts";
import { cosine, pythonReference, type ReferenceResult } from "./helpers/reference.ts";

const TEXTS = [
  "three cats", "a photo of five balloons", "Two dogs and THREE cats’ toys 🐶🐶", "", "seven seven seven",
  "café naïve 三只猫", "a <|endoftext|> b", "cat ".repeat(60),
];

function norm(v: Float32Array): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

describe("Embedder", { skip: bundleUnavailableReason() ?? false }, () => {
  let bundleDir: string;
  let embedder: Embedder;
  let images: NamedImage[];
  let reference: Promise<ReferenceResult> | undefined;
  // Python's view of the same texts and images, computed once (one process) when first needed.
  const python = () => (reference ??= pythonReference({ bundle: bundleDir, texts: TEXTS, images }));

  before(async () => {
    bundleDir = await testBundle();
    embedder = await loadEmbedder(bundleDir, { intraOpThreads: 1 });
    images = await parityImages();
  });
  after(() => embedder?.close());

  test("exposes the manifest's identity", () => {
    assert.equal(embedder.dim, embedder.manifest.embed_dim);
    assert.equal(embedder.logitScale, embedder.manifest.logit_scale);
    assert.equal(embedder.contextLength, embedder.manifest.context_length);
    assert.match(embedder.modelId, new RegExp(`^${embedder.manifest.model_name}@[0-9a-f]{12}$`));
  });

  test("texts: one unit vector per text, in order", async () => {
    const vectors = await embedder.embedTexts(TEXTS);
    assert.equal(vectors.length, TEXTS.length);
    for (const v of vectors) {
      assert.equal(v.length, embedder.dim);
      assert.ok(Math.abs(norm(v) - 1) < 1e-5);
    }
    assert.ok(cosine(vectors[0]!, vectors[1]!) < 0.99999, "different texts, different vectors");
    assert.deepEqual(await embedder.embedTexts([]), []);
  });

  test("texts: batching and caching do not change results; results are copies", async () => {
    const small = await loadEmbedder(bundleDir, { maxTextBatch: 3, skipVerify: true });
    try {
      const a = await small.embedTexts(TEXTS);
      const b = await embedder.embedTexts([...TEXTS].reverse());
      a.forEach((v, i) => assert.ok(cosine(v, b[TEXTS.length - 1 - i]!) > 0.99999, TEXTS[i]));
      a[0]!.fill(0);
      const again = await small.embedTexts([TEXTS[0]!, TEXTS[0]!]);
      assert.ok(Math.abs(norm(again[0]!) - 1) < 1e-5, "the cache must not hand out its own arrays");
      assert.notEqual(again[0], again[1]);
    } finally {
      await small.close();
    }
  });

  test("texts: agree with Python's tokenizer + text.onnx", async () => {
    const ref = await python();
    const ours = await embedder.embedTexts(TEXTS);
    ours.forEach((v, i) => {
      const c = cosine(v, ref.textEmbeds[i]!);
      assert.ok(c >= 0.9999, `${JSON.stringify(TEXTS[i]).slice(0, 40)}: cosine ${c}`);
    });
  });

  test("images: agree with Python's PIL + vision.onnx to cosine >= 0.999", async (t) => {
    const ref = await python();
    const ours = await embedder.embedImages(images.map((i) => i.bytes));
    const report: string[] = [];
    ours.forEach((v, i) => {
      assert.ok(Math.abs(norm(v) - 1) < 1e-5);
      const c = cosine(v, ref.imageEmbeds[i]!);
      report.push(`${images[i]!.name} ${c.toFixed(6)}`);
      assert.ok(c >= 0.999, `${images[i]!.name}: cosine ${c}`);
    });
    t.diagnostic(report.join(", "));
  });

  test("images: batch size does not change results", async () => {
    const small = await loadEmbedder(bundleDir, { maxImageBatch: 2, skipVerify: true });
    try {
      const bytes = images.slice(0, 5).map((i) => i.bytes);
      const a = await small.embedImages(bytes);
      const b = await embedder.embedImages(bytes);
      a.forEach((v, i) => assert.ok(cosine(v, b[i]!) > 0.99999));
    } finally {
      await small.close();
    }
  });

  test("images: a bad image in a batch rejects with its index", async () => {
    const good = images[0]!.bytes;
    await assert.rejects(embedder.embedImages([good, good, Buffer.from("not an image")]), (err: unknown) =>
      err instanceof ImageInputError && err.index === 2 && err.status === 422);
  });

  test("image limits from options apply", async () => {
    const strict = await loadEmbedder(bundleDir, { maxPixels: 100 * 100, skipVerify: true });
    try {
      const big = await sharp(photoPixels(200, 200), { raw: { width: 200, height: 200, channels: 3 } }).png().toBuffer();
      await assert.rejects(strict.embedImages([big]), (err: unknown) => err instanceof ImageInputError && err.code === "too_many_pixels");
    } finally {
      await strict.close();
    }
  });

  test("concurrent calls are independent", async () => {
    const results = await Promise.all(TEXTS.map((t) => embedder.embedTexts([t])));
    const batch = await embedder.embedTexts(TEXTS);
    results.forEach(([v], i) => assert.ok(cosine(v!, batch[i]!) > 0.99999));
  });

  test("close waits for in-flight work, then refuses new work", async () => {
    const e = await loadEmbedder(bundleDir, { skipVerify: true });
    const pending = e.embedImages(images.slice(0, 3).map((i) => i.bytes));
    await e.close();
    assert.equal((await pending).length, 3);
    await assert.rejects(e.embedTexts(["x"]), /closed/);
    await e.close();
  });

  test("invalid options are refused", async () => {
    await assert.rejects(loadEmbedder(bundleDir, { intraOpThreads: 0 }), RangeError);
    await assert.rejects(loadEmbedder(bundleDir, { maxTextBatch: 1.5 }), RangeError);
  });
});
