/**
 * The PostgreSQL + pgvector backend: images, metadata, bytes and vectors in one database that
 * several service processes share (INDEX_BACKEND=pgvector, DATABASE_URL=postgres://...).
 *
 * Each build is a table `countclip_vectors_<id>` with a `vector(dim)` column, its model id in
 * every row (checked against the build's), and an HNSW cosine index. `countclip_state` names
 * the active build. An add inserts into the active build's table in a transaction holding the
 * state row FOR SHARE and checking the build is still active; a rebuild fills a new table
 * without an index, builds the HNSW index, then switches in one transaction holding the state
 * row FOR UPDATE (so no add is in flight), after carrying over what was added meanwhile.
 * Queries read one table, so an answer comes wholly from one model's vectors; replaced tables
 * are kept until the next rebuild so in-flight queries of other processes still finish.
 */
import pg from "pg";
import { registerTypes, toSql } from "pgvector/pg";
import {
  type BackendStatus,
  type CatchUp,
  checkEntry,
  type CommitOptions,
  DuplicateIdError,
  type Entry,
  type Hit,
  type IndexBackend,
  type IndexBuilder,
  IndexMismatchError,
  type IndexOrigin,
  type IndexParams,
  type IndexView,
  type ItemMeta,
  StaleIndexError,
} from "../backend.ts";
import { sha256 } from "../shared/fsutil.ts";
import { migrate } from "./migrate.ts";

export interface PgOptions {
  connectionString: string;
  params: IndexParams;
  /** Pool size per process. */
  poolSize?: number;
  /** maintenance_work_mem for HNSW index builds (e.g. "2GB"); the server's default when unset. */
  maintenanceWorkMem?: string;
}

interface BuildRow {
  id: number;
  build: number;
  model_id: string;
  model_dir: string;
  start_model_dir: string;
  dim: number;
  table_name: string;
}

interface ItemRow {
  id: string;
  source: string;
  sha256: string;
  added_at: Date;
}

/** Catch-up rounds outside the switch lock before the last one embeds while holding it. */
const CATCH_UP_ROUNDS = 3;
const COLUMNS = "id, source, sha256, added_at";

function metaOf(row: ItemRow): ItemMeta {
  return { id: row.id, source: row.source, sha256: row.sha256, addedAt: row.added_at.toISOString() };
}

function toVectorSql(v: Float32Array): string {
  return toSql(Array.from(v)) as string;
}

function originOf(row: BuildRow): IndexOrigin {
  return { modelId: row.model_id, modelDir: row.model_dir, startModelDir: row.start_model_dir, build: row.build };
}

/** Rows of `entries` as the parallel arrays `unnest` takes: one statement per batch. */
function columns(entries: Entry[]): unknown[] {
  return [
    entries.map((e) => e.meta.id),
    entries.map((e) => e.meta.source),
    entries.map((e) => e.meta.sha256),
    entries.map((e) => e.meta.addedAt),
    entries.map((e) => toVectorSql(e.vector)),
  ];
}

const INSERT_ROWS = (table: string) =>
  `INSERT INTO ${table} (${COLUMNS}, embedding)
   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::vector[])
   ON CONFLICT (id) DO NOTHING`;

class PgView implements IndexView {
  constructor(private readonly pg: PgBackend, readonly origin: IndexOrigin, readonly dim: number, readonly table: string, readonly buildId: number) {}

  get buildKey(): number {
    return this.buildId;
  }

  async size(): Promise<number> {
    const { rows } = await this.pg.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.table}`);
    return Number(rows[0]!.n);
  }

  async get(id: string): Promise<ItemMeta | undefined> {
    const { rows } = await this.pg.pool.query<ItemRow>(`SELECT ${COLUMNS} FROM ${this.table} WHERE id = $1`, [id]);
    return rows[0] ? metaOf(rows[0]) : undefined;
  }

  async search(query: Float32Array, k: number, ef: number): Promise<Hit[]> {
    if (query.length !== this.dim) throw new IndexMismatchError(`query has dimension ${query.length}, index expects ${this.dim}`);
    return this.pg.withClient(async (client) => {
      await this.pg.setEf(client, Math.min(1000, Math.max(ef, k)));
      const { rows } = await client.query<ItemRow & { embedding: number[]; distance: number }>(
        `SELECT ${COLUMNS}, embedding, embedding <=> $1 AS distance FROM ${this.table} ORDER BY embedding <=> $1 LIMIT $2`,
        [toVectorSql(query), k],
      );
      return rows.map((r) => ({ meta: metaOf(r), similarity: 1 - r.distance, vector: Float32Array.from(r.embedding) }));
    });
  }

  async items(): Promise<ItemMeta[]> {
    const { rows } = await this.pg.pool.query<ItemRow>(`SELECT ${COLUMNS} FROM ${this.table} ORDER BY added_at, id`);
    return rows.map(metaOf);
  }
}

class PgBuilder implements IndexBuilder {
  constructor(private readonly pg: PgBackend, readonly origin: IndexOrigin, readonly dim: number, readonly table: string, readonly buildId: number) {}

  async ids(): Promise<Set<string>> {
    const { rows } = await this.pg.pool.query<{ id: string }>(`SELECT id FROM ${this.table}`);
    return new Set(rows.map((r) => r.id));
  }

  async addBatch(entries: Entry[]): Promise<void> {
    entries.forEach((e) => checkEntry(this, e));
    if (entries.length > 0) await this.pg.pool.query(INSERT_ROWS(this.table), columns(entries));
  }
}

/** Blobs in `countclip_blobs`, so every process can re-embed every image. */
class PgBlobStore {
  constructor(private readonly pool: pg.Pool) {}

  async put(data: Uint8Array): Promise<string> {
    const digest = sha256(data);
    await this.pool.query("INSERT INTO countclip_blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING", [digest, Buffer.from(data)]);
    return digest;
  }

  async get(digest: string): Promise<Buffer> {
    const { rows } = await this.pool.query<{ bytes: Buffer }>("SELECT bytes FROM countclip_blobs WHERE sha256 = $1", [digest]);
    if (!rows[0]) throw Object.assign(new Error(`no blob ${digest}`), { code: "ENOENT" });
    return rows[0].bytes;
  }
}

export class PgBackend implements IndexBackend {
  readonly kind = "pgvector" as const;
  readonly pool: pg.Pool;
  readonly blobs: PgBlobStore;
  private readonly typed = new WeakSet<pg.PoolClient>();
  private readonly efOf = new WeakMap<pg.PoolClient, number>();
  private activeId = 0;

  constructor(readonly options: PgOptions) {
    this.pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 8 });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    this.pool.on("error", (err) => console.warn(`pgvector: idle connection error: ${err.message}`));
    this.blobs = new PgBlobStore(this.pool);
  }

  /** Run `fn` on one pooled connection with pgvector's types registered. */
  async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      if (!this.typed.has(client)) {
        await registerTypes(client);
        this.typed.add(client);
      }
      return await fn(client);
    } finally {
      client.release();
    }
  }

  /** hnsw.ef_search for this connection, set only when it changes (one round trip saved). */
  async setEf(client: pg.PoolClient, ef: number): Promise<void> {
    if (this.efOf.get(client) === ef) return;
    await client.query(`SET hnsw.ef_search = ${Math.floor(ef)}`);
    this.efOf.set(client, ef);
  }

  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      await client.query("BEGIN");
      try {
        const result = await fn(client);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      }
    });
  }

  async open(): Promise<IndexView | undefined> {
    const applied = await migrate(this.pool);
    if (applied.length > 0) console.log(`pgvector: applied migrations ${applied.join(", ")}`);
    return this.active();
  }

  async activeBuild(): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ active_build: number | null }>("SELECT active_build FROM countclip_state");
    return rows[0]?.active_build ?? undefined;
  }

  async active(): Promise<IndexView | undefined> {
    const { rows } = await this.pool.query<BuildRow>(
      "SELECT b.* FROM countclip_state s JOIN countclip_builds b ON b.id = s.active_build",
    );
    const row = rows[0];
    if (!row) return undefined;
    this.activeId = row.id;
    return new PgView(this, originOf(row), row.dim, row.table_name, row.id);
  }

  private pgView(view: IndexView): PgView {
    if (!(view instanceof PgView)) throw new TypeError("not a pgvector view");
    return view;
  }

  /** Inside a transaction: the state row FOR SHARE, refusing when `view` is no longer active. */
  private async lockActive(client: pg.PoolClient, view: PgView): Promise<void> {
    const { rows } = await client.query<{ active_build: number | null }>("SELECT active_build FROM countclip_state FOR SHARE");
    if (rows[0]?.active_build !== view.buildId) throw new StaleIndexError();
  }

  async add(view: IndexView, entry: Entry): Promise<void> {
    const v = this.pgView(view);
    checkEntry(v, entry);
    await this.transaction(async (client) => {
      await this.lockActive(client, v);
      const { rowCount } = await client.query(INSERT_ROWS(v.table), columns([entry]));
      if (rowCount === 0) throw new DuplicateIdError(entry.meta.id);
    });
  }

  async addBatch(view: IndexView, entries: Entry[]): Promise<number> {
    const v = this.pgView(view);
    entries.forEach((e) => checkEntry(v, e));
    if (entries.length === 0) return 0;
    return this.transaction(async (client) => {
      await this.lockActive(client, v);
      const { rowCount } = await client.query(INSERT_ROWS(v.table), columns(entries));
      return rowCount ?? 0;
    });
  }

  async remove(view: IndexView, id: string): Promise<ItemMeta | undefined> {
    const v = this.pgView(view);
    return this.transaction(async (client) => {
      await this.lockActive(client, v);
      const { rows } = await client.query<ItemRow>(`DELETE FROM ${v.table} WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
      const row = rows[0];
      if (!row) return undefined;
      // The bytes go too, unless another item shares them or a build in progress may read them.
      await client.query(
        `DELETE FROM countclip_blobs WHERE sha256 = $1
           AND NOT EXISTS (SELECT 1 FROM ${v.table} WHERE sha256 = $1)
           AND NOT EXISTS (SELECT 1 FROM countclip_builds WHERE state = 'building')`,
        [row.sha256],
      );
      return metaOf(row);
    });
  }

  async createBuilder(origin: IndexOrigin, dim: number): Promise<IndexBuilder> {
    if (!Number.isInteger(dim) || dim <= 0 || dim > 16000) throw new IndexMismatchError(`invalid dimension ${dim}`);
    await this.dropOldBuilds();
    const { rows } = await this.pool.query<{ id: string }>("SELECT nextval(pg_get_serial_sequence('countclip_builds', 'id')) AS id");
    const id = Number(rows[0]!.id);
    const table = `countclip_vectors_${id}`;
    await this.pool.query(
      `INSERT INTO countclip_builds (id, build, model_id, model_dir, start_model_dir, dim, table_name, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'building')`,
      [id, origin.build, origin.modelId, origin.modelDir, origin.startModelDir, dim, table],
    );
    const model = origin.modelId.replace(/'/g, "''");
    await this.pool.query(`CREATE TABLE ${table} (
      id       text PRIMARY KEY,
      source   text NOT NULL,
      sha256   text NOT NULL,
      added_at timestamptz NOT NULL,
      model_id text NOT NULL DEFAULT '${model}' CHECK (model_id = '${model}'),
      embedding vector(${dim}) NOT NULL)`);
    await this.pool.query(`CREATE INDEX ${table}_sha256 ON ${table} (sha256)`);
    return new PgBuilder(this, origin, dim, table, id);
  }

  /** Replaced builds are kept one rebuild long (other processes may still read them). */
  private async dropOldBuilds(): Promise<void> {
    const { rows } = await this.pool.query<{ id: number; table_name: string }>(
      `SELECT id, table_name FROM countclip_builds
        WHERE state = 'failed'
           OR (state = 'building' AND created_at < now() - interval '1 day')
           OR (state = 'retired' AND id < (SELECT max(id) FROM countclip_builds WHERE state = 'retired'))`,
    );
    for (const row of rows) {
      await this.pool.query(`DROP TABLE IF EXISTS ${row.table_name}`);
      await this.pool.query("DELETE FROM countclip_builds WHERE id = $1", [row.id]);
    }
  }

  private async buildHnsw(client: pg.PoolClient, table: string): Promise<void> {
    const { m, efConstruction } = this.options.params;
    if (this.options.maintenanceWorkMem) await client.query(`SET maintenance_work_mem = '${this.options.maintenanceWorkMem.replace(/'/g, "")}'`);
    await client.query(`CREATE INDEX IF NOT EXISTS ${table}_hnsw ON ${table} USING hnsw (embedding vector_cosine_ops) WITH (m = ${m}, ef_construction = ${efConstruction})`);
  }

  async commit(builder: IndexBuilder, expected: IndexView | undefined, catchUp: CatchUp, options: CommitOptions = {}): Promise<IndexView> {
    if (!(builder instanceof PgBuilder)) throw new TypeError("not a pgvector builder");
    const old = expected ? this.pgView(expected) : undefined;
    // The graph is built before the switch, outside any lock: queries keep using the old build.
    await this.withClient((client) => this.buildHnsw(client, builder.table));
    for (let round = 0; ; round++) {
      if (old) await this.carryOver(builder, old, catchUp);
      const switched = await this.transaction(async (client) => {
        const { rows } = await client.query<{ active_build: number | null }>("SELECT active_build FROM countclip_state FOR UPDATE");
        if ((rows[0]?.active_build ?? undefined) !== old?.buildId) throw new StaleIndexError("the index was switched while this build ran");
        if (old) {
          const missing = await this.missing(client, builder, old);
          if (missing.length > 0 && round < CATCH_UP_ROUNDS) return false;
          // Last round: embed the stragglers holding the lock (adds wait, briefly).
          if (missing.length > 0) await builder.addBatch(await catchUp(missing));
          if (!options.keepExtra) await client.query(`DELETE FROM ${builder.table} n WHERE NOT EXISTS (SELECT 1 FROM ${old.table} o WHERE o.id = n.id)`);
          await client.query("UPDATE countclip_builds SET state = 'retired' WHERE id = $1", [old.buildId]);
        }
        await client.query("UPDATE countclip_builds SET state = 'active', activated_at = now() WHERE id = $1", [builder.buildId]);
        await client.query("UPDATE countclip_state SET active_build = $1", [builder.buildId]);
        await client.query(`DELETE FROM countclip_blobs b WHERE NOT EXISTS (SELECT 1 FROM ${builder.table} v WHERE v.sha256 = b.sha256)
                              AND NOT EXISTS (SELECT 1 FROM countclip_builds WHERE state = 'building' AND id <> $1)`, [builder.buildId]);
        return true;
      });
      if (switched) break;
    }
    this.activeId = builder.buildId;
    return new PgView(this, builder.origin, builder.dim, builder.table, builder.buildId);
  }

  private async missing(client: pg.Pool | pg.PoolClient, builder: PgBuilder, old: PgView): Promise<ItemMeta[]> {
    const { rows } = await client.query<ItemRow>(
      `SELECT ${COLUMNS} FROM ${old.table} o WHERE NOT EXISTS (SELECT 1 FROM ${builder.table} n WHERE n.id = o.id)`,
    );
    return rows.map(metaOf);
  }

  private async carryOver(builder: PgBuilder, old: PgView, catchUp: CatchUp): Promise<void> {
    const missing = await this.missing(this.pool, builder, old);
    if (missing.length > 0) await builder.addBatch(await catchUp(missing));
  }

  async abort(builder: IndexBuilder): Promise<void> {
    if (!(builder instanceof PgBuilder)) return;
    await this.pool.query("UPDATE countclip_builds SET state = 'failed' WHERE id = $1 AND state = 'building'", [builder.buildId]);
    await this.pool.query(`DROP TABLE IF EXISTS ${builder.table}`);
  }

  status(): BackendStatus {
    return { kind: this.kind, generation: this.activeId };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
