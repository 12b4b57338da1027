/**
 * Micro-batching of query embeddings: while one text-encoder run is in flight, arriving
 * queries wait and then go together in the next run. An idle server answers a lone query at
 * once (no timer, no added latency, unless a window is configured); a loaded one amortises
 * each ONNX run over many queries.
 *
 * Back-pressure: the batcher knows how long its runs take (a moving average) and how many
 * runs are queued ahead, so it can tell a newcomer how long it would wait. A text that would
 * wait longer than the budget is refused at once (OverloadedError: 503 with Retry-After), so
 * under excess load the server answers what it can within the budget and refuses the rest in
 * microseconds, instead of letting every request's latency grow to seconds.
 */
import { Problem } from "./problem.ts";

interface Pending {
  text: string;
  signal?: AbortSignal;
  resolve: (vector: Float32Array) => void;
  reject: (err: unknown) => void;
}

export interface BatcherOptions {
  /** Texts per encoder run. */
  maxBatch: number;
  /** An idle batcher waits this long after a first text for company (0: runs it at once). */
  windowMs: number;
  /** Refuse a text whose estimated wait before its run starts exceeds this (0: never refuse). */
  maxWaitMs: number;
}

export const DEFAULT_BATCHER: BatcherOptions = { maxBatch: 32, windowMs: 0, maxWaitMs: 0 };

/** Weight of the newest run in the moving average of run times. */
const EWMA_ALPHA = 0.2;

/** 503 Service Unavailable with the seconds after which a retry is likely to be served. */
export class OverloadedError extends Problem {
  constructor(readonly waitMs: number, readonly budgetMs: number) {
    super(503, "Overloaded", `the query queue would make this request wait about ${Math.round(waitMs)} ms, more than this server's budget of ${budgetMs} ms (MAX_QUEUE_WAIT_MS); retry later`);
  }

  /** Whole seconds (HTTP's Retry-After unit), at least 1. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.waitMs / 1000));
  }
}

export class TextBatcher {
  private queue: Pending[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private runStarted = 0;
  /** Moving average of a run's duration (ms); undefined until the first run ends. */
  private runMs: number | undefined;
  private readonly options: BatcherOptions;
  refused = 0;

  constructor(
    private readonly embedTexts: (texts: string[]) => Promise<Float32Array[]>,
    options: Partial<BatcherOptions> = {},
    /** Milliseconds, monotonic (a test passes its own). */
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.options = { ...DEFAULT_BATCHER, ...options };
  }

  /**
   * Embed `text` in the next run. When `signal` aborts before that run starts (the client went
   * away), the text is dropped, so an overloaded server sheds abandoned work instead of
   * computing answers nobody reads. Rejects at once with OverloadedError when the wait would
   * exceed the budget.
   */
  embed(text: string, signal?: AbortSignal): Promise<Float32Array> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const budget = this.options.maxWaitMs;
    if (budget > 0) {
      const wait = this.estimatedWaitMs();
      if (wait > budget) {
        this.refused++;
        return Promise.reject(new OverloadedError(wait, budget));
      }
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ text, signal, resolve, reject });
      this.schedule();
    });
  }

  get pending(): number {
    return this.queue.length;
  }

  /**
   * How long a text arriving now would wait in the queue before its own run starts: the rest
   * of the run in flight, then one run per full batch queued ahead of it. Its own run is not
   * counted, so an idle batcher always admits (0), whatever its last runs cost: refusing at an
   * idle server would help nobody, and the average would never be renewed.
   */
  estimatedWaitMs(now = this.clock()): number {
    if (this.runMs === undefined || !this.running) return 0;
    const inFlight = Math.max(0, this.runMs - (now - this.runStarted));
    return inFlight + Math.floor(this.queue.length / this.options.maxBatch) * this.runMs;
  }

  private schedule(): void {
    if (this.running) return;
    if (this.options.windowMs === 0 || this.queue.length >= this.options.maxBatch) {
      this.pump();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, this.options.windowMs);
  }

  private pump(): void {
    if (this.running) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.queue = this.queue.filter((p) => {
      if (p.signal?.aborted) p.reject(p.signal.reason);
      return !p.signal?.aborted;
    });
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatch);
    this.running = true;
    this.runStarted = this.clock();
    this.embedTexts(batch.map((p) => p.text))
      .then((vectors) => batch.forEach((p, i) => p.resolve(vectors[i]!)), (err: unknown) => batch.forEach((p) => p.reject(err)))
      .finally(() => {
        const ms = this.clock() - this.runStarted;
        this.runMs = this.runMs === undefined ? ms : this.runMs + EWMA_ALPHA * (ms - this.runMs);
        this.running = false;
        // Whatever queued during the run has waited long enough: no window before it.
        this.pump();
      });
  }
}
