/**
 * Relevancy maps (POST /v1/explain) and image bytes (GET /v1/images/{id}/content) against the
 * real app and a real exported (random, tiny) bundle: the occlusion arithmetic, the map's
 * agreement with the count posterior, PNG output, and bad input as 4xx problems.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import sharp from "sharp";
import request from "supertest";
import { cellWeights, countContrast, windowPositions } from "../server/services/explain/occlusion.ts";
import { testBundle } from "./helpers/bundle.ts";
import { dotsImage, makeGallery, removeTempDirs, startTestService, type TestService } from "./helpers/service-app.ts";

let svc: TestService;
before(async () => {
  svc = await startTestService(await testBundle(), { GALLERY_DIR: await makeGallery(6) });
});
after(async () => {
  await svc?.close();
  await removeTempDirs();
});

const explain = (body: object) => request(svc.app).post("/v1/explain").send(body);

test("occlusion: window positions, per-cell means and the count contrast", () => {
  assert.equal(windowPositions({ grid: 8, window: 2 }).length, 49);
  assert.deepEqual(windowPositions({ grid: 3, window: 3 }), [{ row: 0, col: 0 }]);
  // grid 3, window 2: four windows; the centre cell is under all four, a corner under one.
  const w = cellWeights({ grid: 3, window: 2 }, [1, 2, 3, 4]);
  assert.deepEqual(w[0], [1, 1.5, 2]);
  assert.equal(w[1]![1], 2.5);
  assert.equal(w[2]![2], 4);
  // Contrast = ln P(c) - ln(1 - P(c)) under the softmax of s * cos.
  const prompts = [new Float32Array([1, 0]), new Float32Array([0, 1]), new Float32Array([0.6, 0.8])];
  const image = new Float32Array([0.8, 0.6]);
  const logits = prompts.map((t) => 10 * (image[0]! * t[0]! + image[1]! * t[1]!));
  const p = logits.map((l) => Math.exp(l)).map((e, _, all) => e / all.reduce((a, b) => a + b, 0));
  assert.ok(Math.abs(countContrast(image, prompts, 10, 3) - Math.log(p[2]! / (1 - p[2]!))) < 1e-9);
});

test("explain an indexed image: a grid of weights that agrees with the count posterior", async () => {
  const res = await explain({ id: "g2", query: "three dots" }).expect(200);
  const map = res.body;
  assert.equal(map.method, "occlusion");
  assert.equal(map.count, 3);
  assert.equal(map.noun, "dots");
  assert.equal(map.grid, 8);
  assert.equal(map.passes, 50);
  assert.equal(map.weights.length, 8);
  for (const row of map.weights) assert.equal(row.length, 8);
  assert.equal(map.maxAbs, Math.max(...map.weights.flat().map(Math.abs)));
  assert.deepEqual(map.image, { width: 48, height: 48 });
  // The whole-image figures are the count endpoint's, for the same bytes and noun.
  const bytes = (await request(svc.app).get("/v1/images/g2/content").expect(200)).body as Buffer;
  const count = (await request(svc.app).post("/v1/count").send({ image: bytes.toString("base64"), noun: "dots" }).expect(200)).body;
  const p = count.distribution[2].probability as number;
  assert.ok(Math.abs(map.probability - p) < 1e-5, `${map.probability} vs ${p}`);
  assert.ok(Math.abs(map.contrast - Math.log(p / (1 - p))) < 1e-3, `${map.contrast} vs log-odds ${Math.log(p / (1 - p))}`);
});

test("one window over everything: its weight is the drop to a blank image of the mean colour", async () => {
  const image = await dotsImage(4, 64);
  const map = (await explain({ image: image.toString("base64"), noun: "dots", count: 4, grid: 2, window: 2 }).expect(200)).body;
  assert.equal(map.passes, 2);
  const mean = [0.48145466, 0.4578275, 0.40821073].map((m) => Math.round(m * 255));
  const blank = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: mean[0]!, g: mean[1]!, b: mean[2]! } } }).png().toBuffer();
  const { serving, release } = svc.service.acquire();
  try {
    const [v] = await serving.embedder.embedImages([blank]);
    const prompts = await serving.countPrompts.get({ singular: "dot", plural: "dots" });
    const expected = map.contrast - countContrast(v!, prompts, serving.embedder.logitScale, 4);
    for (const w of map.weights.flat()) assert.ok(Math.abs(w - expected) < 1e-3, `${w} vs ${expected}`);
  } finally {
    release();
  }
});

test("the count defaults to the image's estimate; the noun to 'objects'", async () => {
  const map = (await explain({ id: "g1", grid: 4 }).expect(200)).body;
  assert.equal(map.count, map.estimatedCount);
  assert.match(map.noun, /^objects?$/);
  assert.equal(map.passes, 10);
});

test("format png: the map over the model's view, at least 256 px", async () => {
  const wide = await sharp({ create: { width: 120, height: 60, channels: 3, background: "#8a8" } }).png().toBuffer();
  const res = await explain({ image: wide.toString("base64"), query: "two dots", format: "png" }).expect(200);
  assert.match(res.headers["content-type"]!, /^image\/png/);
  const meta = await sharp(res.body as Buffer).metadata();
  assert.equal(meta.format, "png");
  assert.equal(meta.width, meta.height);
  assert.ok(meta.width! >= 256);
  const json = (await explain({ image: wide.toString("base64"), query: "two dots" }).expect(200)).body;
  assert.deepEqual(json.image, { width: 120, height: 60 });
  assert.equal(json.crop.height, 60);
  assert.equal(json.crop.x, 30, "the centre square of a wide image");
});

test("bad explain requests are 4xx problems", async () => {
  const problem = async (body: object, status: number) => {
    const res = await explain(body);
    assert.equal(res.status, status, res.text);
    assert.match(res.headers["content-type"]!, /^application\/problem\+json/);
  };
  await problem({ id: "g1", grid: 4, window: 5 }, 422);
  await problem({ id: "g1", image: (await dotsImage(2)).toString("base64") }, 400);
  await problem({ query: "three dots" }, 400);
  await problem({ id: "g1", grid: 17 }, 400);
  await problem({ id: "g1", count: 11 }, 400);
  await problem({ id: "no-such-image" }, 404);
  await problem({ image: Buffer.from("not an image at all").toString("base64") }, 422);
});

test("image content: the stored bytes, with an ETag and caching", async () => {
  const res = await request(svc.app).get("/v1/images/g3/content").expect(200);
  assert.equal(res.headers["content-type"], "image/png");
  assert.equal(res.headers["cache-control"], "public, max-age=3600");
  const meta = (await request(svc.app).get("/v1/images/g3").expect(200)).body;
  assert.equal(res.headers["etag"], `"${meta.sha256}"`);
  await request(svc.app).get("/v1/images/g3/content").set("If-None-Match", res.headers["etag"]!).expect(304);
  await request(svc.app).get("/v1/images/nope/content").expect(404);
  await request(svc.app).get("/v1/images/..%2Fx/content").expect(400);
  await request(svc.app).post("/v1/images/g3/content").expect(405);
});
