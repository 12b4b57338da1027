/**
 * Back-pressure end to end: over the real service and bundle, with a text encoder slowed to
 * one second a run, a search that would wait past MAX_QUEUE_WAIT_MS (1.5 s) is answered 503 at once
 * (problem type `overloaded`, Retry-After), while the ones within budget are served; /metrics
 * reports the refusal and the count-prompt cache's hit ratio.
 */
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import request from "supertest";
import { createApp } from "../server/http/app.ts";
import { loadConfig } from "../server/services/config.ts";
import type { Embedder, EmbedderOptions } from "../server/model/types.ts";
import { loadEmbedder } from "../server/model/embedder.ts";
import { IndexService } from "../server/services/index-service.ts";
import { bundleUnavailableReason, testBundle } from "./helpers/bundle.ts";
import { removeTempDirs, tempDir } from "./helpers/service-app.ts";

const RUN_MS = 1000;
let slow = false;

/** The real embedder, its text runs made slow on demand (so queueing is deterministic). */
async function slowTextEmbedder(dir: string, options?: EmbedderOptions): Promise<Embedder> {
  const real = await loadEmbedder(dir, options);
  const embedTexts = real.embedTexts.bind(real);
  return Object.assign(Object.create(real) as Embedder, {
    async embedTexts(texts: string[]) {
      if (slow) await new Promise((r) => setTimeout(r, RUN_MS));
      return embedTexts(texts);
    },
    close: () => real.close(),
  });
}

describe("back-pressure", { skip: bundleUnavailableReason() ?? false }, () => {
  let service: IndexService;
  let app: ReturnType<typeof createApp>;

  before(async () => {
    const dir = await testBundle();
    const dataDir = await tempDir("bp");
    const config = loadConfig({
      MODEL_DIR: dir, MODEL_ROOTS: [path.dirname(dir), os.tmpdir()].join(path.delimiter), DATA_DIR: dataDir,
      GALLERY_DIR: path.join(dataDir, "no-gallery"), TEXT_BATCH_MAX: "1", MAX_QUEUE_WAIT_MS: String(1.5 * RUN_MS),
    });
    service = new IndexService(config, slowTextEmbedder);
    await service.start();
    app = createApp({ config, service, defaultMetrics: false });
  });
  after(async () => {
    await service?.close();
    await removeTempDirs();
  });

  /** Resolves once the batcher's wait estimate for a newcomer exceeds `ms` (the queue has filled). */
  async function waitEstimateAbove(ms: number): Promise<void> {
    while (service.acquireUnleased().queryWaitMs <= ms) await new Promise((r) => setTimeout(r, 5));
  }

  test("a search past the wait budget is refused at once with 503, overloaded, Retry-After", async (t) => {
    slow = true;
    t.after(() => {
      slow = false;
    });
    const search = (query: string) => request(app).post("/v1/search").send({ query, k: 1 }).then((r) => r);
    // Teach the batcher how long a run takes (a unique text: the embedder caches texts).
    assert.equal((await search("learn the run time")).status, 200);
    const first = search("first in line"); // runs at once (idle)
    await waitEstimateAbove(RUN_MS * 0.5); // first in flight: a newcomer would wait the rest of it, ~1 s
    const second = search("second in line"); // ~1 s <= 1.5 s: queued
    await waitEstimateAbove(RUN_MS * 1.6); // a newcomer would wait the rest of first and second's run: ~2 s
    const started = performance.now();
    const refused = await search("third in line");
    const refusedMs = performance.now() - started;
    const served = [(await first).status, (await second).status]; // drained before anything can fail
    assert.ok(refusedMs < RUN_MS / 2, `refused without queueing (${refusedMs} ms)`);
    assert.equal(refused.status, 503);
    // Its wait was over 1.6 s: come back in 2 s or a little more (run times vary with load).
    const retryAfter = Number(refused.headers["retry-after"]);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 2 && retryAfter <= 10, String(retryAfter));
    assert.match(refused.headers["content-type"] ?? "", /application\/problem\+json/);
    assert.equal(refused.body.type, "https://countclip.dev/problems/overloaded");
    assert.match(refused.body.detail, /MAX_QUEUE_WAIT_MS/);
    assert.deepEqual(served, [200, 200]);
    slow = false;
    const metrics = (await request(app).get("/metrics").expect(200)).text;
    assert.match(metrics, /^countclip_queries_refused 1$/m);
    assert.match(metrics, /countclip_http_requests_total\{method="POST",route="\/v1\/search",status="503"\} 1/);
    assert.match(metrics, /^countclip_model_precision\{tower="text",precision="fp32"\} 1$/m);
  });

  test("count-aware searches of one noun hit the count-prompt cache, and /metrics says how often", async () => {
    for (const query of ["three cats", "five cats", "two cats on a sofa"]) {
      await request(app).post("/v1/search").send({ query, k: 1, countAware: true }).expect(200);
    }
    const metrics = (await request(app).get("/metrics").expect(200)).text;
    const ratio = Number(/^countclip_count_prompt_cache_hit_ratio (\S+)$/m.exec(metrics)?.[1]);
    const hits = Number(/^countclip_count_prompt_cache_hits (\S+)$/m.exec(metrics)?.[1]);
    const misses = Number(/^countclip_count_prompt_cache_misses (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(hits >= 2 && misses >= 1, `${hits} hits, ${misses} misses`);
    assert.equal(ratio, hits / (hits + misses));
  });
});
