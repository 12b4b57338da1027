/**
 * Micro-batching of query embeddings: while one text-encoder run is in flight, arriving
 * queries wait and then go together in the next run. An idle server answers a lone query at
 * once (no timer, no added latency); a loaded one amortises each ONNX run over many queries.
 */
interface Pending {
  text: string;
  signal?: AbortSignal;
  resolve: (vector: Float32Array) => void;
  reject: (err: unknown) => void;
}

export class TextBatcher {
  private queue: Pending[] = [];
  private running = false;

  constructor(private readonly embedTexts: (texts: string[]) => Promise<Float32Array[]>, private readonly maxBatch = 32) {}

  /**
   * Embed `text` in the next run. When `signal` aborts before that run starts (the client went
   * away), the text is dropped, so an overloaded server sheds abandoned work instead of
   * computing answers nobody reads.
   */
  embed(text: string, signal?: AbortSignal): Promise<Float32Array> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      this.queue.push({ text, signal, resolve, reject });
      this.pump();
    });
  }

  get pending(): number {
    return this.queue.length;
  }

  private pump(): void {
    if (this.running) return;
    this.queue = this.queue.filter((p) => {
      if (p.signal?.aborted) p.reject(p.signal.reason);
      return !p.signal?.aborted;
    });
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.running = true;
    this.embedTexts(batch.map((p) => p.text))
      .then((vectors) => batch.forEach((p, i) => p.resolve(vectors[i]!)), (err: unknown) => batch.forEach((p) => p.reject(err)))
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }
}
