/**
 * CLIP's byte-level BPE tokenizer, token-for-token identical to `transformers.CLIPTokenizer`
 * (tokenizers backend, transformers 5.x), which is what `countclip.model` tokenizes with.
 *
 * The pipeline, in the order the Rust `tokenizers` library applies it:
 *   1. added (special) tokens are cut out of the raw text ("<|endoftext|>" typed by a user
 *      becomes id 49407 there too — parity over hygiene);
 *   2. normalizer: NFC, every whitespace run -> one space, lowercase (per code point);
 *   3. pre-tokenizer: CLIP's split regex (keep matches, drop the rest), then ByteLevel's GPT-2
 *      regex inside each piece, then bytes -> GPT-2's printable unicode alphabet;
 *   4. BPE with end-of-word suffix "</w>" on each word's last symbol;
 *   5. truncate to context_length - 2, wrap as [bos] ids [eos].
 * The regexes use an explicit whitespace class: Oniguruma's Unicode `\s` (White_Space) and
 * JavaScript's `\s` disagree on U+0085 and U+FEFF.
 */
import { readFile } from "node:fs/promises";

/** Unicode White_Space, as Oniguruma's `\s` matches it (JS's `\s` adds U+FEFF, lacks U+0085). */
const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const WS_RUN = new RegExp(`[${WS}]+`, "gu");
const CLIP_SPLIT = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WS}\\p{L}\\p{N}]+`, "gu");
const GPT2_SPLIT = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`, "gu");
const END_OF_WORD = "</w>";
const WORD_CACHE_LIMIT = 50_000;

export class TokenizerError extends Error {
  override readonly name = "TokenizerError";
}

export interface Encoding {
  /** [bos, ...tokens, eos], at most contextLength long. */
  ids: number[];
}

export interface BatchEncoding {
  /** Row-major [batch, seqLen] ids, padded with padId. */
  inputIds: BigInt64Array;
  /** Row-major [batch, seqLen], 1 for real tokens, 0 for padding. */
  attentionMask: BigInt64Array;
  batch: number;
  seqLen: number;
}

interface AddedToken {
  content: string;
  id: number;
  normalized: boolean;
}

export interface TokenizerSpec {
  vocab: Map<string, number>;
  /** "left right" -> merge rank (lower merges first). */
  merges: Map<string, number>;
  addedTokens: AddedToken[];
  bosToken: string;
  eosToken: string;
  padToken: string;
  contextLength: number;
}

function bytesToUnicode(): string[] {
  const printable: number[] = [];
  const push = (from: number, to: number) => { for (let b = from; b <= to; b++) printable.push(b); };
  push(0x21, 0x7e);
  push(0xa1, 0xac);
  push(0xae, 0xff);
  const table: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  }
  return table;
}

const BYTE_CHARS = bytesToUnicode();
const encoder = new TextEncoder();

/**
 * Rust's per-char `to_lowercase`. String.prototype.toLowerCase agrees with it except for the one
 * context-sensitive mapping of the default algorithm, final sigma (U+03A3), so only text with a
 * capital sigma takes the slow per-code-point path.
 */
function lowercasePerCodePoint(text: string): string {
  if (!text.includes("\u03a3")) return text.toLowerCase();
  let out = "";
  for (const ch of text) out += ch.toLowerCase();
  return out;
}

function normalize(text: string): string {
  return lowercasePerCodePoint(text.normalize("NFC").replace(WS_RUN, " "));
}

function byteLevel(piece: string): string {
  let out = "";
  for (const byte of encoder.encode(piece)) out += BYTE_CHARS[byte]!;
  return out;
}

export class ClipTokenizer {
  readonly contextLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly cache = new Map<string, number[]>();
  private readonly rawAdded: AddedToken[];
  private readonly normalizedAdded: AddedToken[];

  constructor(private readonly spec: TokenizerSpec) {
    this.contextLength = spec.contextLength;
    if (spec.contextLength < 2) throw new TokenizerError(`context_length ${spec.contextLength} leaves no room for bos/eos`);
    this.bosId = this.idOf(spec.bosToken, "bos_token");
    this.eosId = this.idOf(spec.eosToken, "eos_token");
    this.padId = this.idOf(spec.padToken, "pad_token");
    // Longest first so that one added token that prefixes another never shadows it.
    const byLength = [...spec.addedTokens].sort((a, b) => b.content.length - a.content.length);
    this.rawAdded = byLength.filter((t) => !t.normalized);
    this.normalizedAdded = byLength.filter((t) => t.normalized);
  }

  private idOf(token: string, what: string): number {
    const added = this.spec.addedTokens.find((t) => t.content === token);
    const id = added?.id ?? this.spec.vocab.get(token);
    if (id === undefined) throw new TokenizerError(`${what} ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  /** One text -> [bos, ...bpe ids (truncated), eos]. */
  encode(text: string): Encoding {
    const ids: number[] = [];
    const room = this.contextLength - 2;
    this.encodeInto(text, ids, room);
    if (ids.length > room) ids.length = room;
    return { ids: [this.bosId, ...ids, this.eosId] };
  }

  /** Texts -> int64 tensors padded to the longest encoding in the batch (like padding="longest"). */
  encodeBatch(texts: readonly string[]): BatchEncoding {
    const encoded = texts.map((t) => this.encode(t).ids);
    const seqLen = Math.max(2, ...encoded.map((ids) => ids.length));
    const inputIds = new BigInt64Array(texts.length * seqLen).fill(BigInt(this.padId));
    const attentionMask = new BigInt64Array(texts.length * seqLen);
    encoded.forEach((ids, row) => {
      const base = row * seqLen;
      for (let i = 0; i < ids.length; i++) {
        inputIds[base + i] = BigInt(ids[i]!);
        attentionMask[base + i] = 1n;
      }
    });
    return { inputIds, attentionMask, batch: texts.length, seqLen };
  }

  /** Appends ids for `text` (no bos/eos); stops early once more than `limit` ids exist. */
  private encodeInto(text: string, out: number[], limit: number): void {
    for (const seg of splitAdded(text, this.rawAdded)) {
      if (typeof seg !== "string") { out.push(seg.id); continue; }
      for (const inner of splitAdded(normalize(seg), this.normalizedAdded)) {
        if (typeof inner !== "string") { out.push(inner.id); continue; }
        this.encodeNormalized(inner, out, limit);
      }
      if (out.length > limit) return;
    }
  }

  private encodeNormalized(text: string, out: number[], limit: number): void {
    for (const piece of text.match(CLIP_SPLIT) ?? []) {
      // ByteLevel's GPT-2 regex leaves every piece of CLIP's split whole (letter runs, single
      // digits, contractions, punctuation runs) except the literal special-token alternatives,
      // "<|startoftext|>" / "<|endoftext|>", which it cuts at "<|" and "|>".
      if (piece.startsWith("<|")) {
        for (const word of piece.match(GPT2_SPLIT) ?? []) this.pushWord(word, out);
      } else {
        this.pushWord(piece, out);
      }
      // Very long inputs: everything past the context is discarded anyway.
      if (out.length > limit) return;
    }
  }

  /** BPE ids of one pre-tokenized word, cached by the word itself. */
  private pushWord(word: string, out: number[]): void {
    let ids = this.cache.get(word);
    if (!ids) {
      ids = this.merge(byteLevel(word)).map((symbol) => this.symbolId(symbol));
      if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  }

  private symbolId(symbol: string): number {
    // Unknown symbols map to unk (= eos for CLIP), as tokenizers' BPE does with fuse_unk=false.
    // With a byte-level alphabet this only happens for a vocabulary missing base symbols.
    return this.spec.vocab.get(symbol) ?? this.eosId;
  }

  /** Classic BPE: repeatedly merge the lowest-ranked adjacent pair, all occurrences left to right. */
  private merge(word: string): string[] {
    const symbols = Array.from(word);
    symbols[symbols.length - 1] += END_OF_WORD;
    const ranks = this.spec.merges;
    while (symbols.length > 1) {
      let best = Infinity;
      let left = "";
      let right = "";
      for (let i = 0; i < symbols.length - 1; i++) {
        const rank = ranks.get(symbols[i]! + " " + symbols[i + 1]!);
        if (rank !== undefined && rank < best) { best = rank; left = symbols[i]!; right = symbols[i + 1]!; }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && symbols[i] === left && symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else {
          merged.push(symbols[i]!);
        }
      }
      symbols.splice(0, symbols.length, ...merged);
    }
    return symbols;
  }
}

/** Cuts exact occurrences of added tokens out of `text` (leftmost, longest first at a position). */
function splitAdded(text: string, tokens: readonly AddedToken[]): Array<string | AddedToken> {
  if (tokens.length === 0 || !tokens.some((t) => text.includes(t.content))) return [text];
  const out: Array<string | AddedToken> = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const hit = tokens.find((t) => text.startsWith(t.content, i));
    if (!hit) { i++; continue; }
    if (i > start) out.push(text.slice(start, i));
    out.push(hit);
    i += hit.content.length;
    start = i;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

// --- Loading -------------------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseVocab(raw: unknown, where: string): Map<string, number> {
  if (!isRecord(raw)) throw new TokenizerError(`${where}: vocab must be an object of token -> id`);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(raw)) {
    if (!Number.isSafeInteger(id)) throw new TokenizerError(`${where}: id of ${JSON.stringify(token)} is not an integer`);
    vocab.set(token, id as number);
  }
  return vocab;
}

function parseMerges(raw: unknown, where: string): Map<string, number> {
  if (!Array.isArray(raw)) throw new TokenizerError(`${where}: merges must be an array`);
  const merges = new Map<string, number>();
  raw.forEach((entry: unknown, rank) => {
    // tokenizers >= 0.20 writes ["a", "b"]; older files write "a b".
    const pair = Array.isArray(entry) ? entry : typeof entry === "string" ? entry.split(" ") : null;
    if (!pair || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      throw new TokenizerError(`${where}: merge #${rank} is not a pair of symbols`);
    }
    const key = `${pair[0]} ${pair[1]}`;
    if (!merges.has(key)) merges.set(key, rank);
  });
  return merges;
}

/** The pipeline this class implements; any other pipeline in a tokenizer.json is refused, not approximated. */
function checkPipeline(json: Record<string, unknown>): void {
  const model = json["model"];
  if (!isRecord(model) || model["type"] !== "BPE") throw new TokenizerError("tokenizer.json: model.type must be BPE");
  if (model["end_of_word_suffix"] !== END_OF_WORD) throw new TokenizerError('tokenizer.json: model.end_of_word_suffix must be "</w>" (CLIP BPE)');
  if (model["continuing_subword_prefix"] && model["continuing_subword_prefix"] !== "") {
    throw new TokenizerError("tokenizer.json: continuing_subword_prefix is not supported");
  }
  if (model["dropout"] !== null && model["dropout"] !== undefined) throw new TokenizerError("tokenizer.json: BPE dropout is not supported");
  const pre = JSON.stringify(json["pre_tokenizer"] ?? null);
  if (!pre.includes("ByteLevel") || !pre.includes("\\\\p{L}")) {
    throw new TokenizerError("tokenizer.json: pre_tokenizer is not CLIP's (Split regex + ByteLevel)");
  }
  const norm = JSON.stringify(json["normalizer"] ?? null);
  if (!norm.includes("Lowercase")) throw new TokenizerError("tokenizer.json: normalizer is not CLIP's (NFC, whitespace, Lowercase)");
}

function parseAddedTokens(raw: unknown): AddedToken[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new TokenizerError("tokenizer.json: added_tokens must be an array");
  return raw.map((t: unknown, i) => {
    if (!isRecord(t) || typeof t["content"] !== "string" || !Number.isSafeInteger(t["id"])) {
      throw new TokenizerError(`tokenizer.json: added_tokens[${i}] needs content and id`);
    }
    if (t["lstrip"] === true || t["rstrip"] === true || t["single_word"] === true) {
      throw new TokenizerError(`tokenizer.json: added token ${JSON.stringify(t["content"])} uses lstrip/rstrip/single_word, which is not supported`);
    }
    return { content: t["content"], id: t["id"] as number, normalized: t["normalized"] === true };
  });
}

interface TokenizerConfig {
  bosToken: string;
  eosToken: string;
  padToken: string;
}

function tokenString(value: unknown, fallback: string): string {
  if (typeof value === "string") return value;
  if (isRecord(value) && typeof value["content"] === "string") return value["content"];
  return fallback;
}

export function parseTokenizerConfig(raw: unknown): TokenizerConfig {
  const cfg = isRecord(raw) ? raw : {};
  const eosToken = tokenString(cfg["eos_token"], "<|endoftext|>");
  return {
    bosToken: tokenString(cfg["bos_token"], "<|startoftext|>"),
    eosToken,
    padToken: tokenString(cfg["pad_token"], eosToken),
  };
}

/** Builds a tokenizer from a parsed tokenizer.json (HF tokenizers format). */
export function tokenizerFromJson(json: unknown, config: unknown, contextLength: number): ClipTokenizer {
  if (!isRecord(json)) throw new TokenizerError("tokenizer.json: not a JSON object");
  checkPipeline(json);
  const model = json["model"] as Record<string, unknown>;
  return new ClipTokenizer({
    vocab: parseVocab(model["vocab"], "tokenizer.json"),
    merges: parseMerges(model["merges"], "tokenizer.json"),
    addedTokens: parseAddedTokens(json["added_tokens"]),
    ...parseTokenizerConfig(config),
    contextLength,
  });
}

/** Builds a tokenizer from vocab.json + merges.txt (the files CLIPTokenizer is built from). */
export function tokenizerFromVocabMerges(vocabJson: unknown, mergesTxt: string, config: unknown, contextLength: number): ClipTokenizer {
  const lines = mergesTxt.split(/\r?\n/).filter((line, i) => line !== "" && !(i === 0 && line.startsWith("#version")));
  const cfg = parseTokenizerConfig(config);
  const vocab = parseVocab(vocabJson, "vocab.json");
  // CLIPTokenizer registers bos/eos as special added tokens matched on the raw text.
  const addedTokens = [cfg.bosToken, cfg.eosToken].filter((t, i, all) => all.indexOf(t) === i)
    .map((content) => ({ content, id: vocab.get(content) ?? -1, normalized: false }))
    .filter((t) => t.id >= 0);
  return new ClipTokenizer({ vocab, merges: parseMerges(lines, "merges.txt"), addedTokens, ...cfg, contextLength });
}

async function readJson(file: string): Promise<unknown> {
  const text = await readFile(file, "utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

export interface TokenizerFiles {
  tokenizerJson?: string;
  vocabJson?: string;
  mergesTxt?: string;
  tokenizerConfig?: string;
}

/** Loads from tokenizer.json when present, else vocab.json + merges.txt. */
export async function loadTokenizer(files: TokenizerFiles, contextLength: number): Promise<ClipTokenizer> {
  const config = files.tokenizerConfig ? await readJson(files.tokenizerConfig) : {};
  if (files.tokenizerJson) return tokenizerFromJson(await readJson(files.tokenizerJson), config, contextLength);
  if (files.vocabJson && files.mergesTxt) {
    return tokenizerFromVocabMerges(await readJson(files.vocabJson), await readFile(files.mergesTxt, "utf8"), config, contextLength);
  }
  throw new TokenizerError("no tokenizer files: need tokenizer.json or vocab.json + merges.txt");
}
