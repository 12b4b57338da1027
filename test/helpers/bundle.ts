/**
 * Test fixture: a small random model bundle exported by the real `countclip export`, built once
 * per machine and content key, then reused by every test file (and across runs).
 *
 *   const dir = await testBundle();                 // random:tiny
 *   const other = await testBundle({ model: "random:small" });
 *   const dir = await testBundleOrSkip(t);          // inside a node:test test: skips when unavailable
 *
 * The cache key covers the model spec, extra export arguments and the source of the Python code
 * that writes bundles, so editing the exporter invalidates stale bundles. Bundles are built into
 * a temporary directory and renamed into place, so a killed build never leaves a half bundle;
 * a lock directory keeps parallel test processes from exporting the same bundle twice.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const VENV_BIN = path.join(REPO_ROOT, "training", ".venv", "bin");
export const VENV_PYTHON = path.join(VENV_BIN, "python");
const COUNTCLIP = path.join(VENV_BIN, "countclip");
const EXPORTER = path.join(REPO_ROOT, "training", "countclip", "bundle", "export.py");
const CACHE_ROOT = process.env["COUNTCLIP_TEST_CACHE"] ?? path.join(os.tmpdir(), "countclip-test-bundles");
const LOCK_STALE_MS = 10 * 60_000;
const STALE_MS = 60 * 60_000;
const EXPORT_TIMEOUT_MS = 10 * 60_000;

export interface TestBundleOptions {
  /** Model spec passed to `countclip export --model` (default "random:tiny"). */
  model?: string;
  /** Extra arguments appended to the export command. */
  args?: string[];
}

/** Why no bundle can be built here, or null when it can. */
export function bundleUnavailableReason(): string | null {
  if (!existsSync(COUNTCLIP)) return `no ${path.relative(REPO_ROOT, COUNTCLIP)} (Python venv not installed)`;
  if (!existsSync(EXPORTER)) return "training/countclip/bundle/export.py does not exist yet";
  return null;
}

/** The Python that writes bundles: every module of countclip/bundle/ and countclip/model/. */
function sourceDigest(): string {
  const hash = createHash("sha256");
  const root = path.join(REPO_ROOT, "training", "countclip");
  for (const dir of ["bundle", "model"]) {
    const names = existsSync(path.join(root, dir)) ? readdirSync(path.join(root, dir)).filter((n) => n.endsWith(".py")).sort() : [];
    for (const name of names) hash.update(`${dir}/${name}`).update(readFileSync(path.join(root, dir, name)));
  }
  return hash.digest("hex");
}

function cacheKey(model: string, args: readonly string[]): string {
  const hash = createHash("sha256").update(JSON.stringify([model, args, sourceDigest()])).digest("hex");
  return `${model.replace(/[^a-zA-Z0-9_-]+/g, "_")}-${hash.slice(0, 16)}`;
}

function runExport(model: string, args: readonly string[], outDir: string): Promise<void> {
  const argv = ["export", "--model", model, "--out", outDir, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(COUNTCLIP, argv, {
      cwd: REPO_ROOT,
      env: { ...process.env, OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1", TOKENIZERS_PARALLELISM: "false" },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: EXPORT_TIMEOUT_MS,
    });
    let log = "";
    const keep = (chunk: Buffer) => { log = (log + chunk.toString()).slice(-8000); };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`countclip ${argv.join(" ")} failed (${signal ?? `exit ${code}`}):\n${log}`));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function acquireLock(lock: string): Promise<boolean> {
  try {
    await mkdir(lock);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const info = await stat(lock).catch(() => null);
    if (info && Date.now() - info.mtimeMs > LOCK_STALE_MS) await rmdir(lock).catch(() => undefined);
    return false;
  }
}

async function build(final: string, model: string, args: readonly string[]): Promise<void> {
  const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
  try {
    await runExport(model, args, tmp);
    await rename(tmp, final);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  await pruneStale(final);
}

/**
 * Bundles of the same model built from older exporter sources are dead weight (a ViT-B/32 one
 * is ~600 MB). Remove those not touched for STALE_MS: no test run lasts that long.
 */
async function pruneStale(current: string): Promise<void> {
  const prefix = path.basename(current).replace(/-[0-9a-f]{16}$/, "-");
  for (const name of await readdir(CACHE_ROOT).catch(() => [] as string[])) {
    const full = path.join(CACHE_ROOT, name);
    if (full === current || !name.startsWith(prefix) || !/^[0-9a-f]{16}$/.test(name.slice(prefix.length))) continue;
    const info = await stat(full).catch(() => null);
    if (info && Date.now() - info.mtimeMs > STALE_MS) await rm(full, { recursive: true, force: true });
  }
}

const inProcess = new Map<string, Promise<string>>();

/** Path of a cached bundle for `options`, exporting it first if needed. */
export function testBundle(options: TestBundleOptions = {}): Promise<string> {
  const model = options.model ?? "random:tiny";
  const args = options.args ?? [];
  const key = cacheKey(model, args);
  let pending = inProcess.get(key);
  if (!pending) {
    pending = ensureBundle(key, model, args);
    inProcess.set(key, pending);
    pending.catch(() => inProcess.delete(key));
  }
  return pending;
}

async function ensureBundle(key: string, model: string, args: readonly string[]): Promise<string> {
  const reason = bundleUnavailableReason();
  if (reason) throw new Error(`cannot build a test bundle: ${reason}`);
  await mkdir(CACHE_ROOT, { recursive: true });
  const final = path.join(CACHE_ROOT, key);
  const lock = `${final}.lock`;
  const deadline = Date.now() + EXPORT_TIMEOUT_MS + 60_000;
  while (!existsSync(path.join(final, "manifest.json"))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for test bundle ${final}`);
    if (await acquireLock(lock)) {
      try {
        if (!existsSync(path.join(final, "manifest.json"))) await build(final, model, args);
      } finally {
        await rmdir(lock).catch(() => undefined);
      }
    } else {
      await sleep(250);
    }
  }
  return final;
}

interface SkippableContext {
  skip(message?: string): void;
}

/** For use inside a test: the bundle path, or null after marking the test skipped. */
export async function testBundleOrSkip(t: SkippableContext, options: TestBundleOptions = {}): Promise<string | null> {
  const reason = bundleUnavailableReason();
  if (reason) {
    t.skip(`no test bundle: ${reason}`);
    return null;
  }
  return testBundle(options);
}
