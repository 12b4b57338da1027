/**
 * The index contract, run against both backends through the real service and its HTTP API:
 * search, add, delete, import, rebuild (with a write during it carried over), restart. With
 * pgvector, also two service processes on one database: each sees the other's adds and
 * deletes, and follows the other's rebuild to the new model.
 *
 * pgvector runs on a throwaway PostgreSQL cluster (test/helpers/postgres.ts); the suite skips,
 * saying why, only when no cluster can be started here.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import request from "supertest";
import { randomUnit } from "../index/shared/synthetic.ts";
import { writeVectorBundle } from "../index/vector-bundle.ts";
import { testBundle } from "./helpers/bundle.ts";
import { startPostgres, type TestPostgres } from "./helpers/postgres.ts";
import { dotsImage, makeGallery, removeTempDirs, startTestService, tempDir, type TestService } from "./helpers/service-app.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
let tiny: string;
let small: string;
let gallery: string;
let postgres: TestPostgres | string;
const children: ChildProcess[] = [];

before(async () => {
  [tiny, small] = await Promise.all([testBundle(), testBundle({ model: "random:small" })]);
  gallery = await makeGallery(12);
  postgres = await startPostgres();
});
after(async () => {
  children.forEach((c) => c.kill("SIGKILL"));
  if (typeof postgres !== "string") await postgres.stop();
  await removeTempDirs();
});

const image = async (count: number) => (await dotsImage(count)).toString("base64");

async function waitIdle(app: TestService["app"], job: "rebuild" | "import"): Promise<Record<string, any>> {
  for (;;) {
    const status = (await request(app).get("/v1/index").expect(200)).body;
    if (status[job].state !== "running") return status;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ids = (body: { hits: Array<{ id: string }> }) => body.hits.map((h) => h.id).sort();

for (const backend of ["embedded", "pgvector"] as const) {
  describe(`${backend} backend`, () => {
    let env: Record<string, string>;
    let svc: TestService | undefined;

    before(async (t) => {
      env = { INDEX_BACKEND: backend, GALLERY_DIR: gallery, DATA_DIR: await tempDir(`${backend}-data`) };
      if (backend === "pgvector") {
        if (typeof postgres === "string") return;
        env["DATABASE_URL"] = await postgres.database(`contract_${process.pid}`);
      }
      env["IMPORT_ROOTS"] = env["DATA_DIR"]!;
      void t;
    });
    after(async () => svc?.close());

    const skipWithoutPg = (t: { skip(msg: string): void }) => {
      if (backend === "pgvector" && typeof postgres === "string") {
        t.skip(postgres);
        return true;
      }
      return false;
    };

    test("start indexes the gallery; search answers from it", async (t) => {
      if (skipWithoutPg(t)) return;
      svc = await startTestService(tiny, env);
      const status = (await request(svc.app).get("/v1/index").expect(200)).body;
      assert.equal(status.backend, backend);
      assert.equal(status.size, 12);
      assert.equal(status.indexBuild, 1);
      const res = await request(svc.app).post("/v1/search").send({ query: "three dots", k: 5 }).expect(200);
      assert.equal(res.body.hits.length, 5);
      assert.equal(res.body.indexBuild, 1);
      for (const hit of res.body.hits) assert.match(hit.id, /^g\d+$/);
    });

    test("add, find, refuse a duplicate, delete", async (t) => {
      if (skipWithoutPg(t)) return;
      const { app } = svc!;
      await request(app).post("/v1/images").send({ id: "added", data: await image(7) }).expect(201);
      await request(app).post("/v1/images").send({ id: "added", data: await image(2) }).expect(409);
      assert.equal((await request(app).get("/v1/images/added").expect(200)).body.id, "added");
      const found = await request(app).post("/v1/search").send({ query: "seven dots", k: 50, countAware: false }).expect(200);
      assert.ok(ids(found.body).includes("added"));
      await request(app).delete("/v1/images/g3").expect(204);
      await request(app).delete("/v1/images/g3").expect(404);
      await request(app).get("/v1/images/g3").expect(404);
      const after = await request(app).post("/v1/search").send({ query: "dots", k: 50 }).expect(200);
      assert.ok(!ids(after.body).includes("g3"));
      assert.equal(after.body.hits.length, 12);
    });

    test("import loads precomputed vectors of the serving model; another model is refused", async (t) => {
      if (skipWithoutPg(t)) return;
      const { app, service } = svc!;
      const serving = service.acquireUnleased();
      const dim = serving.index.dim;
      const rows = new Float32Array(3 * dim);
      for (let i = 0; i < 3; i++) rows.set(randomUnit(dim, 500 + i), i * dim);
      const dir = path.join(env["DATA_DIR"]!, "bundle");
      await writeVectorBundle(dir, serving.modelId, dim, [{ id: "imp0" }, { id: "imp1", source: "import:test" }, { id: "added" }], rows);
      await request(app).post("/v1/index/import").send({ path: dir }).expect(202);
      const status = await waitIdle(app, "import");
      assert.equal(status.import.state, "succeeded", JSON.stringify(status.import));
      assert.equal(status.import.done, 3);
      // "added" exists already and is skipped, the two new ids are in.
      assert.equal(status.size, 14);
      assert.equal((await request(app).get("/v1/images/imp1").expect(200)).body.source, "import:test");
      const other = path.join(env["DATA_DIR"]!, "other");
      await writeVectorBundle(other, "some-other-model", dim, [{ id: "x" }], rows.subarray(0, dim));
      const refused = await request(app).post("/v1/index/import").send({ path: other }).expect(409);
      assert.match(refused.body.detail, /some-other-model/);
      const wrongDim = path.join(env["DATA_DIR"]!, "dim");
      await writeVectorBundle(wrongDim, serving.modelId, dim + 1, [{ id: "x" }], new Float32Array(dim + 1));
      assert.match((await request(app).post("/v1/index/import").send({ path: wrongDim }).expect(409)).body.detail, /dimension/);
      await request(app).post("/v1/index/import").send({ path: "/etc" }).expect(403);
      await request(app).post("/v1/index/import").send({ path: path.join(env["DATA_DIR"]!, "missing") }).expect(404);
      // A directory that is not a vector bundle: 422, saying what is wrong.
      assert.match((await request(app).post("/v1/index/import").send({ path: path.join(env["DATA_DIR"]!, "jobs") }).expect(422)).body.detail, /manifest\.json/);
      // Imported vectors have no image bytes: remove them before the rebuild re-embeds all.
      await request(app).delete("/v1/images/imp0").expect(204);
      await request(app).delete("/v1/images/imp1").expect(204);
    });

    test("rebuild to another model: a write during it is carried over; responses name one build", async (t) => {
      if (skipWithoutPg(t)) return;
      const { app } = svc!;
      const before = (await request(app).get("/v1/index").expect(200)).body;
      await request(app).post("/v1/index/rebuild").send({ modelDir: small }).expect(202);
      await request(app).post("/v1/images").send({ id: "during", data: await image(4) }).expect(201);
      const status = await waitIdle(app, "rebuild");
      assert.equal(status.rebuild.state, "succeeded", JSON.stringify(status.rebuild));
      assert.notEqual(status.modelId, before.modelId);
      assert.equal(status.indexBuild, 2);
      assert.equal(status.size, 13);
      assert.ok(status.rebuild.rate > 0);
      assert.equal((await request(app).get("/v1/images/during").expect(200)).body.modelId, status.modelId);
      const res = await request(app).post("/v1/search").send({ query: "four dots", k: 50 }).expect(200);
      assert.equal(res.body.modelId, status.modelId);
      assert.ok(ids(res.body).includes("during") && ids(res.body).includes("added"));
    });

    test("restart serves the same build, the same answers", async (t) => {
      if (skipWithoutPg(t)) return;
      const before = (await request(svc!.app).get("/v1/index").expect(200)).body;
      const answer = (await request(svc!.app).post("/v1/search").send({ query: "five dots", k: 6 }).expect(200)).body;
      await svc!.close();
      svc = await startTestService(tiny, env);
      const status = (await request(svc.app).get("/v1/index").expect(200)).body;
      assert.equal(status.modelId, before.modelId);
      assert.equal(status.indexBuild, before.indexBuild);
      assert.equal(status.size, before.size);
      const again = (await request(svc.app).post("/v1/search").send({ query: "five dots", k: 6 }).expect(200)).body;
      assert.deepEqual(again.hits.map((h: any) => h.id), answer.hits.map((h: any) => h.id));
      for (const [i, hit] of again.hits.entries()) assert.ok(Math.abs(hit.score - answer.hits[i].score) < 1e-4);
    });

    if (backend === "pgvector") {
      test("two service processes on one database see each other's writes and switches", { timeout: 120_000 }, async (t) => {
        if (skipWithoutPg(t)) return;
        const { app } = svc!;
        const other = await startServer({ ...env, MODEL_DIR: tiny, DATA_DIR: await tempDir("pg-second"), FOLLOW_MS: "100",
          MODEL_ROOTS: [path.dirname(tiny), path.dirname(small)].join(path.delimiter) });
        const json = async (p: string, init?: RequestInit) => {
          const res = await fetch(`${other.url}${p}`, init);
          return { status: res.status, body: await res.json().catch(() => undefined) as any };
        };
        const mine = (await request(app).get("/v1/index").expect(200)).body;
        const theirs = await waitFor(async () => ((await json("/readyz")).status === 200 ? (await json("/v1/index")).body : undefined));
        assert.equal(theirs.modelId, mine.modelId);
        assert.equal(theirs.size, mine.size);
        // An add through the other process is found here, and one here is found there.
        const post = (id: string, data: string) => json("/v1/images", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, data }) });
        assert.equal((await post("from-b", await image(3))).status, 201);
        await request(app).get("/v1/images/from-b").expect(200);
        await request(app).post("/v1/images").send({ id: "from-a", data: await image(9) }).expect(201);
        assert.equal((await json("/v1/images/from-a")).status, 200);
        const search = await json("/v1/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "dots", k: 50 }) });
        assert.ok(search.body.hits.some((h: any) => h.id === "from-a"));
        await request(app).delete("/v1/images/from-b").expect(204);
        assert.equal((await json("/v1/images/from-b")).status, 404);
        // A rebuild here switches the database; the other process follows to the new model.
        await request(app).post("/v1/index/rebuild").send({ modelDir: tiny }).expect(202);
        const rebuilt = await waitIdle(app, "rebuild");
        assert.equal(rebuilt.rebuild.state, "succeeded", JSON.stringify(rebuilt.rebuild));
        const followed = await waitFor(async () => {
          const s = (await json("/v1/index")).body;
          return s.indexBuild === rebuilt.indexBuild ? s : undefined;
        });
        assert.equal(followed.modelId, rebuilt.modelId);
        assert.equal(followed.size, rebuilt.size);
        const res = await json("/v1/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "nine dots", k: 3 }) });
        assert.equal(res.body.modelId, rebuilt.modelId);
        assert.equal(res.body.indexBuild, rebuilt.indexBuild);
        other.child.kill("SIGTERM");
      });

      test("a process configured with another model is refused, the shared index left as it is", async (t) => {
        if (skipWithoutPg(t)) return;
        const before = (await request(svc!.app).get("/v1/index").expect(200)).body;
        await assert.rejects(startTestService(small, env), /the database's index holds model .* but this process loaded model/);
        const after = (await request(svc!.app).get("/v1/index").expect(200)).body;
        assert.equal(after.indexBuild, before.indexBuild);
        assert.equal(after.modelId, before.modelId);
      });
    }
  });
}

async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** server/main.ts in a child process; resolves with its URL once it listens. */
function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server/main.ts")], {
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let log = "";
    child.stdout!.on("data", (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(log);
      if (m) resolve({ child, url: m[1]! });
    });
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    child.on("exit", (code) => reject(new Error(`server exited ${code}:\n${log}`)));
  });
}
