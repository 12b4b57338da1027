/** Sessions in a worker thread (server/model/runtime.ts) embed exactly as in the event loop's thread. */
import assert from "node:assert/strict";
import { cp, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { BundleError } from "../server/model/bundle.ts";
import type { Embedder } from "../server/model/types.ts";
import { loadEmbedder } from "../server/model/embedder.ts";
import { createRunner } from "../server/model/runtime.ts";
import { bundleUnavailableReason, testBundle } from "./helpers/bundle.ts";
import { removeTempDirs, tempDir } from "./helpers/service-app.ts";

describe("worker-thread sessions", { skip: bundleUnavailableReason() ?? false }, () => {
  let dir: string;
  let inThread: Embedder;
  let inWorker: Embedder;

  before(async () => {
    dir = await testBundle();
    [inThread, inWorker] = await Promise.all([loadEmbedder(dir), loadEmbedder(dir, { worker: true, intraOpThreads: 2 })]);
  });
  after(async () => {
    await Promise.all([inThread?.close(), inWorker?.close()]);
    await removeTempDirs();
  });

  test("texts and images embed to the same vectors, concurrent runs each get their own answer", async () => {
    const texts = ["three cats", "a photo of five balloons", "seven red apples on a table"];
    const image = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 10, g: 200, b: 90 } } }).png().toBuffer();
    const [a, b, ...singles] = await Promise.all([inThread.embedTexts(texts), inWorker.embedTexts(texts), ...texts.map((t) => inWorker.embedTexts([`${t} `]))]);
    for (let i = 0; i < texts.length; i++) {
      for (let j = 0; j < a[i]!.length; j++) assert.ok(Math.abs(a[i]![j]! - b[i]![j]!) < 1e-5);
    }
    assert.equal(new Set(singles.map((s) => s[0]!.join(","))).size, texts.length, "each concurrent run answered its own batch");
    const [[x], [y]] = await Promise.all([inThread.embedImages([image]), inWorker.embedImages([image])]);
    for (let j = 0; j < x!.length; j++) assert.ok(Math.abs(x![j]! - y![j]!) < 1e-5);
  });

  test("a closed worker embedder refuses further work", async () => {
    const e = await loadEmbedder(dir, { worker: true });
    await e.close();
    await assert.rejects(e.embedTexts(["late"]), /closed/);
  });

  test("a file the worker cannot load is a BundleError naming the file, and the runner's failure is reported", async () => {
    await assert.rejects(createRunner("/nonexistent/text.onnx", { threads: 1, spinning: false, worker: true }), /nonexistent|No such file|Load model/i);
    const broken = await tempDir("broken");
    await cp(dir, broken, { recursive: true });
    await writeFile(path.join(broken, "vision.onnx"), "not onnx");
    // Verification would refuse the changed hash first; skip it to reach the session.
    await assert.rejects(loadEmbedder(broken, { worker: true, skipVerify: true }),
      (e: unknown) => e instanceof BundleError && e.file === "vision.onnx");
  });
});
