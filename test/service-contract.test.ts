/**
 * Issue 22, "the service's contract, kept exactly": statuses and problem types as the spec
 * says, safe defaults for open mutations, persisted rebuild jobs, slow clients shed while
 * searches answer, paths relative to the roots, and the newcomer's first requests (README
 * example, search notes, "a cat", the gallery listing, the 413's limit).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import request from "supertest";
import { parse as parseYaml } from "yaml";
import { exposureWarnings } from "../server/http/auth.ts";
import { loadConfig } from "../server/services/config.ts";
import { createGuardedServer } from "../server/http/connections.ts";
import { REPO_ROOT } from "./helpers/bundle.ts";
import { DEFAULT_MODEL, smallDefaultGallery } from "./helpers/default-gallery.ts";
import { animatedGif, apng, pngBomb } from "./helpers/images.ts";
import { removeTempDirs, startTestService, tempDir, type TestService } from "./helpers/service-app.ts";

const KEY = "contract-key";
const auth = { Authorization: `Bearer ${KEY}` };
let svc: TestService;
let gallery: string;
let dataDir: string;

before(async () => {
  gallery = await smallDefaultGallery(12);
  dataDir = await tempDir("contract-data");
  svc = await startTestService(DEFAULT_MODEL, { GALLERY_DIR: gallery, IMAGE_ROOTS: gallery, API_KEY: KEY, DATA_DIR: dataDir });
});
after(async () => {
  await svc?.close();
  await removeTempDirs();
});

/** The test gallery's entries, as gallery.jsonl lists them. */
function entries(): Array<{ id: string; file: string; kind: string; count: number }> {
  return readFileSync(path.join(gallery, "gallery.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

const spec = parseYaml(readFileSync(path.join(REPO_ROOT, "openapi.yaml"), "utf8"));
const b64 = (bytes: Buffer) => bytes.toString("base64");

describe("open mutations", () => {
  test("loopback without a key starts with a warning; with a key, silently", () => {
    const warnings = exposureWarnings({ host: "127.0.0.1", apiKey: undefined, allowUnauthenticated: false });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /WARNING: no API_KEY/);
    assert.deepEqual(exposureWarnings({ host: "0.0.0.0", apiKey: "k", allowUnauthenticated: false }), []);
  });

  test("a non-loopback HOST without a key is refused unless ALLOW_UNAUTHENTICATED=1, loudly", () => {
    for (const host of ["0.0.0.0", "::", "192.168.1.5", "example.org"]) {
      assert.throws(() => exposureWarnings({ host, apiKey: undefined, allowUnauthenticated: false }), /refusing to listen.*ALLOW_UNAUTHENTICATED=1/);
    }
    const loud = exposureWarnings(loadConfig({ HOST: "0.0.0.0", ALLOW_UNAUTHENTICATED: "1" }));
    assert.ok(loud.some((l) => /ALLOW_UNAUTHENTICATED=1 on HOST=0.0.0.0/.test(l)) && loud.length >= 3);
  });

  test("server/main.ts exits at once on HOST=0.0.0.0 without API_KEY", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "server/main.ts")], {
      env: { ...process.env, HOST: "0.0.0.0", PORT: "0", API_KEY: "", ALLOW_UNAUTHENTICATED: "", DATA_DIR: await tempDir("refused") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    child.stdout.on("data", (d: Buffer) => (log += d.toString()));
    child.stderr.on("data", (d: Buffer) => (log += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    assert.equal(code, 1, log);
    assert.match(log, /refusing to listen on non-loopback HOST=0\.0\.0\.0 without API_KEY/);
    assert.doesNotMatch(log, /listening on/);
  });
});

describe("statuses and problem types", () => {
  const seen = new Map<string, Set<string>>();
  function problem(res: request.Response, status: number, type: string): Record<string, any> {
    assert.equal(res.status, status, res.text.slice(0, 300));
    assert.match(res.headers["content-type"]!, /^application\/problem\+json/);
    const body = JSON.parse(res.text);
    assert.equal(body.type, `https://countclip.dev/problems/${type}`, res.text);
    (seen.get(body.type) ?? seen.set(body.type, new Set()).get(body.type)!).add(body.title);
    return body;
  }
  const count = (image: string) => request(svc.app).post("/v1/count").send({ noun: "cats", image });

  test("image errors: 422 with a type of their own, 413 for size limits; never 415", async () => {
    problem(await count(b64(Buffer.from("plain text, not an image"))), 422, "not-an-image");
    problem(await count(b64(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'))), 422, "unsupported-image-format");
    problem(await count(b64(pngBomb(20_000, 20_000))), 422, "too-many-pixels");
    problem(await count(b64(await animatedGif())), 422, "animated-image");
    const detail = problem(await count(b64(await apng(5))), 422, "animated-image").detail;
    assert.match(detail, /5 frames/);
    assert.doesNotMatch(detail, /image image/);
    const big = await startTestService(DEFAULT_MODEL, { GALLERY_DIR: gallery, MAX_IMAGE_BYTES: "1000" });
    try {
      const res = await request(big.app).post("/v1/count").send({ noun: "cats", image: b64(Buffer.alloc(2000, 1)) });
      assert.match(problem(res, 413, "image-too-large").detail, /limit of 1000/);
      const byPath = await request(big.app).post("/v1/images").send({ path: entries()[0]!.file });
      assert.match(problem(byPath, 413, "image-too-large").detail, /limit of 1000/);
    } finally {
      await big.close();
    }
  });

  test("rerank names the offending image once", async () => {
    const res = await request(svc.app).post("/v1/rerank").send({ prompt: "two cats", images: [{ id: "bad-one", data: b64(Buffer.from("nope")) }] });
    assert.match(problem(res, 422, "not-an-image").detail, /^image bad-one: /);
  });

  test("a body over the limit answers 413 stating the limit", async () => {
    const res = await request(svc.app).post("/v1/count").send({ noun: "cats", image: "A".repeat(3 * 1024 * 1024) });
    assert.match(problem(res, 413, "payload-too-large").detail, /limit of 2097152 bytes/);
  });

  test('base64 that decodes to nothing ("0", "0=") is refused by the schema, as the spec says', async () => {
    const pattern = new RegExp(spec.components.schemas.Base64Image.pattern);
    for (const data of ["0", "0=", "\n0\n", "=="]) {
      assert.equal(Buffer.from(data, "base64").length, 0);
      assert.ok(!pattern.test(data), data);
      problem(await count(data), 400, "bad-request");
    }
    for (const data of ["00", "0\n0", "AAAA\r\nAA=="]) assert.ok(pattern.test(data) && Buffer.from(data, "base64").length > 0, data);
  });

  test("k: the spec's maximum is the server's configured maximum", async () => {
    assert.equal(spec.components.schemas.SearchRequest.properties.k.maximum, loadConfig({}).maxK);
    assert.equal(spec.components.schemas.RerankRequest.properties.images.maxItems, loadConfig({}).maxRerankImages);
    assert.throws(() => loadConfig({ MAX_K: "101" }), /MAX_K/);
    await request(svc.app).post("/v1/search").send({ query: "cats", k: 100 }).expect(200);
    problem(await request(svc.app).post("/v1/search").send({ query: "cats", k: 101 }), 400, "bad-request");
  });

  test("combinations the schema cannot refuse are 422: duplicate rerank ids, explain window > grid", async () => {
    const data = b64(readFileSync(path.join(gallery, entries()[0]!.file)));
    const dup = await request(svc.app).post("/v1/rerank").send({ prompt: "two cats", images: [{ id: "a", data }, { id: "a", data }] });
    problem(dup, 422, "duplicate-image-id");
    problem(await request(svc.app).post("/v1/explain").send({ id: entries()[0]!.id, grid: 2, window: 5 }), 422, "window-exceeds-grid");
  });

  test("rebuild of a missing modelDir: 404, as documented", async () => {
    assert.ok(spec.paths["/v1/index/rebuild"].post.responses["404"]);
    const res = await request(svc.app).post("/v1/index/rebuild").set(auth).send({ modelDir: "no-such-bundle" });
    problem(res, 404, "not-found");
  });

  test("other problems, and every type has one title and every title one type", async () => {
    problem(await request(svc.app).post("/v1/search").set("Content-Type", "application/json").send("{"), 400, "malformed-json");
    problem(await request(svc.app).post("/v1/search").set("Content-Type", "text/plain").send("x"), 415, "unsupported-media-type");
    problem(await request(svc.app).post("/v1/images").send({ path: "x.png" }), 401, "unauthorized");
    problem(await request(svc.app).put("/v1/search"), 405, "method-not-allowed");
    problem(await request(svc.app).get("/v1/images/nope"), 404, "not-found");
    const titles = new Map<string, string>();
    for (const [type, set] of seen) {
      assert.equal(set.size, 1, `${type} has titles ${[...set].join(", ")}`);
      const title = [...set][0]!;
      assert.equal(titles.get(title) ?? type, type, `title ${title} has two types`);
      titles.set(title, type);
    }
    assert.ok(seen.size >= 10, `saw ${seen.size} types`);
  });
});

describe("rebuild jobs survive restarts", () => {
  async function waitRebuild(app: TestService["app"]): Promise<Record<string, any>> {
    for (;;) {
      const status = (await request(app).get("/v1/index").expect(200)).body;
      if (status.rebuild.state !== "running") return status;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  test("the outcome is still reported after a restart; an interrupted job is reported failed", async () => {
    const data = await tempDir("jobs-data");
    const env = { GALLERY_DIR: gallery, DATA_DIR: data, API_KEY: KEY };
    let s = await startTestService(DEFAULT_MODEL, env);
    try {
      await request(s.app).post("/v1/index/rebuild").set(auth).send({}).expect(202);
      const done = await waitRebuild(s.app);
      assert.equal(done.rebuild.state, "succeeded");
      await s.close();
      s = await startTestService(DEFAULT_MODEL, env);
      const after = (await request(s.app).get("/v1/index")).body;
      assert.equal(after.rebuild.state, "succeeded");
      assert.equal(after.rebuild.finishedAt, done.rebuild.finishedAt);
      assert.equal(after.rebuild.modelDir, "default-model");
      await s.close();
      // What a kill -9 mid-rebuild leaves on disk (test/service-crash.test.ts does it for real).
      const job = { state: "running", modelDir: DEFAULT_MODEL, done: 3, total: 12, startedAt: new Date().toISOString() };
      await mkdir(path.join(data, "jobs"), { recursive: true });
      await writeFile(path.join(data, "jobs", "rebuild.json"), JSON.stringify(job));
      s = await startTestService(DEFAULT_MODEL, env);
      const failed = (await request(s.app).get("/v1/index")).body.rebuild;
      assert.equal(failed.state, "failed");
      assert.match(failed.error, /interrupted.*after 3 of 12 images/);
      assert.equal(failed.done, 3);
      // Reported once and persisted: a further restart still says so, and a new rebuild may start.
      await s.close();
      s = await startTestService(DEFAULT_MODEL, env);
      assert.equal((await request(s.app).get("/v1/index")).body.rebuild.error, failed.error);
      await request(s.app).post("/v1/index/rebuild").set(auth).send({}).expect(202);
      assert.equal((await waitRebuild(s.app)).rebuild.state, "succeeded");
    } finally {
      await s.close();
    }
  });
});

describe("slow clients", () => {
  test("500 half-sent requests are shed while searches keep answering", { timeout: 60_000 }, async () => {
    const server = createGuardedServer(svc.app, { headersTimeoutMs: 1500, requestTimeoutMs: 5000, keepAliveTimeoutMs: 1000, maxConnections: 100 });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const slow: net.Socket[] = [];
    let closedByServer = 0;
    try {
      for (let i = 0; i < 500; i++) {
        const socket = net.connect(port, "127.0.0.1");
        socket.on("error", () => undefined);
        socket.resume(); // read the 408, so that "close" fires
        socket.once("close", () => closedByServer++);
        socket.write("POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"); // headers never finish
        slow.push(socket);
      }
      await new Promise((r) => setTimeout(r, 200));
      const url = `http://127.0.0.1:${port}/v1/search`;
      const started = performance.now();
      for (let i = 0; i < 10; i++) {
        const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query: "three cats", k: 3 }) });
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as { hits: unknown[] }).hits.length, 3);
      }
      const elapsed = performance.now() - started;
      // Past the cap the oldest idle sockets went at once; the rest go at the headers timeout.
      assert.ok(closedByServer >= 400, `only ${closedByServer} slow sockets closed`);
      assert.ok(elapsed < 1500, `searches took ${elapsed.toFixed(0)} ms, as long as the timeout`);
      const deadline = Date.now() + 8000;
      while (closedByServer < 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(closedByServer, 500, "every half-sent request is closed by the headers timeout");
    } finally {
      slow.forEach((s) => s.destroy());
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("paths in responses are relative to the roots", () => {
  test("a failed rebuild's reason names the bundle relative to its root", async () => {
    const notABundle = await tempDir("not-a-bundle"); // under os.tmpdir(), a model root in tests
    await request(svc.app).post("/v1/index/rebuild").set(auth).send({ modelDir: notABundle }).expect(202);
    let rebuild: Record<string, any>;
    do rebuild = (await request(svc.app).get("/v1/index")).body.rebuild; while (rebuild.state === "running");
    assert.equal(rebuild.state, "failed");
    assert.equal(rebuild.modelDir, path.basename(notABundle));
    assert.ok(!rebuild.error.includes(notABundle), rebuild.error);
    assert.ok(rebuild.error.includes(`bundle ${path.basename(notABundle)} has no manifest.json`), rebuild.error);
  });

  test("modelDir and source", async () => {
    const status = (await request(svc.app).get("/v1/index")).body;
    assert.equal(status.modelDir, "default-model");
    assert.equal((await request(svc.app).get("/v1/model")).body.modelDir, "default-model");
    const file = entries()[1]!.file;
    const added = await request(svc.app).post("/v1/images").set(auth).send({ id: "by-path", path: file }).expect(201);
    assert.equal(added.body.source, `path:${file}`);
    const text = JSON.stringify([status, added.body, (await request(svc.app).get("/v1/images/by-path")).body]);
    assert.ok(!text.includes(REPO_ROOT) && !text.includes(gallery), text);
    await request(svc.app).delete("/v1/images/by-path").set(auth).expect(204);
  });

  test("records stored with an absolute source (before this change) are shown relative too", async () => {
    const file = entries()[2]!.file;
    await svc.service.add("legacy", readFileSync(path.join(gallery, file)), path.join(gallery, file));
    try {
      assert.equal((await request(svc.app).get("/v1/images/legacy").expect(200)).body.source, `path:${file}`);
      const hits = (await request(svc.app).post("/v1/search").send({ query: "animals", k: 100 }).expect(200)).body.hits;
      assert.equal(hits.find((h: { id: string }) => h.id === "legacy").source, `path:${file}`);
      assert.ok(hits.every((h: { source: string }) => !path.isAbsolute(h.source)));
    } finally {
      await request(svc.app).delete("/v1/images/legacy").set(auth).expect(204);
    }
  });
});

describe("a newcomer's first requests", () => {
  test("the README's /v1/count example names a gallery image and runs as written", async () => {
    const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    const m = /-d "\{\\"noun\\": \\"(\w+)\\", \\"image\\": \\"\$\(base64 -w0 (\S+)\)\\"\}"/.exec(readme);
    assert.ok(m, "README has a /v1/count example");
    const [, noun, file] = m;
    assert.ok(existsSync(path.join(REPO_ROOT, file!)), `${file} exists`);
    const res = await request(svc.app).post("/v1/count").send({ noun, image: readFileSync(path.join(REPO_ROOT, file!)).toString("base64") }).expect(200);
    assert.equal(res.body.distribution.length, 10);
  });

  test("npm is not told an option it does not know; onnxruntime-node still is", () => {
    const makefile = readFileSync(path.join(REPO_ROOT, "Makefile"), "utf8");
    const line = makefile.split("\n").find((l) => /\bnpm ci\b/.test(l))!;
    assert.doesNotMatch(line, /--onnxruntime-node-install|npm_config_onnxruntime/);
    assert.match(line, /\bONNXRUNTIME_NODE_INSTALL=skip npm ci\b/);
    // What onnxruntime-node's install script reads, first of all.
    const script = readFileSync(path.join(REPO_ROOT, "node_modules/onnxruntime-node/script/install-utils.js"), "utf8");
    assert.match(script, /process\.env\.ONNXRUNTIME_NODE_INSTALL\b/);
  });

  test('search notes say why count-aware fell back, with the nearest reading ("thre catss")', async () => {
    const res = await request(svc.app).post("/v1/search").send({ query: "thre catss", k: 3 }).expect(200);
    assert.equal(res.body.countAware, false);
    assert.equal(res.body.notes[0].code, "no-count");
    assert.equal(res.body.notes[0].suggestion, "three cats");
    const far = await request(svc.app).post("/v1/search").send({ query: "twelve dogs", k: 3 }).expect(200);
    assert.equal(far.body.notes[0].code, "count-out-of-range");
    const typo = await request(svc.app).post("/v1/search").send({ query: "three catz", k: 3 }).expect(200);
    assert.equal(typo.body.notes[0].code, "unknown-noun");
    assert.equal(typo.body.notes[0].suggestion, "three cats");
    const plain = await request(svc.app).post("/v1/search").send({ query: "three cats", k: 3 }).expect(200);
    assert.equal(plain.body.notes, undefined);
    const off = await request(svc.app).post("/v1/search").send({ query: "toys for kids", countAware: false }).expect(200);
    assert.equal(off.body.notes, undefined);
  });

  test('"a cat" and "one cat" read as count 1', async () => {
    for (const query of ["a cat", "one cat", "a photo of a cat", "an elephant"]) {
      const res = await request(svc.app).post("/v1/search").send({ query, k: 3 }).expect(200);
      assert.equal(res.body.query.count, 1, query);
      assert.equal(res.body.countAware, true, query);
    }
    for (const query of ["a few cats", "a cat on a sofa with friends"]) {
      const res = await request(svc.app).post("/v1/search").send({ query, k: 3 }).expect(200);
      assert.notEqual(res.body.query.count, 1, query);
    }
  });

  test("GET /v1/gallery lists the kinds and counts the index holds", async () => {
    const labels = entries();
    const body = (await request(svc.app).get("/v1/gallery").expect(200)).body;
    assert.equal(body.images, labels.length);
    const cats = body.kinds.find((k: { kind: string }) => k.kind === "cat");
    const expected = labels.filter((l) => l.kind === "cat");
    assert.equal(cats.noun, "cats");
    assert.equal(cats.images, expected.length);
    assert.deepEqual(cats.counts.map((c: { count: number }) => c.count), [...new Set(expected.map((l) => l.count))].sort((a, b) => a - b));
    await request(svc.app).delete(`/v1/images/${expected[0]!.id}`).set(auth).expect(204);
    const less = (await request(svc.app).get("/v1/gallery").expect(200)).body;
    assert.equal(less.images, labels.length - 1);
  });
});
