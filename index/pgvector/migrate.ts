/**
 * Versioned SQL migrations, applied on start: `migrations/NNNN_name.sql`, each once, in order,
 * in one transaction under an advisory lock (two processes starting together apply them once).
 * An applied file whose text changed since is refused: the schema would not be what it says.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");
/** Arbitrary, fixed: the advisory lock key of countclip's migrations. */
const LOCK_KEY = 0x636c6970;
/** HNSW indexes arrived in pgvector 0.5.0. */
export const MIN_PGVECTOR = [0, 5, 0] as const;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function migrations(dir = DIR): Migration[] {
  return readdirSync(dir)
    .map((file) => /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => {
      const sql = readFileSync(path.join(dir, m[0]), "utf8");
      return { version: Number(m[1]), name: m[2]!, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    })
    .sort((a, b) => a.version - b.version);
}

/** Apply pending migrations; returns the versions applied now. */
export async function migrate(pool: pg.Pool, list = migrations()): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS countclip_schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Map((await client.query<{ version: number; checksum: string }>("SELECT version, checksum FROM countclip_schema_migrations")).rows.map((r) => [r.version, r.checksum]));
    for (const m of list) {
      const checksum = done.get(m.version);
      if (checksum !== undefined) {
        if (checksum !== m.checksum) throw new Error(`migration ${m.version}_${m.name}.sql changed after it was applied`);
        continue;
      }
      await client.query(m.sql);
      await client.query("INSERT INTO countclip_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [m.version, m.name, m.checksum]);
      applied.push(m.version);
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  await checkExtension(pool);
  return applied;
}

async function checkExtension(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ extversion: string }>("SELECT extversion FROM pg_extension WHERE extname = 'vector'");
  const version = rows[0]?.extversion;
  if (!version) throw new Error("the pgvector extension is not installed in this database (CREATE EXTENSION vector)");
  const parts = version.split(".").map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < 3; i++) {
    const have = parts[i] ?? 0;
    if (have > MIN_PGVECTOR[i]!) break;
    if (have < MIN_PGVECTOR[i]!) throw new Error(`pgvector ${version} is too old: countclip needs ${MIN_PGVECTOR.join(".")} or later (HNSW indexes)`);
  }
  return version;
}
