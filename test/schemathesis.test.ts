/**
 * The whole API fuzzed against openapi.yaml by schemathesis (installed into training/.venv by
 * `make setup`, training/pyproject.toml's dev extras): every check (`--checks all`), every
 * phase (examples, coverage, fuzzing, stateful: add -> get -> delete through the spec's links),
 * with an API key configured, against the real server (server/main.ts on a free loopback port,
 * the embedded default model, 12 gallery images). Any failure fails the test.
 * test/schemathesis_hooks.py puts real PNGs into half the generated uploads, so that the
 * stateful phase gets past the add; test/schemathesis.toml says which statuses mean "accepted".
 *
 * SCHEMATHESIS_EXAMPLES (default 10) sets the cases per operation; CI runs the default.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { REPO_ROOT, VENV_BIN, VENV_PYTHON } from "./helpers/bundle.ts";
import { DEFAULT_MODEL, smallDefaultGallery } from "./helpers/default-gallery.ts";
import { removeTempDirs, tempDir } from "./helpers/service-app.ts";

const SCHEMATHESIS = path.join(VENV_BIN, "schemathesis");
const KEY = "schemathesis-key";
const EXAMPLES = process.env["SCHEMATHESIS_EXAMPLES"] ?? "10";
const children: ChildProcess[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  await removeTempDirs();
});

/** Start server/main.ts; resolves with its base URL once /readyz answers 200. */
async function startServer(env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "server/main.ts")], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(log);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`server exited ${code}:\n${log}`)));
  });
  for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
    if ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200) return url;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server not ready:\n${log}`);
}

function run(command: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const hooks = path.join(REPO_ROOT, "test/schemathesis_hooks.py");
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", SCHEMATHESIS_HOOKS: hooks } });
    children.push(child);
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    child.once("exit", (code) => resolve({ code, output }));
  });
}

const unavailable = !existsSync(VENV_PYTHON) ? "no training/.venv (run make setup)" : undefined;

test("schemathesis --checks all, stateful phase included, finds no failure", { skip: unavailable, timeout: 600_000 }, async (t) => {
  assert.ok(existsSync(SCHEMATHESIS), `${SCHEMATHESIS} missing: run make setup (training/pyproject.toml dev extras)`);
  const url = await startServer({
    API_KEY: KEY,
    MODEL_DIR: DEFAULT_MODEL,
    GALLERY_DIR: await smallDefaultGallery(12),
    DATA_DIR: await tempDir("schemathesis-data"),
  });
  // Run in a temp dir: schemathesis keeps its example database and reports in the cwd.
  const cwd = await tempDir("schemathesis-run");
  const { code, output } = await run(SCHEMATHESIS, [
    "--config-file", path.join(REPO_ROOT, "test/schemathesis.toml"),
    "run", path.join(REPO_ROOT, "openapi.yaml"),
    "--url", url,
    "--checks", "all",
    "--phases", "examples,coverage,fuzzing,stateful",
    "--max-examples", EXAMPLES,
    "--header", `Authorization: Bearer ${KEY}`,
    "--seed", "22",
    "--workers", "1",
    "--generation-database", "none",
    "--no-color",
  ], cwd);
  const summary = output.slice(output.lastIndexOf("SUMMARY"));
  t.diagnostic(summary.split("\n").filter((l) => /Test cases|passed|failed|Stateful|Links/.test(l)).join(" | "));
  assert.equal(code, 0, output.slice(-12_000));
  assert.match(output, /Stateful/, "the stateful phase ran");
});
