/** Units under the service: scoring math, path confinement, LRU, config, the spec/type sync. */
import assert from "node:assert/strict";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { generate, TARGET } from "../scripts/generators/gen-api-types.ts";
import { loadConfig } from "../server/services/config.ts";
import { countPrompts, formsOfBareNoun, nounForms } from "../server/services/count-prompts.ts";
import { Lru } from "../server/lib/lru.ts";
import { TextBatcher } from "../server/lib/text-batcher.ts";
import { confine, isWithin } from "../server/lib/paths.ts";
import { countAwareScore, countPosterior, softmax } from "../server/services/scoring.ts";
import { candidateCount } from "../server/services/search.ts";
import { removeTempDirs, tempDir } from "./helpers/service-app.ts";

after(removeTempDirs);

function unit(values: number[]): Float32Array {
  const norm = Math.hypot(...values);
  return Float32Array.from(values.map((v) => v / norm));
}

test("softmax is stable and sums to one", () => {
  const p = softmax([1000, 1001, 999]);
  assert.ok(Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-12);
  assert.ok(p[1]! > p[0]! && p[0]! > p[2]!);
});

test("count posterior peaks at the prompt closest to the image", () => {
  // Ten orthogonal-ish prompt directions; the image is the 4th one.
  const prompts = Array.from({ length: 10 }, (_, i) => unit(Array.from({ length: 10 }, (_, j) => (i === j ? 1 : 0.1))));
  const posterior = countPosterior(prompts[3]!, prompts, 100);
  assert.equal(posterior.estimatedCount, 4);
  assert.ok(posterior.probability > 0.99);
  assert.ok(Math.abs(posterior.meanCount - 4) < 0.05);
  // A cooler temperature spreads the mass.
  assert.ok(countPosterior(prompts[3]!, prompts, 1).probability < 0.2);
});

test("count-aware score is similarity plus the weighted log posterior in cosine units", () => {
  const posterior = { probabilities: [0.1, 0.6, 0.3, 0, 0, 0, 0, 0, 0, 0], estimatedCount: 2, probability: 0.6, meanCount: 2.2 };
  // The best match (bestSimilarity = similarity) has gate 1: the plain product of experts.
  assert.equal(countAwareScore(0.3, 0.3, posterior, null, 100, 1), 0.3);
  assert.ok(Math.abs(countAwareScore(0.3, 0.3, posterior, 2, 100, 1) - (0.3 + Math.log(0.6) / 100)) < 1e-12);
  assert.ok(Math.abs(countAwareScore(0.3, 0.3, posterior, 3, 50, 2) - (0.3 + (2 * Math.log(0.3)) / 50)) < 1e-12);
  assert.equal(countAwareScore(0.3, 0.3, posterior, 2, 100, 0), 0.3);
  assert.ok(Number.isFinite(countAwareScore(0.3, 0.3, posterior, 5, 100, 1)), "zero probability is clamped, not -Infinity");
  assert.equal(countAwareScore(0.3, 0.3, posterior, 12, 100, 1), 0.3, "counts above ten are not scoreable");
  // Reranking: a slightly less similar image with the right count wins.
  const right = { ...posterior, probabilities: [0, 0, 0.9, 0.1, 0, 0, 0, 0, 0, 0] };
  const wrong = { ...posterior, probabilities: [0, 0, 0.05, 0.95, 0, 0, 0, 0, 0, 0] };
  assert.ok(countAwareScore(0.3, 0.31, right, 3, 100, 1) > countAwareScore(0.31, 0.31, wrong, 3, 100, 1));
});

test("the kind gate: a poor match's count term tends to ln(1/10), whatever its posterior says", () => {
  const sure = { probabilities: [0, 0, 1, 0, 0, 0, 0, 0, 0, 0], estimatedCount: 3, probability: 1, meanCount: 3 };
  const gate = Math.exp(0.5 * 100 * (0.25 - 0.3));
  const expected = 0.25 + Math.log(gate * 1 + (1 - gate) / 10) / 100;
  assert.ok(Math.abs(countAwareScore(0.25, 0.3, sure, 3, 100, 1) - expected) < 1e-12);
  // Far below the best match, a certain "three" is worth no more than "any count".
  assert.ok(Math.abs(countAwareScore(0.0, 0.3, sure, 3, 100, 1) - Math.log(0.1) / 100) < 1e-6);
  // Images of the wrong kind with the right count no longer outrank the right kind one off:
  // three dogs (cos 0.275) vs four cats (cos 0.30, P(3) = 0.05). Ungated, the dogs would win:
  // 0.275 + ln(1) / 100 > 0.30 + ln(0.05) / 100.
  const threeDogs = sure;
  const fourCats = { ...sure, probabilities: [0, 0, 0.05, 0.95, 0, 0, 0, 0, 0, 0] };
  assert.ok(0.275 > 0.3 + Math.log(0.05) / 100);
  assert.ok(countAwareScore(0.3, 0.3, fourCats, 3, 100, 1) > countAwareScore(0.275, 0.3, threeDogs, 3, 100, 1));
  // A similarity above the stated best (float rounding) never gates above 1.
  assert.ok(Math.abs(countAwareScore(0.3, 0.29, sure, 3, 100, 1) - 0.3) < 1e-12);
});

test("candidates: at least k, default max(5k, 50), capped", () => {
  assert.equal(candidateCount(10, undefined, 500), 50);
  assert.equal(candidateCount(20, undefined, 500), 100);
  assert.equal(candidateCount(10, 300, 200), 200);
  assert.equal(candidateCount(100, 20, 500), 100);
});

test("count prompts use singular for one and plural otherwise", () => {
  assert.deepEqual(countPrompts(nounForms("cats", "cat", 3)).slice(0, 3), ["a photo of one cat", "a photo of two cats", "a photo of three cats"]);
  assert.equal(countPrompts(nounForms("cat", "cat", 1))[9], "a photo of ten cats");
  assert.deepEqual(formsOfBareNoun("  balloon "), { singular: "balloon", plural: "balloons" });
  assert.deepEqual(formsOfBareNoun("mice"), { singular: "mouse", plural: "mice" });
});

test("LRU evicts the least recently used", () => {
  const lru = new Lru<string, number>(2);
  lru.set("a", 1);
  lru.set("b", 2);
  lru.get("a");
  lru.set("c", 3);
  assert.equal(lru.get("b"), undefined);
  assert.equal(lru.get("a"), 1);
  assert.equal(lru.size, 2);
});

test("path confinement resolves .. and symlinks before checking", async () => {
  const root = await tempDir("root");
  const outside = await tempDir("outside");
  await mkdir(path.join(root, "a"));
  await writeFile(path.join(root, "a", "in.png"), "x");
  await writeFile(path.join(outside, "out.png"), "x");
  await symlink(path.join(outside, "out.png"), path.join(root, "a", "link.png"));
  await symlink(outside, path.join(root, "dirlink"));
  assert.ok((await confine("a/in.png", [root])).endsWith(path.join("a", "in.png")));
  assert.ok(await confine(path.join(root, "a", "..", "a", "in.png"), [root]));
  for (const bad of ["a/link.png", "dirlink/out.png", "../" + path.basename(outside) + "/out.png", path.join(outside, "out.png"), "a/\0.png"]) {
    await assert.rejects(confine(bad, [root]), (err: { status?: number }) => err.status === 403, bad);
  }
  await assert.rejects(confine("a/missing.png", [root]), (err: { status?: number }) => err.status === 404);
  await assert.rejects(confine("a/in.png", []), (err: { status?: number }) => err.status === 403);
  assert.equal(isWithin("/a/b", "/a/bc"), false);
  assert.equal(isWithin("/a/b", "/a/b/..c"), true);
});

test("config: defaults are safe, bad values are refused", () => {
  const config = loadConfig({});
  assert.equal(config.port, 8080);
  assert.equal(config.host, "127.0.0.1");
  assert.equal(config.apiKey, undefined);
  assert.deepEqual(config.imageRoots, [config.galleryDir]);
  assert.ok(config.modelDir.endsWith(path.join("server", "assets", "default-model")));
  assert.equal(loadConfig({ PORT: "9000", MAX_K: "20" }).maxK, 20);
  assert.throws(() => loadConfig({ PORT: "http" }), /PORT/);
  assert.throws(() => loadConfig({ MAX_K: "0" }), /MAX_K/);
});

test("server/api/types.gen.ts is generated from the current openapi.yaml", async () => {
  assert.equal(await readFile(TARGET, "utf8"), await generate(), "stale: run `npm run gen:api`");
});

test("text batcher: a lone query runs at once, concurrent ones share a run, errors reach all", async () => {
  const runs: string[][] = [];
  let fail = false;
  const batcher = new TextBatcher(async (texts) => {
    runs.push(texts);
    await new Promise((r) => setTimeout(r, 5));
    if (fail) throw new Error("boom");
    return texts.map((t) => Float32Array.of(t.length));
  }, { maxBatch: 3 });
  assert.deepEqual([...(await batcher.embed("a"))], [1]);
  const results = await Promise.all(["bb", "ccc", "dddd", "eeeee", "ffffff"].map((t) => batcher.embed(t)));
  assert.deepEqual(results.map((r) => r[0]), [2, 3, 4, 5, 6]);
  assert.deepEqual(runs, [["a"], ["bb", "ccc", "dddd"], ["eeeee", "ffffff"]]);
  fail = true;
  const failed = await Promise.allSettled(["x", "y"].map((t) => batcher.embed(t)));
  assert.ok(failed.every((r) => r.status === "rejected"));
});

test("text batcher drops texts whose client went away before their run", async () => {
  const runs: string[][] = [];
  const batcher = new TextBatcher(async (texts) => {
    runs.push(texts);
    await new Promise((r) => setTimeout(r, 5));
    return texts.map(() => Float32Array.of(0));
  });
  const gone = new AbortController();
  const first = batcher.embed("running");
  const dropped = batcher.embed("abandoned", gone.signal);
  const kept = batcher.embed("kept");
  gone.abort(new Error("client left"));
  await first;
  await assert.rejects(dropped, /client left/);
  await kept;
  assert.deepEqual(runs, [["running"], ["kept"]]);
  await assert.rejects(batcher.embed("late", gone.signal), /client left/);
});
