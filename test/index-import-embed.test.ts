/**
 * Bulk path end to end, across the two languages: `countclip embed` (Python, the bundle's own
 * preprocessing and ONNX vision tower) writes a vector bundle of a folder; the service imports
 * it into an empty index without re-encoding, checking the model id; searches then score each
 * image as the service would had it embedded the image itself.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import request from "supertest";
import { bundleUnavailableReason, testBundle, VENV_BIN } from "./helpers/bundle.ts";
import { startPostgres, type TestPostgres } from "./helpers/postgres.ts";
import { makeGallery, removeTempDirs, startTestService, tempDir, type TestService } from "./helpers/service-app.ts";

const run = promisify(execFile);
const services: TestService[] = [];
let postgres: TestPostgres | string | undefined;
after(async () => {
  for (const s of services) await s.close();
  if (postgres && typeof postgres !== "string") await postgres.stop();
  await removeTempDirs();
});

for (const backend of ["embedded", "pgvector"] as const) test(`countclip embed -> POST /v1/index/import (${backend}): same scores as the service's own embeddings`, { timeout: 900_000 }, async (t) => {
  const reason = bundleUnavailableReason();
  if (reason) return t.skip(reason);
  const env: Record<string, string> = { INDEX_BACKEND: backend };
  if (backend === "pgvector") {
    postgres ??= await startPostgres();
    if (typeof postgres === "string") return t.skip(postgres);
    env["DATABASE_URL"] = await postgres.database(`import_${process.pid}`);
  }
  const tiny = await testBundle();
  const gallery = await makeGallery(12);
  const data = await tempDir("import-embed");
  const out = path.join(data, "vectors");
  await run(path.join(VENV_BIN, "countclip"), ["embed", "--bundle", tiny, "--images", path.join(gallery, "images"), "--out", out], {
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });

  const imported = await startTestService(tiny, { ...env, DATA_DIR: data, IMPORT_ROOTS: data });
  services.push(imported);
  assert.equal((await request(imported.app).get("/v1/index").expect(200)).body.size, 0);
  await request(imported.app).post("/v1/index/import").send({ path: out }).expect(202);
  let status;
  for (;;) {
    status = (await request(imported.app).get("/v1/index").expect(200)).body;
    if (status.import.state !== "running") break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(status.import.state, "succeeded", JSON.stringify(status.import));
  assert.equal(status.size, 12);
  // Into an empty index the import is a new build.
  assert.equal(status.indexBuild, 2);

  const own = await startTestService(tiny, { GALLERY_DIR: gallery });
  services.push(own);
  const query = { query: "three dots", k: 12, countAware: false };
  const fromImport = (await request(imported.app).post("/v1/search").send(query).expect(200)).body.hits;
  const fromService = (await request(own.app).post("/v1/search").send(query).expect(200)).body.hits;
  const byId = new Map<string, number>(fromService.map((h: { id: string; similarity: number }) => [`${h.id}.png`, h.similarity]));
  assert.equal(fromImport.length, 12);
  for (const hit of fromImport) {
    const expected = byId.get(hit.id);
    assert.ok(expected !== undefined, `${hit.id} not in the service's own index`);
    assert.ok(Math.abs(hit.similarity - expected) < 0.01, `${hit.id}: imported ${hit.similarity}, own ${expected}`);
  }
});
