/**
 * Running the Python reference (training/.venv) from TypeScript tests: JSON in on stdin, JSON
 * out on stdout. Tests skip, with the reason, when the venv or the shared data is absent.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT, VENV_PYTHON } from "./bundle.ts";

export const SHARED_DIR = path.resolve(REPO_ROOT, "..", "shared");

export function pythonUnavailableReason(): string | null {
  return existsSync(VENV_PYTHON) ? null : "training/.venv is not installed";
}

/** Runs `python args...` in the repo root with `input` as JSON on stdin; parses stdout as JSON. */
export function runPythonJson(args: string[], input: unknown, timeoutMs = 180_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(VENV_PYTHON, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, OMP_NUM_THREADS: "1", TOKENIZERS_PARALLELISM: "false", PYTHONIOENCODING: "utf-8" },
      stdio: ["pipe", "pipe", "pipe"],
      timeout: timeoutMs,
    });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => { err = (err + c.toString()).slice(-4000); });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`python ${args.join(" ")} exited ${code}:\n${err}`));
      try {
        resolve(JSON.parse(Buffer.concat(out).toString("utf8")));
      } catch (e) {
        reject(new Error(`python ${args.join(" ")} printed invalid JSON: ${(e as Error).message}\n${err}`));
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}

/** CountBench captions from ../shared, or null when the shared data is absent. */
export function countBenchCaptions(): string[] | null {
  const file = path.join(SHARED_DIR, "countbench", "CountBench.json");
  if (!existsSync(file)) return null;
  const entries = JSON.parse(readFileSync(file, "utf8")) as Array<{ text: string }>;
  return entries.map((e) => e.text);
}

/** LAION captions from ../shared (first `limit`), or null when absent. */
export function laionCaptions(limit = Infinity): string[] | null {
  const file = path.join(SHARED_DIR, "captions", "laion-captions.jsonl");
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
  return lines.slice(0, limit).map((l) => (JSON.parse(l) as { text: string }).text);
}
