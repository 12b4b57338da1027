/**
 * The rebuild job's state (state, model, progress), persisted in `<dataDir>/jobs/rebuild.json`
 * so that it outlives the process: a client that got 202 learns the outcome even across a
 * restart, and a rebuild cut off by a crash is reported as failed, with the reason, instead of
 * being forgotten. (The old index kept serving throughout, so nothing is lost but the work.)
 *
 * Writes are atomic (temp file + rename) and applied in order, so a stale progress write never
 * lands after the final state. Progress is written at most once per `progressEveryMs`.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../../index/shared/fsutil.ts";

export interface RebuildStatus {
  state: "idle" | "running" | "succeeded" | "failed";
  /** Absolute bundle directory (responses show it relative to the model roots). */
  modelDir?: string;
  done: number;
  total: number;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
}

const IDLE: RebuildStatus = { state: "idle", done: 0, total: 0 };

export class RebuildJob {
  readonly file: string;
  private status: RebuildStatus = { ...IDLE };
  private writes: Promise<void> = Promise.resolve();
  private lastProgressWrite = 0;

  constructor(dataDir: string, private readonly progressEveryMs = 1000) {
    this.file = path.join(dataDir, "jobs", "rebuild.json");
  }

  get current(): RebuildStatus {
    return { ...this.status };
  }

  get running(): boolean {
    return this.status.state === "running";
  }

  /** Read the last job; one still "running" was cut off when the process died: it failed. */
  async load(): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const saved = await readStatus(this.file);
    if (!saved) return;
    this.status = saved;
    if (saved.state !== "running") return;
    this.status = {
      ...saved,
      state: "failed",
      finishedAt: new Date().toISOString(),
      error: `interrupted: the server stopped (crash or restart) after ${saved.done} of ${saved.total} images; ` +
        "the previous index kept serving. POST /v1/index/rebuild to run it again",
    };
    console.warn(`rebuild: ${this.status.error}`);
    await this.persist();
  }

  /** Mark a job running (synchronously, so a second request sees it) and persist it. */
  async begin(modelDir: string, total: number): Promise<void> {
    this.status = { state: "running", modelDir, done: 0, total, startedAt: new Date().toISOString() };
    this.lastProgressWrite = Date.now();
    try {
      await this.persist();
    } catch (err) {
      // Not durable, so not started: a 202 must mean the outcome will be reported.
      this.status = { ...this.status, state: "failed", finishedAt: new Date().toISOString(), error: `could not persist the job: ${String(err)}` };
      throw err;
    }
  }

  progress(done: number, total = this.status.total): void {
    this.status.total = total;
    this.status.done = Math.min(done, total);
    if (Date.now() - this.lastProgressWrite < this.progressEveryMs) return;
    this.lastProgressWrite = Date.now();
    this.persist().catch(() => undefined); // logged by persist; the next write retries
  }

  finish(state: "succeeded" | "failed", error?: string): Promise<void> {
    this.status = { ...this.status, state, finishedAt: new Date().toISOString() };
    if (error !== undefined) this.status.error = error;
    return this.persist().catch(() => undefined);
  }

  /** Queue a write of the current state; resolves when it (and every earlier one) is on disk. */
  private persist(): Promise<void> {
    const snapshot = JSON.stringify(this.status);
    const write = this.writes.then(() => writeFileAtomic(this.file, `${snapshot}\n`));
    this.writes = write.catch((err: unknown) => console.warn(`rebuild: could not persist the job state: ${String(err)}`));
    return write;
  }
}

async function readStatus(file: string): Promise<RebuildStatus | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<RebuildStatus>;
    const states = ["idle", "running", "succeeded", "failed"];
    if (typeof value.state !== "string" || !states.includes(value.state)) throw new Error("no valid state");
    if (typeof value.done !== "number" || typeof value.total !== "number") throw new Error("no progress");
    return value as RebuildStatus;
  } catch (err) {
    console.warn(`rebuild: ignoring unreadable ${file}: ${(err as Error).message}`);
    return undefined;
  }
}
