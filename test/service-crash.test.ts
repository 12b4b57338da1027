/**
 * kill -9 of the real server (server/main.ts in a child process) in the middle of a rebuild:
 * after a restart the last complete index serves, with its model, and nothing is corrupt (a
 * later rebuild still succeeds).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { testBundle } from "./helpers/bundle.ts";
import { makeGallery, removeTempDirs, tempDir } from "./helpers/service-app.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const children: ChildProcess[] = [];
after(async () => {
  children.forEach((c) => c.kill("SIGKILL"));
  await removeTempDirs();
});

/** Start server/main.ts; resolves with its base URL once it listens. */
function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server/main.ts")], {
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let log = "";
    const onData = (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(log);
      if (m) resolve({ child, url: m[1]! });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    child.on("exit", (code) => reject(new Error(`server exited ${code}:\n${log}`)));
  });
}

async function json(url: string, init?: RequestInit): Promise<any> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.json() };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

test("kill -9 during a rebuild: restart serves the last complete index", { timeout: 180_000 }, async () => {
  const [tiny, small] = await Promise.all([testBundle(), testBundle({ model: "random:small" })]);
  const env = {
    MODEL_DIR: tiny,
    MODEL_ROOTS: [path.dirname(tiny), path.dirname(small)].join(path.delimiter),
    GALLERY_DIR: await makeGallery(40),
    DATA_DIR: await tempDir("crash-data"),
    BATCH_SIZE: "1",
  };
  let server = await startServer(env);
  const ready = await waitFor("ready", async () => {
    const r = await json(`${server.url}/readyz`);
    return r.status === 200 ? r.body : undefined;
  });
  const search = async (url: string) => (await json(`${url}/v1/search`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ query: "four dots", k: 5 }),
  }));
  const reference = await search(server.url);
  assert.equal(reference.status, 200);

  const started = await json(`${server.url}/v1/index/rebuild`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ modelDir: small }),
  });
  assert.equal(started.status, 202);
  await waitFor("rebuild progress", async () => {
    const s = await json(`${server.url}/v1/index`);
    return s.body.rebuild.done > 0 ? true : undefined;
  });
  await killed(server.child);

  server = await startServer(env);
  const after = await waitFor("ready after restart", async () => {
    const r = await json(`${server.url}/readyz`);
    return r.status === 200 ? r.body : undefined;
  });
  assert.equal(after.modelId, ready.modelId);
  assert.equal(after.indexBuild, ready.indexBuild);
  const again = await search(server.url);
  assert.deepEqual(again.body, reference.body);
  const status = await json(`${server.url}/v1/index`);
  assert.equal(status.body.size, 40);
  // The job was persisted: the client that got 202 learns that it failed, and why.
  assert.equal(status.body.rebuild.state, "failed");
  assert.match(status.body.rebuild.error, /interrupted/);

  // Nothing left half-written: the interrupted rebuild can be run again to completion.
  await json(`${server.url}/v1/index/rebuild`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ modelDir: small }),
  });
  const done = await waitFor("rebuild", async () => {
    const s = await json(`${server.url}/v1/index`);
    return s.body.rebuild.state === "running" ? undefined : s.body;
  });
  assert.equal(done.rebuild.state, "succeeded");
  assert.equal(done.size, 40);
  await killed(server.child);
});
