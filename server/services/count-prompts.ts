/**
 * The ten count prompts of a noun ("a photo of one cat", "a photo of two cats", ...) and an
 * LRU cache of their text embeddings per model, so a count-aware request embeds only its
 * query once the noun has been seen.
 */
import { numberWord, pluralize, singularize } from "../counts/counts.ts";
import type { Embedder } from "../model/types.ts";
import { Lru } from "../lib/lru.ts";
import { MAX_COUNT } from "./scoring.ts";

/** Used when a text states a count but names no noun ("show me three"). */
export const FALLBACK_NOUN: NounForms = { plural: "objects", singular: "object" };

export interface NounForms {
  plural: string;
  singular: string;
}

/**
 * Both forms of the noun a count applies to. The count core reports the noun as written and
 * its singular; a noun written after "one" is already singular, so its plural is derived.
 */
export function nounForms(noun: string, singular: string | null | undefined, count: number | null): NounForms {
  const sing = singular?.trim() || noun;
  if (noun !== sing) return { plural: noun, singular: sing };
  // Written singular: after "one" derive the plural; after a larger count the noun is
  // number-invariant ("three sheep").
  return { plural: count !== null && count > 1 ? noun : pluralize(sing), singular: sing };
}

/** Forms of a bare noun supplied by a client (POST /v1/count), in either number. */
export function formsOfBareNoun(noun: string): NounForms {
  const trimmed = noun.trim().replace(/\s+/g, " ");
  const singular = singularize(trimmed);
  return { singular, plural: singular !== trimmed ? trimmed : pluralize(singular) };
}

export function countPrompts(forms: NounForms): string[] {
  return Array.from({ length: MAX_COUNT }, (_, i) => {
    const n = i + 1;
    return `a photo of ${numberWord(n)} ${n === 1 ? forms.singular : forms.plural}`;
  });
}

/** Count-prompt embeddings per noun for one embedder; concurrent misses share one computation. */
export class CountPromptCache {
  private readonly lru: Lru<string, Promise<Float32Array[]>>;
  hits = 0;
  misses = 0;

  constructor(private readonly embedder: Embedder, capacity: number) {
    this.lru = new Lru(capacity);
  }

  get(forms: NounForms): Promise<Float32Array[]> {
    const key = `${forms.singular}\u0000${forms.plural}`.toLowerCase();
    const cached = this.lru.get(key);
    if (cached) {
      this.hits++;
      return cached;
    }
    this.misses++;
    const pending = this.embedder.embedTexts(countPrompts(forms));
    // A failed embedding must not poison the cache.
    pending.catch(() => this.lru.delete(key));
    this.lru.set(key, pending);
    return pending;
  }
}
