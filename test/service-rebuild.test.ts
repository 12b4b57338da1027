/**
 * Rebuilds without downtime: searches under load while a second bundle is rolled in (zero
 * failures, every response wholly from the old or wholly from the new index), writes during the
 * rebuild carried over, a failed rebuild leaving the old index serving, and restarts.
 */
import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import request from "supertest";
import { testBundle } from "./helpers/bundle.ts";
import { dotsImage, makeGallery, removeTempDirs, startTestService, tempDir, type TestService } from "./helpers/service-app.ts";

let tiny: string;
let small: string;
let gallery: string;
let dataDir: string;
let svc: TestService | undefined;

before(async () => {
  [tiny, small] = await Promise.all([testBundle(), testBundle({ model: "random:small" })]);
  gallery = await makeGallery(30);
  dataDir = await tempDir("rebuild-data");
});
after(async () => {
  await svc?.close();
  await removeTempDirs();
});

const QUERIES = ["three red dots", "a photo of seven dots", "blue circles"];

async function waitRebuild(app: TestService["app"]): Promise<Record<string, any>> {
  for (;;) {
    const status = (await request(app).get("/v1/index").expect(200)).body;
    if (status.rebuild.state !== "running") return status;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The part of a search response that identifies which index computed it. */
function fingerprint(body: { hits: Array<{ id: string; score: number }> }): string {
  return JSON.stringify(body.hits.map((h) => [h.id, h.score]));
}

test("a rebuild under load: zero failed searches, each wholly old or wholly new", { timeout: 120_000 }, async (t) => {
  svc = await startTestService(tiny, { GALLERY_DIR: gallery, DATA_DIR: dataDir });
  const { app } = svc;
  const search = (query: string) => request(app).post("/v1/search").send({ query, k: 8 });
  const before = await Promise.all(QUERIES.map(async (q) => (await search(q).expect(200)).body));
  const oldModel = before[0].modelId;

  await request(app).post("/v1/index/rebuild").send({ modelDir: small }).expect(202);
  // A write while the rebuild runs must survive the swap (it is embedded by both models).
  await request(app).post("/v1/images").send({ id: "during", data: (await dotsImage(6)).toString("base64") }).expect(201);
  const responses: Array<{ query: string; res: request.Response }> = [];
  let running = true;
  const load = async (worker: number) => {
    for (let i = 0; running || i < 3; i++) {
      const query = QUERIES[(worker + i) % QUERIES.length]!;
      responses.push({ query, res: await search(query) });
    }
  };
  const workers = [0, 1, 2, 3].map(load);
  const status = await waitRebuild(app);
  running = false;
  await Promise.all(workers);

  assert.equal(status.rebuild.state, "succeeded", JSON.stringify(status.rebuild));
  assert.equal(status.size, 31);
  assert.notEqual(status.modelId, oldModel);
  const afterSwap = new Map(await Promise.all(QUERIES.map(async (q) => [q, fingerprint((await search(q).expect(200)).body)] as const)));
  // Wholly old or wholly new: within one (model, query) every response is identical, and the
  // new model's responses equal what the finished new index answers.
  const groups = new Map<string, Set<string>>();
  const seen = { old: 0, new: 0 };
  for (const { query, res } of responses) {
    assert.equal(res.status, 200, res.text);
    const { modelId, indexBuild } = res.body;
    assert.ok(modelId === oldModel || modelId === status.modelId, modelId);
    const isNew = modelId === status.modelId;
    assert.equal(indexBuild, isNew ? 2 : 1, "model and index build must match");
    seen[isNew ? "new" : "old"]++;
    const key = `${modelId} ${query}`;
    groups.set(key, (groups.get(key) ?? new Set()).add(fingerprint(res.body)));
    if (isNew) assert.equal(fingerprint(res.body), afterSwap.get(query));
  }
  for (const [key, prints] of groups) assert.equal(prints.size, 1, `${key}: ${prints.size} different answers`);
  t.diagnostic(`responses during the rebuild: ${JSON.stringify(seen)}`);
  assert.ok(seen.old > 0 && seen.new > 0, `saw ${JSON.stringify(seen)}`);
  const during = await request(app).get("/v1/images/during").expect(200);
  assert.equal(during.body.modelId, status.modelId);
});

test("a failed rebuild leaves the old index serving and says why", async () => {
  const { app } = svc!;
  const beforeStatus = (await request(app).get("/v1/index")).body;
  const broken = path.join(await tempDir("broken"), "bundle");
  await cp(tiny, broken, { recursive: true });
  const vision = path.join(broken, "vision.onnx");
  const bytes = await readFile(vision);
  bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
  await writeFile(vision, bytes);
  await request(app).post("/v1/index/rebuild").send({ modelDir: broken }).expect(202);
  const status = await waitRebuild(app);
  assert.equal(status.rebuild.state, "failed");
  assert.match(status.rebuild.error, /sha256|checksum/i);
  assert.equal(status.modelId, beforeStatus.modelId);
  assert.equal(status.indexBuild, beforeStatus.indexBuild);
  const res = await request(app).post("/v1/search").send({ query: "two dots" }).expect(200);
  assert.equal(res.body.modelId, beforeStatus.modelId);
});

test("restart loads the persisted index of the rebuilt model; a new configured model re-embeds", async () => {
  const rebuilt = (await request(svc!.app).get("/v1/index")).body;
  await svc!.close();
  // Same configuration: the model chosen by the rebuild stays, the index loads as saved.
  svc = await startTestService(tiny, { GALLERY_DIR: gallery, DATA_DIR: dataDir });
  let status = (await request(svc.app).get("/v1/index")).body;
  assert.equal(status.modelId, rebuilt.modelId);
  assert.equal(status.indexBuild, rebuilt.indexBuild);
  assert.equal(status.generation, rebuilt.generation);
  assert.equal(status.size, 31);
  await svc.close();
  // The operator configures another model: the index is rebuilt for it at start.
  svc = await startTestService(small, { GALLERY_DIR: gallery, DATA_DIR: dataDir });
  status = (await request(svc.app).get("/v1/index")).body;
  // Relative to the model root holding it (the test roots are dirname(tiny) and the temp dir).
  assert.equal(status.modelDir, path.relative(path.dirname(tiny), small));
  assert.equal(status.indexBuild, rebuilt.indexBuild);
  assert.equal(status.size, 31);
});
