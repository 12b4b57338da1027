/**
 * The onnxruntime runtime: ONNX sessions, run in this thread or in a worker thread of their own
 * (runtime-worker.ts).
 *
 * onnxruntime-node's `run()` computes on the calling thread (it only defers the call with
 * setImmediate), so a text or vision run in the event loop's thread stops the service for its
 * duration: no request is parsed, no index searched, no response written. In a worker the
 * encoder computes on the other core(s) while the event loop keeps serving, and a rerank's
 * vision batch no longer stalls every search behind it. Tensors cross by structured clone
 * (a query batch is a few kB; 8 images 4.8 MB, about a millisecond).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import * as ort from "onnxruntime-node";

/** An input tensor. */
export interface TensorData {
  type: "int64" | "float32";
  data: BigInt64Array | Float32Array;
  dims: readonly number[];
}

/** An output tensor as the graph produced it (the caller checks its type and shape). */
export interface OutputData {
  type: string;
  data: unknown;
  dims: readonly number[];
}

export interface OnnxRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the graph; resolves with the named output (undefined when the graph has none by that name). */
  run(feeds: Record<string, TensorData>, output: string): Promise<OutputData | undefined>;
  release(): Promise<void>;
}

export interface SessionSettings {
  threads: number;
  /** Let idle intra-op threads spin for work (ORT's default); off, they sleep and leave the core to others. */
  spinning: boolean;
  /** Run the session in a worker thread (see above). */
  worker: boolean;
}

export function sessionOptions(settings: SessionSettings): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: settings.threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
    // Spinning threads burn a core between runs; on a small machine that core is the event
    // loop's (HTTP, JSON, the next batch's tokenising), so they sleep unless asked otherwise.
    extra: { session: { intra_op: { allow_spinning: settings.spinning ? "1" : "0" } } },
  };
}

export function createRunner(file: string, settings: SessionSettings): Promise<OnnxRunner> {
  return settings.worker ? WorkerRunner.create(file, settings) : InThreadRunner.create(file, settings);
}

/** Feeds as ort.Tensors (shared with the worker side). */
export function toTensors(feeds: Record<string, TensorData>): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor(t.type, t.data, t.dims)]));
}

/** One run, on whichever thread calls it; plain data out, so it can cross to another thread. */
export async function runSession(session: ort.InferenceSession, feeds: Record<string, TensorData>, output: string): Promise<OutputData | undefined> {
  const tensor = (await session.run(toTensors(feeds)))[output];
  return tensor ? { type: tensor.type, data: tensor.data, dims: [...tensor.dims] } : undefined;
}

class InThreadRunner implements OnnxRunner {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async create(file: string, settings: SessionSettings): Promise<OnnxRunner> {
    return new InThreadRunner(await ort.InferenceSession.create(file, sessionOptions(settings)));
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  run(feeds: Record<string, TensorData>, output: string): Promise<OutputData | undefined> {
    return runSession(this.session, feeds, output);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

const WORKER_ENTRY = new URL(`./runtime-worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * Run from TypeScript sources, the worker needs tsx's loader, which a worker does not inherit
 * from `--import tsx` (Node 20): a two-line bootstrap registers it, then loads the entry.
 */
function startWorker(workerData: unknown): Worker {
  if (!WORKER_ENTRY.pathname.endsWith(".ts")) return new Worker(WORKER_ENTRY, { workerData });
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_ENTRY.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** Messages of runtime-worker.ts. */
export type WorkerReply =
  | { kind: "ready"; inputNames: string[]; outputNames: string[] }
  | { kind: "failed"; message: string }
  | { kind: "result"; id: number; output: OutputData | undefined }
  | { kind: "error"; id: number; message: string };

class WorkerRunner implements OnnxRunner {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (t: OutputData | undefined) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;

  private constructor(private readonly worker: Worker, readonly inputNames: readonly string[], readonly outputNames: readonly string[]) {
    worker.on("message", (reply: WorkerReply) => this.settle(reply));
    const fail = (err: Error) => {
      this.dead ??= err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`onnxruntime worker exited (${code})`)));
  }

  static create(file: string, settings: SessionSettings): Promise<OnnxRunner> {
    const worker = startWorker({ file, options: sessionOptions(settings) });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      worker.once("error", onError);
      worker.once("message", (reply: WorkerReply) => {
        worker.off("error", onError);
        if (reply.kind === "ready") resolve(new WorkerRunner(worker, reply.inputNames, reply.outputNames));
        else {
          void worker.terminate();
          reject(new Error(reply.kind === "failed" ? reply.message : `unexpected first message from the onnxruntime worker: ${reply.kind}`));
        }
      });
    });
  }

  private settle(reply: WorkerReply): void {
    if (reply.kind !== "result" && reply.kind !== "error") return;
    const waiter = this.waiting.get(reply.id);
    this.waiting.delete(reply.id);
    if (reply.kind === "result") waiter?.resolve(reply.output);
    else waiter?.reject(new Error(reply.message));
  }

  run(feeds: Record<string, TensorData>, output: string): Promise<OutputData | undefined> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ kind: "run", id, feeds, output });
    });
  }

  async release(): Promise<void> {
    this.dead ??= new Error("onnxruntime worker released");
    await this.worker.terminate();
  }
}
