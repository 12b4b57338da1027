/**
 * Micro-batching of query embeddings: while one text-encoder run is in flight, arriving
 * queries wait and then go together in the next run. An idle server answers a lone query at
 * once (no timer, no added latency); a loaded one amortises each ONNX run over many queries.
 */
interface Pending {
  text: string;
  resolve: (vector: Float32Array) => void;
  reject: (err: unknown) => void;
}

export class TextBatcher {
  private queue: Pending[] = [];
  private running = false;

  constructor(private readonly embedTexts: (texts: string[]) => Promise<Float32Array[]>, private readonly maxBatch = 32) {}

  embed(text: string): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.queue.push({ text, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
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
