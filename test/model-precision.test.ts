/**
 * fp32 / int8 towers: the manifest's choice, the operator's override, and what each one costs
 * the model id (vision precision changes image vectors, so the id; text precision does not).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { type Bundle, BundleError, type BundleManifest } from "../server/model/bundle.ts";
import type { Embedder } from "../server/model/types.ts";
import { chooseTower, manifestPrecision } from "../server/model/precision.ts";
import { loadEmbedder } from "../server/model/embedder.ts";
import { bundleUnavailableReason, testBundle } from "./helpers/bundle.ts";
import { cosine } from "./helpers/reference.ts";

function fakeBundle(extra: Record<string, unknown>, files: string[]): Bundle {
  const manifest = { model_name: "m", files: Object.fromEntries(files.map((f) => [f, { sha256: "0".repeat(64), bytes: 1 }])), ...extra } as unknown as BundleManifest;
  return { dir: "/b", manifest, contentHash: "0".repeat(64), has: (n) => files.includes(n), file: (n) => `/b/${n}` };
}

const FP32 = ["text.onnx", "vision.onnx"];

test("precision: the manifest decides under auto; bundles without a precision table are fp32", () => {
  assert.equal(manifestPrecision(fakeBundle({}, FP32), "text"), "fp32");
  const q = fakeBundle({ precision: { text: "int8", vision: "fp32" } }, [...FP32, "text.int8.onnx"]);
  assert.deepEqual(chooseTower(q, "text"), { precision: "int8", file: "text.int8.onnx" });
  assert.deepEqual(chooseTower(q, "text", "fp32"), { precision: "fp32", file: "text.onnx" });
  assert.deepEqual(chooseTower(q, "vision"), { precision: "fp32", file: "vision.onnx" });
});

test("precision: int8 asked of a bundle without the file, or a bad table, is refused naming it", () => {
  assert.throws(() => chooseTower(fakeBundle({}, FP32), "vision", "int8"),
    (e: unknown) => e instanceof BundleError && e.code === "missing_file" && /VISION_PRECISION=int8.*vision\.int8\.onnx/.test(e.message));
  assert.throws(() => chooseTower(fakeBundle({ precision: { text: "int8" } }, FP32), "text"), /manifest\.json names int8 for the text tower/);
  assert.throws(() => manifestPrecision(fakeBundle({ precision: { text: "int4" } }, FP32), "text"),
    (e: unknown) => e instanceof BundleError && e.code === "invalid_manifest");
});

test("precision: forcing an int8 tower that failed its parity checks runs it with a warning", () => {
  const b = fakeBundle({ precision: { text: "fp32" }, quantization: { text: { passed: false } } }, [...FP32, "text.int8.onnx"]);
  assert.match(chooseTower(b, "text", "int8").warning ?? "", /failed its parity checks.*TEXT_PRECISION=fp32/);
  assert.equal(chooseTower(b, "text").warning, undefined);
});

describe("int8 towers of an exported bundle", { skip: bundleUnavailableReason() ?? false }, () => {
  let dir: string;
  const open: Embedder[] = [];
  const load = async (text: "auto" | "fp32" | "int8", vision: "auto" | "fp32" | "int8") => {
    const e = await loadEmbedder(dir, { textPrecision: text, visionPrecision: vision });
    open.push(e);
    return e;
  };

  before(async () => {
    dir = await testBundle({ args: ["--quantize", "all"] });
  });
  after(() => Promise.all(open.map((e) => e.close())));

  test("auto follows the manifest's recorded choice", async () => {
    const e = await load("auto", "auto");
    const precision = e.manifest["precision"] as Record<string, string>;
    assert.deepEqual(e.precision, precision);
    const q = e.manifest["quantization"] as Record<string, { passed: boolean; shipped: boolean }>;
    for (const tower of ["text", "vision"] as const) assert.equal(precision[tower], q[tower]!.passed ? "int8" : "fp32");
  });

  test("int8 text embeds like fp32 (cosine >= 0.99) under the same model id", async () => {
    const fp32 = await load("fp32", "fp32");
    const int8 = await load("int8", "fp32");
    assert.deepEqual(int8.precision, { text: "int8", vision: "fp32" });
    assert.equal(int8.modelId, fp32.modelId);
    const texts = ["a photo of three cats", "two dogs on a sofa", "seven red apples"];
    const [a, b] = await Promise.all([fp32.embedTexts(texts), int8.embedTexts(texts)]);
    for (let i = 0; i < texts.length; i++) assert.ok(cosine(a[i]!, b[i]!) >= 0.99, `${texts[i]}: ${cosine(a[i]!, b[i]!)}`);
    assert.notDeepEqual([...a[0]!], [...b[0]!]); // really another graph
  });

  test("int8 vision changes the model id (its vectors need their own index) and embeds like fp32", async () => {
    const fp32 = await load("fp32", "fp32");
    const int8 = await load("fp32", "int8");
    assert.equal(int8.modelId, `${fp32.modelId}+vision-int8`);
    const image = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer();
    const [[a], [b]] = await Promise.all([fp32.embedImages([image]), int8.embedImages([image])]);
    assert.ok(cosine(a!, b!) >= 0.99);
  });
});
