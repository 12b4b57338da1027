/**
 * Every class of bad input gets an RFC 7807 problem with a 4xx status, never a 5xx, and the
 * index is unchanged afterwards.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import request from "supertest";
import { testBundle } from "./helpers/bundle.ts";
import { animatedGif, bombPng, dotsImage, removeTempDirs, startTestService, type TestService, truncatedJpeg } from "./helpers/service-app.ts";

let svc: TestService;
before(async () => {
  svc = await startTestService(await testBundle(), { MAX_K: "50", MAX_RERANK_IMAGES: "4" });
});
after(async () => {
  await svc?.close();
  await removeTempDirs();
});

function isProblem(res: request.Response, status: number): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text.slice(0, 300)}`);
  assert.match(res.headers["content-type"]!, /^application\/problem\+json/);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  assert.equal(body["status"], status);
  assert.equal(typeof body["title"], "string");
  assert.match(String(body["type"]), /^https:\/\/countclip\.dev\/problems\//);
}

const post = (url: string) => request(svc.app).post(url);

test("malformed JSON", async () => {
  isProblem(await post("/v1/search").set("Content-Type", "application/json").send('{"query": "three cats",'), 400);
  isProblem(await post("/v1/search").set("Content-Type", "application/json").send("[1, 2]"), 400);
  isProblem(await post("/v1/search").set("Content-Type", "application/json").send('"just a string"'), 400);
});

test("not JSON at all", async () => {
  isProblem(await post("/v1/search").set("Content-Type", "text/plain").send("three cats"), 415);
  isProblem(await post("/v1/search"), 400);
});

test("wrong types", async () => {
  for (const body of [{ query: 3 }, { query: "cats", k: "10" }, { query: "cats", k: 2.5 }, { query: "cats", countAware: "yes" }, { query: ["cats"] }]) {
    const res = await post("/v1/search").send(body);
    isProblem(res, 400);
    assert.ok(Array.isArray(res.body.errors) && res.body.errors.length > 0);
  }
  isProblem(await post("/v1/count").send({ image: 12, noun: "cats" }), 400);
  isProblem(await post("/v1/rerank").send({ prompt: "two cats", images: "nope" }), 400);
});

test("unknown fields", async () => {
  const res = await post("/v1/search").send({ query: "three cats", limit: 5 });
  isProblem(res, 400);
  assert.match(JSON.stringify(res.body.errors), /limit/);
  isProblem(await post("/v1/rerank").send({ prompt: "x", images: [{ id: "a", data: "aGk=", extra: 1 }] }), 400);
  isProblem(await post("/v1/index/rebuild").send({ modelDir: "/x", force: true }), 400);
});

test("empty, blank and 10 KB queries", async () => {
  isProblem(await post("/v1/search").send({ query: "" }), 400);
  isProblem(await post("/v1/search").send({ query: "   \n\t" }), 400);
  isProblem(await post("/v1/search").send({ query: "three cats ".repeat(1000) }), 400);
  isProblem(await post("/v1/search").send({}), 400);
  isProblem(await post("/v1/count").send({ image: "aGk=", noun: "" }), 400);
});

test("k and other numbers out of range", async () => {
  for (const k of [0, -1, 1001, 51]) isProblem(await post("/v1/search").send({ query: "cats", k }), 400);
  isProblem(await post("/v1/search").send({ query: "cats", candidates: 0 }), 400);
  isProblem(await post("/v1/search").send({ query: "cats", countWeight: -1 }), 400);
  const five = await Promise.all([1, 2, 3, 4, 5].map(async (n) => ({ id: `i${n}`, data: (await dotsImage(n)).toString("base64") })));
  isProblem(await post("/v1/rerank").send({ prompt: "two cats", images: five }), 400);
  isProblem(await post("/v1/rerank").send({ prompt: "two cats", images: [] }), 400);
  isProblem(await post("/v1/rerank").send({ prompt: "two cats", images: [five[0], five[0]] }), 422);
});

test("bad image bytes on every image-taking endpoint", async () => {
  const cases: Array<[string, Buffer, number[]]> = [
    ["non-image bytes", Buffer.from("this is not an image, just text"), [422]],
    ["truncated JPEG", await truncatedJpeg(), [422]],
    ["decompression bomb", bombPng(), [422]],
    ["animated GIF", await animatedGif(), [422]],
  ];
  for (const [what, bytes, statuses] of cases) {
    const data = bytes.toString("base64");
    const responses = [
      await post("/v1/count").send({ image: data, noun: "cats" }),
      await post("/v1/rerank").send({ prompt: "two cats", images: [{ id: "good", data: (await dotsImage(2)).toString("base64") }, { id: "bad", data }] }),
      await post("/v1/images").send({ id: "bad", data }),
    ];
    for (const res of responses) {
      assert.ok(statuses.includes(res.status), `${what}: ${res.status} ${res.text.slice(0, 200)}`);
      isProblem(res, res.status);
    }
    assert.match(responses[1]!.body.detail, /image bad/, `${what}: rerank names the bad image`);
  }
  isProblem(await post("/v1/count").send({ image: "!!!not base64!!!", noun: "cats" }), 400);
  assert.equal((await request(svc.app).get("/v1/index")).body.size, 0);
});

test("oversized bodies", async () => {
  const huge = Buffer.alloc(3 * 1024 * 1024, 7).toString("base64");
  isProblem(await post("/v1/count").send({ image: huge, noun: "cats" }), 413);
  isProblem(await post("/v1/images").send({ data: huge }), 413);
});

test("bad ids and paths", async () => {
  isProblem(await request(svc.app).get("/v1/images/%2e%2e%2fetc"), 400);
  isProblem(await request(svc.app).get(`/v1/images/${"a".repeat(200)}`), 400);
  isProblem(await request(svc.app).get("/v1/images/unknown"), 404);
  isProblem(await post("/v1/images").send({ id: "../x", data: "aGk=" }), 400);
  isProblem(await post("/v1/images").send({ id: "x", data: "aGk=", path: "a.png" }), 400);
  isProblem(await post("/v1/images").send({ id: "x", path: "/etc/passwd" }), 403);
  isProblem(await post("/v1/index/rebuild").send({ modelDir: "/etc" }), 403);
});
