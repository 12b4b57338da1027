/**
 * The pgvector backend below the service, on a throwaway PostgreSQL: migrations applied once
 * (two processes starting together included) and a changed one refused; a build's dimension
 * and model enforced; a switch by one process refusing a write another makes through the old
 * build, and never mixing builds in an answer.
 */
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import pg from "pg";
import { IndexMismatchError, StaleIndexError } from "../index/backend.ts";
import { PgBackend } from "../index/pgvector/backend.ts";
import { migrate, migrations } from "../index/pgvector/migrate.ts";
import { randomUnit } from "../index/shared/synthetic.ts";
import { startPostgres, type TestPostgres } from "./helpers/postgres.ts";

let postgres: TestPostgres | string;
before(async () => {
  postgres = await startPostgres();
});
after(async () => {
  if (typeof postgres !== "string") await postgres.stop();
});

const DIM = 8;
const params = { m: 8, efConstruction: 32, efSearch: 32 };
const origin = (modelId: string, build: number) => ({ modelId, modelDir: `/${modelId}`, startModelDir: "/a", build });
const entry = (n: number, dim = DIM) => ({ meta: { id: `v${n}`, source: "t", sha256: "0".repeat(64), addedAt: "2026-01-01T00:00:00.000Z" }, vector: randomUnit(dim, n) });

async function database(t: { skip(msg: string): void }, name: string): Promise<string | undefined> {
  if (typeof postgres === "string") {
    t.skip(postgres);
    return undefined;
  }
  return postgres.database(`${name}_${process.pid}`);
}

test("migrations apply once, also when two processes start together; an edited one is refused", async (t) => {
  const url = await database(t, "migrations");
  if (!url) return;
  const pools = [new pg.Pool({ connectionString: url }), new pg.Pool({ connectionString: url })];
  try {
    const applied = await Promise.all(pools.map((p) => migrate(p)));
    assert.deepEqual(applied.flat().sort(), migrations().map((m) => m.version));
    assert.deepEqual(await migrate(pools[0]!), []);
    const dir = await mkdtemp(path.join(os.tmpdir(), "countclip-migrations-"));
    await writeFile(path.join(dir, "0001_init.sql"), "SELECT 1;");
    await assert.rejects(migrate(pools[0]!, migrations(dir)), /changed after it was applied/);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test("builds: dimension enforced, a switch in one process makes another's write stale, answers from one build", async (t) => {
  const url = await database(t, "builds");
  if (!url) return;
  const a = new PgBackend({ connectionString: url, params });
  const b = new PgBackend({ connectionString: url, params });
  try {
    assert.equal(await a.open(), undefined);
    const builder = await a.createBuilder(origin("model-a", 1), DIM);
    await builder.addBatch([entry(0), entry(1), entry(2)]);
    await assert.rejects(builder.addBatch([entry(3, DIM + 1)]), IndexMismatchError);
    const first = await a.commit(builder, undefined, async () => []);
    const seen = await b.open();
    assert.ok(seen);
    assert.equal(seen.origin.modelId, "model-a");
    assert.equal(await seen.size(), 3);
    await b.add(seen, entry(3));
    assert.equal((await first.get("v3"))?.id, "v3");
    await assert.rejects(b.add(seen, entry(4, DIM + 1)), IndexMismatchError);

    // A rebuild in process a, while b adds through the old build: the add is carried over.
    const next = await a.createBuilder(origin("model-b", 2), DIM);
    await next.addBatch((await first.items()).map((m) => ({ meta: m, vector: randomUnit(DIM, 1000 + Number(m.id.slice(1))) })));
    await b.add(seen, entry(5));
    await b.remove(seen, "v0");
    const carried: string[] = [];
    const second = await a.commit(next, first, async (missing) => {
      carried.push(...missing.map((m) => m.id));
      return missing.map((m) => ({ meta: m, vector: randomUnit(DIM, 1000 + Number(m.id.slice(1))) }));
    });
    assert.deepEqual(carried, ["v5"]);
    assert.deepEqual((await second.items()).map((m) => m.id).sort(), ["v1", "v2", "v3", "v5"]);
    await assert.rejects(b.add(seen, entry(6)), StaleIndexError);
    const now = await b.active();
    assert.equal(now?.origin.modelId, "model-b");
    // Every hit of the new build carries the new model's vector; the old build still answers
    // with the old ones (its table is kept one rebuild long for in-flight queries).
    const hits = await now!.search(randomUnit(DIM, 1005), 4, 40);
    assert.equal(hits[0]?.meta.id, "v5");
    assert.ok(hits[0]!.similarity > 0.999);
    assert.equal((await seen.search(randomUnit(DIM, 5), 1, 40))[0]?.meta.id, "v5");
    // A stale commit (expected build replaced meanwhile) is refused, not applied.
    const late = await b.createBuilder(origin("model-c", 2), DIM);
    await assert.rejects(b.commit(late, seen, async () => []), StaleIndexError);
    await b.abort(late);
    assert.equal((await a.active())?.origin.modelId, "model-b");
  } finally {
    await a.close();
    await b.close();
  }
});
