import type { components } from "../api/types.gen.ts";

/**
 * Progress of a bulk import (POST /v1/index/import): done/total and rate, reported on
 * GET /v1/index and logged every few seconds. One import runs at a time.
 */
export type ImportStatus = components["schemas"]["ImportState"];

const LOG_EVERY_MS = 5000;

export class ImportJob {
  private status: ImportStatus = { state: "idle", done: 0, total: 0, rate: 0 };
  private started = 0;
  private lastLog = 0;

  get current(): ImportStatus {
    return { ...this.status };
  }

  get running(): boolean {
    return this.status.state === "running";
  }

  begin(total: number): void {
    if (this.running) throw new Error("an import is already running");
    this.started = performance.now();
    this.lastLog = this.started;
    this.status = { state: "running", done: 0, total, rate: 0, startedAt: new Date().toISOString() };
  }

  progress(done: number): void {
    const now = performance.now();
    this.status.done = Math.min(done, this.status.total);
    this.status.rate = this.status.done / Math.max((now - this.started) / 1000, 1e-3);
    if (now - this.lastLog >= LOG_EVERY_MS) {
      this.lastLog = now;
      console.log(`import: ${this.status.done} of ${this.status.total} vectors (${this.status.rate.toFixed(0)}/s)`);
    }
  }

  finish(state: "succeeded" | "failed", error?: string): void {
    if (state === "succeeded") this.progress(this.status.total);
    this.status = { ...this.status, state, finishedAt: new Date().toISOString() };
    if (error !== undefined) this.status.error = error;
    console.log(`import ${state}: ${this.status.done} of ${this.status.total} vectors (${this.status.rate.toFixed(0)}/s)${error ? `: ${error}` : ""}`);
  }
}
