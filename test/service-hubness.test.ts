/**
 * The hubness correction of count-aware ranking (server/services/hubness.ts, openapi.yaml
 * "Count-aware scoring"): h(v), its cache, where its settings come from, and that search and
 * rerank rank by m = cos - beta * h(v) while reporting the plain cosine as `similarity`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Hit, IndexView } from "../index/backend.ts";
import { type BundleManifest, BundleError, parseManifest } from "../server/model/bundle.ts";
import type { Embedder } from "../server/model/types.ts";
import { loadConfig } from "../server/services/config.ts";
import { HubnessCorrection, hubScore, objectBankPrompts, resolveHubness } from "../server/services/hubness.ts";
import { countAwareScore, countPosterior } from "../server/services/scoring.ts";
import { rerank, search } from "../server/services/search.ts";
import { Serving } from "../server/services/serving.ts";
import { DEFAULT_MODEL } from "./helpers/default-gallery.ts";
import { readFile } from "node:fs/promises";
import path from "node:path";

const DIM = 4;
const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
};
const e = (i: number) => unit(Array.from({ length: DIM }, (_, j) => (j === i ? 1 : 0)));

const validManifest = {
  format: "countclip-bundle", format_version: 1, model_name: "m", embed_dim: DIM, logit_scale: 100,
  context_length: 32, image_size: 32,
  files: { "text.onnx": { sha256: "a".repeat(64), bytes: 1 } },
};

/**
 * A text side where every bank prompt is e0 (so h(v) = v[0]), the queries "three cats" and "cats" are e1 and
 * every count prompt is the same vector (a flat count posterior: the count term is a constant,
 * so the ranking is by m alone).
 */
function fakeEmbedder(search: Record<string, unknown> | undefined, calls: string[][] = []): Embedder {
  const bank = new Set(objectBankPrompts());
  const manifest = parseManifest(search ? { ...validManifest, search } : validManifest);
  return {
    modelId: "fake@1", dim: DIM, logitScale: 100, contextLength: 32, manifest, bundleDir: "/fake",
    precision: { text: "fp32", vision: "fp32" },
    async embedTexts(texts) {
      calls.push(texts);
      return texts.map((t) => (bank.has(t) ? e(0) : t === "three cats" || t === "cats" ? e(1) : e(3)));
    },
    async embedImages() {
      throw new Error("not used");
    },
    async close() {},
  };
}

// A is the closer match to the query (0.6) but a hub (h = 0.8); B a little farther (0.55), no hub.
const A = unit([0.8, 0.6, 0, 0]);
const B = unit([0, 0.55, 0, Math.sqrt(1 - 0.55 ** 2)]);

function view(vectors: Record<string, Float32Array>): IndexView {
  const hits = (query: Float32Array): Hit[] => Object.entries(vectors)
    .map(([id, vector]) => ({ meta: { id, source: "upload", sha256: "0".repeat(64), addedAt: "" }, vector,
      similarity: vector.reduce((s, x, i) => s + x * query[i]!, 0) }))
    .sort((a, b) => b.similarity - a.similarity);
  return {
    buildKey: 1, origin: { modelId: "fake@1", modelDir: "/fake", startModelDir: "/fake", build: 1 }, dim: DIM,
    size: async () => Object.keys(vectors).length,
    get: async () => undefined,
    search: async (query, k) => hits(query).slice(0, k),
    items: async () => [],
  };
}

function serving(search: Record<string, unknown> | undefined, hubnessBeta: number | null = null) {
  return new Serving(fakeEmbedder(search), view({ A, B }), {
    countCacheSize: 16, textBatchMax: 8, batchWindowMs: 0, maxQueueWaitMs: 0, hubnessBeta, hubnessCacheSize: 16,
  });
}

const TUNED = { hubness: { bank: "coco-80", beta: 0.4, top_k: 10 } };
const limits = { maxCandidates: 50, efSearch: 16 };

test("h(v) is the mean of the top_k cosines to the bank rows", () => {
  const bank = new Float32Array([1, 0, 0, 0, 0.6, 0.8, 0, 0, 0, 0, 1, 0]);
  const v = unit([0.5, 0.5, 0.5, 0.5]);
  assert.ok(Math.abs(hubScore(v, bank, 1) - 0.7) < 1e-6);
  assert.ok(Math.abs(hubScore(v, bank, 2) - 0.6) < 1e-6);
  assert.ok(Math.abs(hubScore(v, bank, 3) - (0.7 + 0.5 + 0.5) / 3) < 1e-6);
  assert.ok(Math.abs(hubScore(v, bank, 10) - hubScore(v, bank, 3)) < 1e-12, "top_k past the bank: all rows");
});

test("the settings come from the manifest; HUBNESS_BETA overrides, 0 turns it off", () => {
  const tuned = parseManifest({ ...validManifest, search: TUNED });
  const plain = parseManifest(validManifest);
  assert.deepEqual(resolveHubness(tuned, null), { beta: 0.4, topK: 10 });
  assert.deepEqual(resolveHubness(tuned, 0.2), { beta: 0.2, topK: 10 });
  assert.equal(resolveHubness(tuned, 0), null);
  assert.equal(resolveHubness(plain, null), null, "a bundle without tuned settings is ranked without the correction");
  assert.deepEqual(resolveHubness(plain, 0.3), { beta: 0.3, topK: 10 });
  assert.equal(loadConfig({}).hubnessBeta, null);
  assert.equal(loadConfig({ HUBNESS_BETA: "auto" }).hubnessBeta, null);
  assert.equal(loadConfig({ HUBNESS_BETA: "0.25" }).hubnessBeta, 0.25);
  for (const bad of ["-0.1", "x", "11"]) assert.throws(() => loadConfig({ HUBNESS_BETA: bad }), /HUBNESS_BETA/);
});

test("a malformed search.hubness makes the bundle invalid, naming the field", () => {
  const bad: Array<[unknown, string]> = [
    [[], "search"],
    [{ hubness: 1 }, "search.hubness"],
    [{ hubness: { ...TUNED.hubness, bank: "imagenet" } }, "search.hubness.bank"],
    [{ hubness: { ...TUNED.hubness, beta: -1 } }, "search.hubness.beta"],
    [{ hubness: { ...TUNED.hubness, top_k: 0 } }, "search.hubness.top_k"],
  ];
  for (const [search, field] of bad) {
    assert.throws(() => parseManifest({ ...validManifest, search }),
      (err: unknown) => err instanceof BundleError && err.code === "invalid_manifest" && err.message.includes(`"${field}"`));
  }
});

test("the committed default model carries the tuned correction", async () => {
  const manifest: BundleManifest = parseManifest(JSON.parse(await readFile(path.join(DEFAULT_MODEL, "manifest.json"), "utf8")));
  assert.deepEqual(resolveHubness(manifest, null), { beta: 0.4, topK: 10 });
});

test("h(v) is cached by id and vector, the bank embedded once", async () => {
  const calls: string[][] = [];
  const correction = new HubnessCorrection(fakeEmbedder(TUNED, calls), { beta: 0.5, topK: 10 }, 16);
  assert.deepEqual(await correction.penalties([{ id: "a", vector: A }, { id: "b", vector: B }]), [0.5 * A[0]!, 0]);
  await correction.penalties([{ id: "a", vector: A }]);
  assert.equal(correction.hits, 1);
  assert.equal(correction.misses, 2);
  const changed = unit([0.3, 0.9, 0.1, 0]);
  const [penalty] = await correction.penalties([{ id: "a", vector: changed }]);
  assert.ok(Math.abs(penalty! - 0.5 * changed[0]!) < 1e-7, "an upsert's new vector is not answered from the old one's entry");
  assert.equal(correction.misses, 3);
  await correction.penalties([{ id: "x", vector: A }], { cache: false });
  assert.equal(correction.hits + correction.misses, 4, "uncached lookups are not counted");
  assert.equal(calls.length, 1, "one bank embedding for all lookups");
});

test("count-aware search ranks by cos - beta * h(v) and reports the cosine as similarity", async () => {
  const request = { query: "three cats", k: 2, countAware: true };
  const off = await search(serving(undefined), request, limits);
  assert.deepEqual(off.hits.map((h) => h.id), ["A", "B"], "without the correction the hub wins on cosine");
  const on = await search(serving(TUNED), request, limits);
  assert.deepEqual(on.hits.map((h) => h.id), ["B", "A"], "with it the hub's advantage is gone");
  const [b, a] = on.hits;
  assert.ok(Math.abs(a!.similarity - 0.6) < 1e-6 && Math.abs(b!.similarity - 0.55) < 1e-6);
  // The documented formula, recomputed here: m = cos - 0.4 * h, best = max m, flat posterior.
  const prompts = Array.from({ length: 10 }, () => e(3));
  const m = { A: 0.6 - 0.4 * A[0]!, B: 0.55 };
  const best = Math.max(m.A, m.B);
  for (const [hit, vector, match] of [[a!, A, m.A], [b!, B, m.B]] as const) {
    const expected = countAwareScore(match, best, countPosterior(vector, prompts, 100), 3, 100, 1);
    assert.ok(Math.abs(hit.score - expected) < 1e-6, `${hit.id}: ${hit.score} vs ${expected}`);
  }
  const overridden = await search(serving(TUNED, 0), request, limits);
  assert.deepEqual(overridden.hits.map((h) => h.id), ["A", "B"], "HUBNESS_BETA=0 turns it off");
  const plain = await search(serving(TUNED), { ...request, countAware: false }, limits);
  assert.deepEqual(plain.hits.map((h) => [h.id, h.score]), plain.hits.map((h) => [h.id, h.similarity]), "plain search: score = cosine");
  const noCount = await search(serving(TUNED), { query: "cats", k: 2, countAware: true }, limits);
  assert.deepEqual(noCount.hits.map((h) => h.id), ["A", "B"], "no stated count: ranked by cosine");
});

test("rerank applies the same correction", async () => {
  const images = [{ id: "A", vector: A }, { id: "B", vector: B }];
  assert.deepEqual((await rerank(serving(undefined), "three cats", images, 1)).results.map((r) => r.id), ["A", "B"]);
  const corrected = await rerank(serving(TUNED), "three cats", images, 1);
  assert.deepEqual(corrected.results.map((r) => r.id), ["B", "A"]);
  assert.ok(Math.abs(corrected.results[1]!.similarity - 0.6) < 1e-6);
});
