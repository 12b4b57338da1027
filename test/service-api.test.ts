/**
 * Every endpoint against the real app, a real exported (random, tiny) bundle and a generated
 * gallery: happy paths, the contract of each response, auth and the index lifecycle.
 */
import assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import request from "supertest";
import { testBundle } from "./helpers/bundle.ts";
import { dotsImage, makeGallery, removeTempDirs, startTestService, tempDir, type TestService } from "./helpers/service-app.ts";

const KEY = "s3cret-key";
let svc: TestService;
let outside: string;
let gallery: string;

before(async () => {
  gallery = await makeGallery(12);
  outside = await tempDir("outside");
  await writeFile(path.join(outside, "secret.png"), await dotsImage(3));
  await symlink(path.join(outside, "secret.png"), path.join(gallery, "images", "link.png"));
  await mkdir(path.join(gallery, "sub"));
  await writeFile(path.join(gallery, "sub", "ok.png"), await dotsImage(4));
  svc = await startTestService(await testBundle(), { GALLERY_DIR: gallery, API_KEY: KEY });
});
after(async () => {
  await svc?.close();
  await removeTempDirs();
});

const auth = { Authorization: `Bearer ${KEY}` };

test("first start indexes the default gallery, skipping bad lines", async () => {
  const res = await request(svc.app).get("/v1/index").expect(200);
  assert.equal(res.body.size, 12);
  assert.equal(res.body.ready, true);
  assert.equal(res.body.indexBuild, 1);
  assert.equal(res.body.rebuild.state, "idle");
  assert.match(res.body.modelId, /@/);
});

test("healthz, readyz and metrics", async () => {
  assert.equal((await request(svc.app).get("/healthz").expect(200)).body.status, "ok");
  const ready = await request(svc.app).get("/readyz").expect(200);
  assert.equal(ready.body.status, "ready");
  await request(svc.app).post("/v1/search").send({ query: "three dots" }).expect(200);
  const metrics = await request(svc.app).get("/metrics").expect(200);
  assert.match(metrics.headers["content-type"]!, /text\/plain/);
  assert.match(metrics.text, /countclip_index_size 12/);
  assert.match(metrics.text, /countclip_http_requests_total\{method="POST",route="\/v1\/search",status="200"\} \d+/);
  assert.match(metrics.text, /countclip_count_prompt_cache_misses [1-9]/);
});

test("model manifest", async () => {
  const res = await request(svc.app).get("/v1/model").expect(200);
  assert.equal(res.body.manifest.format, "countclip-bundle");
  assert.equal(res.body.dim, res.body.manifest.embed_dim);
  assert.equal(res.body.logitScale, res.body.manifest.logit_scale);
  assert.ok(res.body.manifest.metrics);
});

test("search: plain vs count-aware, with count annotations", async () => {
  const plain = await request(svc.app).post("/v1/search").send({ query: "a photo of three dots", k: 5, countAware: false }).expect(200);
  assert.equal(plain.body.countAware, false);
  assert.deepEqual(plain.body.query, { count: 3, noun: "dots" });
  assert.equal(plain.body.hits.length, 5);
  for (const hit of plain.body.hits) {
    assert.equal(hit.score, hit.similarity);
    assert.ok(hit.estimatedCount >= 1 && hit.estimatedCount <= 10);
    assert.ok(hit.queryCountProbability >= 0 && hit.queryCountProbability <= 1);
  }
  const sims = plain.body.hits.map((h: { similarity: number }) => h.similarity);
  assert.deepEqual(sims, [...sims].sort((a, b) => b - a));

  const aware = await request(svc.app).post("/v1/search").send({ query: "a photo of three dots", k: 5 }).expect(200);
  assert.equal(aware.body.countAware, true);
  const scores = aware.body.hits.map((h: { score: number }) => h.score);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  const scale = (await request(svc.app).get("/v1/model")).body.logitScale as number;
  // The best candidate's similarity is plain search's first (a small index: the search is exact).
  const best = plain.body.hits[0].similarity as number;
  for (const hit of aware.body.hits) {
    // The documented formula, recomputed from the fields of the response.
    const gate = Math.exp(0.5 * scale * Math.min(0, hit.similarity - best));
    const expected = hit.similarity + Math.log(Math.max(gate * hit.queryCountProbability + (1 - gate) / 10, 1e-12)) / scale;
    assert.ok(Math.abs(hit.score - expected) < 1e-6, `${hit.score} vs ${expected}`);
  }
  assert.equal(aware.body.modelId, plain.body.modelId);
  assert.equal(aware.body.indexBuild, 1);
});

test("search without a count is plain similarity and has no count fields", async () => {
  const res = await request(svc.app).post("/v1/search").send({ query: "red dots on grey", k: 3 }).expect(200);
  assert.equal(res.body.countAware, false);
  assert.deepEqual(res.body.query, { count: null, noun: null });
  for (const hit of res.body.hits) assert.equal(hit.estimatedCount, undefined);
});

test("rerank orders images and reports counts", async () => {
  const images = await Promise.all([1, 5, 9].map(async (n) => ({ id: `dots-${n}`, data: (await dotsImage(n, 96)).toString("base64") })));
  const res = await request(svc.app).post("/v1/rerank").send({ prompt: "five red balloons", images }).expect(200);
  assert.deepEqual(res.body.prompt, { count: 5, noun: "balloons" });
  assert.equal(res.body.results.length, 3);
  assert.deepEqual(new Set(res.body.results.map((r: { id: string }) => r.id)), new Set(images.map((i) => i.id)));
  for (const r of res.body.results) {
    assert.equal(r.expectedCount, 5);
    assert.ok(r.meanCount >= 1 && r.meanCount <= 10);
    assert.ok(r.probability >= r.expectedCountProbability - 1e-12);
  }
  const scores = res.body.results.map((r: { score: number }) => r.score);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
});

test("count returns a distribution over 1..10", async () => {
  const res = await request(svc.app).post("/v1/count").send({ image: (await dotsImage(4)).toString("base64"), noun: "dots" }).expect(200);
  assert.deepEqual(res.body.distribution.map((d: { count: number }) => d.count), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const total = res.body.distribution.reduce((s: number, d: { probability: number }) => s + d.probability, 0);
  assert.ok(Math.abs(total - 1) < 1e-6);
  const best = res.body.distribution.reduce((a: { probability: number }, b: { probability: number }) => (b.probability > a.probability ? b : a));
  assert.equal(res.body.estimatedCount, best.count);
});

test("images: add (upload), get, search finds it, delete", async () => {
  const data = (await dotsImage(7, 80, "#0a0")).toString("base64");
  await request(svc.app).post("/v1/images").send({ id: "green-7", data }).expect(401);
  await request(svc.app).post("/v1/images").set("X-API-Key", "wrong").send({ id: "green-7", data }).expect(401);
  const added = await request(svc.app).post("/v1/images").set(auth).send({ id: "green-7", data }).expect(201);
  assert.equal(added.body.source, "upload");
  assert.equal(added.headers["location"], "/v1/images/green-7");
  await request(svc.app).post("/v1/images").set("X-API-Key", KEY).send({ id: "green-7", data }).expect(409);
  const got = await request(svc.app).get("/v1/images/green-7").expect(200);
  assert.equal(got.body.sha256, added.body.sha256);
  assert.equal((await request(svc.app).get("/v1/index")).body.size, 13);
  const found = await request(svc.app).post("/v1/search").send({ query: "seven green dots", k: 13 }).expect(200);
  assert.ok(found.body.hits.some((h: { id: string }) => h.id === "green-7"));
  await request(svc.app).delete("/v1/images/green-7").expect(401);
  await request(svc.app).delete("/v1/images/green-7").set(auth).expect(204);
  await request(svc.app).get("/v1/images/green-7").expect(404);
  await request(svc.app).delete("/v1/images/green-7").set(auth).expect(404);
  assert.equal((await request(svc.app).get("/v1/index")).body.size, 12);
});

test("images without an id are named by content", async () => {
  const data = (await dotsImage(2, 40, "#a0a")).toString("base64");
  const first = await request(svc.app).post("/v1/images").set(auth).send({ data }).expect(201);
  assert.match(first.body.id, /^img-[0-9a-f]{16}$/);
  await request(svc.app).post("/v1/images").set(auth).send({ data }).expect(409);
  await request(svc.app).delete(`/v1/images/${first.body.id}`).set(auth).expect(204);
});

test("server-local paths: inside a root ok; traversal, symlink escape and absent files refused", async () => {
  const ok = await request(svc.app).post("/v1/images").set(auth).send({ id: "local-ok", path: "sub/ok.png" }).expect(201);
  // Relative to the image root: responses never show the server's absolute paths.
  assert.equal(ok.body.source, "path:sub/ok.png");
  await request(svc.app).post("/v1/images").set(auth).send({ id: "abs-ok", path: path.join(gallery, "images", "g1.png") }).expect(201);
  for (const p of ["../../../../etc/passwd", "/etc/passwd", "images/link.png", path.join(outside, "secret.png"), "images/../../x.png"]) {
    const res = await request(svc.app).post("/v1/images").set(auth).send({ id: "bad", path: p }).expect(403);
    assert.equal(res.headers["content-type"], "application/problem+json; charset=utf-8");
  }
  await request(svc.app).post("/v1/images").set(auth).send({ id: "missing", path: "images/nope.png" }).expect(404);
  await request(svc.app).post("/v1/images").set(auth).send({ id: "dir", path: "sub" }).expect(403);
  await request(svc.app).delete("/v1/images/local-ok").set(auth).expect(204);
  await request(svc.app).delete("/v1/images/abs-ok").set(auth).expect(204);
});

test("rebuild requires the key, confines modelDir and reports progress", async () => {
  await request(svc.app).post("/v1/index/rebuild").send({}).expect(401);
  await request(svc.app).post("/v1/index/rebuild").set(auth).send({ modelDir: "/etc" }).expect(403);
  const started = await request(svc.app).post("/v1/index/rebuild").set(auth).expect(202);
  assert.equal(started.body.rebuild.state, "running");
  await request(svc.app).post("/v1/index/rebuild").set(auth).send({}).expect(409);
  let status;
  for (let i = 0; i < 200; i++) {
    status = (await request(svc.app).get("/v1/index")).body;
    if (status.rebuild.state !== "running") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(status.rebuild.state, "succeeded");
  assert.equal(status.rebuild.progress, 1);
  assert.equal(status.indexBuild, 2);
  assert.equal(status.size, 12);
});

test("unknown routes and methods are problems", async () => {
  const res = await request(svc.app).get("/v2/nothing").expect(404);
  assert.equal(res.body.status, 404);
  assert.match(res.headers["content-type"]!, /application\/problem\+json/);
  const wrong = await request(svc.app).get("/v1/search").expect(405);
  assert.equal(wrong.headers["allow"], "POST");
});
