/**
 * One immutable pairing of a model and the index its vectors came from. Requests lease the
 * current Serving for their whole lifetime, so a response is computed wholly by one model and
 * one index build even if a rebuild swaps in a new Serving meanwhile; a retired Serving closes
 * its model once its last lease ends.
 */
import type { IndexView } from "../../index/backend.ts";
import { CountPromptCache } from "./count-prompts.ts";
import { HubnessCorrection, resolveHubness } from "./hubness.ts";
import type { Embedder } from "../model/types.ts";
import { TextBatcher } from "../lib/text-batcher.ts";

/** What a Serving takes from the configuration (a Config satisfies it). */
export interface ServingOptions {
  countCacheSize: number;
  textBatchMax: number;
  batchWindowMs: number;
  maxQueueWaitMs: number;
  hubnessBeta: number | null;
  hubnessCacheSize: number;
}

export class Serving {
  readonly countPrompts: CountPromptCache;
  /** The bundle's hubness correction of count-aware ranking, or null when it has none (or HUBNESS_BETA=0). */
  readonly hubness: HubnessCorrection | null;
  private readonly queries: TextBatcher;
  private leases = 0;
  private retired = false;

  constructor(
    readonly embedder: Embedder,
    /** The one build this Serving answers from, whatever the backend switches to meanwhile. */
    readonly index: IndexView,
    options: ServingOptions,
  ) {
    this.countPrompts = new CountPromptCache(embedder, options.countCacheSize);
    const hubness = resolveHubness(embedder.manifest, options.hubnessBeta);
    this.hubness = hubness ? new HubnessCorrection(embedder, hubness, options.hubnessCacheSize) : null;
    this.queries = new TextBatcher((texts) => embedder.embedTexts(texts),
      { maxBatch: options.textBatchMax, windowMs: options.batchWindowMs, maxWaitMs: options.maxQueueWaitMs });
  }

  /** Embed one query or prompt, batched with concurrent ones; rejects with OverloadedError past the wait budget. */
  embedQuery(text: string, signal?: AbortSignal): Promise<Float32Array> {
    return this.queries.embed(text, signal);
  }

  /** Queries refused by back-pressure since this Serving started (by the batcher or before it). */
  get refusedQueries(): number {
    return this.queries.refused;
  }

  /** Count a request refused before it reached the batcher (routes/search.ts). */
  recordRefusal(): void {
    this.queries.refused++;
  }

  /** How long a query arriving now would wait for its embedding, ms (the back-pressure estimate). */
  get queryWaitMs(): number {
    return this.queries.estimatedWaitMs();
  }

  /** Full (re)builds so far; named in every response. */
  get build(): number {
    return this.index.origin.build;
  }

  /** Model dir configured at start when this index was built (restart decides by it). */
  get startModelDir(): string {
    return this.index.origin.startModelDir;
  }

  get modelId(): string {
    return this.embedder.modelId;
  }

  get modelDir(): string {
    return this.embedder.bundleDir;
  }

  /** Use this Serving until `release` is called. */
  lease(): () => void {
    this.leases++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.leases--;
      this.closeIfIdle();
    };
  }

  /** Called when a newer Serving replaces this one; `closeModel: false` when it keeps the model. */
  retire({ closeModel = true } = {}): void {
    this.retired = closeModel;
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (this.retired && this.leases === 0) {
      this.embedder.close().catch((err: unknown) => console.warn(`closing retired model failed: ${String(err)}`));
    }
  }
}
