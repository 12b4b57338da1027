/** Bundle loading: a bundle is used only when every listed file matches its size and sha256. */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { BundleError, openBundle, parseManifest, sha256File, type BundleErrorCode } from "../server/model/bundle.ts";
import { loadEmbedder } from "../server/model/embedder.ts";
import { bundleUnavailableReason, REPO_ROOT, testBundle } from "./helpers/bundle.ts";

const scratch: string[] = [];

function copyBundle(source: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "countclip-bundle-"));
  scratch.push(dir);
  cpSync(source, dir, { recursive: true });
  return dir;
}

function editManifest(dir: string, edit: (m: Record<string, unknown>) => void): void {
  const file = path.join(dir, "manifest.json");
  const manifest = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(manifest);
  writeFileSync(file, JSON.stringify(manifest));
}

async function fails(dir: string, code: BundleErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(openBundle(dir), (err: unknown) => {
    assert.ok(err instanceof BundleError, String(err));
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe("bundle verification", { skip: bundleUnavailableReason() ?? false }, () => {
  let source: string;
  before(async () => { source = await testBundle(); });
  after(() => { for (const dir of scratch) rmSync(dir, { recursive: true, force: true }); });

  test("the exported bundle verifies", async () => {
    const bundle = await openBundle(source);
    assert.equal(bundle.manifest.format, "countclip-bundle");
    assert.ok(bundle.has("text.onnx") && bundle.has("vision.onnx"));
    assert.equal(bundle.manifest.files["vision.onnx"]!.sha256, await sha256File(bundle.file("vision.onnx")));
    assert.match(bundle.contentHash, /^[0-9a-f]{64}$/);
  });

  test("a flipped byte is a checksum mismatch (same size)", async () => {
    const dir = copyBundle(source);
    const file = path.join(dir, "vision.onnx");
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(file, bytes);
    await fails(dir, "checksum_mismatch", /vision\.onnx/);
    await assert.rejects(loadEmbedder(dir), BundleError);
  });

  test("a truncated file is a size mismatch", async () => {
    const dir = copyBundle(source);
    truncateSync(path.join(dir, "text.onnx"), 100);
    await fails(dir, "size_mismatch", /text\.onnx/);
  });

  test("a missing listed file", async () => {
    const dir = copyBundle(source);
    unlinkSync(path.join(dir, "preprocess.json"));
    await fails(dir, "missing_file", /preprocess\.json/);
  });

  test("no manifest, or a manifest that is not JSON", async () => {
    const dir = copyBundle(source);
    writeFileSync(path.join(dir, "manifest.json"), "{ not json");
    await fails(dir, "invalid_manifest");
    unlinkSync(path.join(dir, "manifest.json"));
    await fails(dir, "not_found", /manifest\.json/);
    await fails(path.join(os.tmpdir(), "countclip-no-such-bundle"), "not_found");
  });

  test("an unknown format or version", async () => {
    const dir = copyBundle(source);
    editManifest(dir, (m) => { m["format_version"] = 2; });
    await fails(dir, "unsupported_format", /format_version/);
    editManifest(dir, (m) => { m["format"] = "something-else"; m["format_version"] = 1; });
    await fails(dir, "unsupported_format");
  });

  test("required files must be listed (and so verified)", async () => {
    const dir = copyBundle(source);
    editManifest(dir, (m) => { delete (m["files"] as Record<string, unknown>)["vision.onnx"]; });
    await fails(dir, "missing_file", /vision\.onnx/);
  });

  test("file names cannot leave the bundle directory", async () => {
    const dir = copyBundle(source);
    editManifest(dir, (m) => { (m["files"] as Record<string, unknown>)["../escape"] = { sha256: "0".repeat(64), bytes: 1 }; });
    await fails(dir, "invalid_manifest", /plain file name/);
  });

  test("a tokenizer.json that is not CLIP's BPE fails at load with a BundleError", async () => {
    const dir = copyBundle(source);
    const file = path.join(dir, "tokenizer.json");
    const tok = JSON.parse(readFileSync(file, "utf8")) as { model: Record<string, unknown> };
    tok.model["type"] = "WordPiece";
    writeFileSync(file, JSON.stringify(tok));
    const stat = readFileSync(file);
    editManifest(dir, (m) => {
      (m["files"] as Record<string, unknown>)["tokenizer.json"] = { sha256: "", bytes: stat.length };
    });
    await fails(dir, "invalid_manifest", /sha256/);
    editManifest(dir, (m) => {
      (m["files"] as Record<string, unknown>)["tokenizer.json"] = { sha256: "a".repeat(64), bytes: stat.length };
    });
    await fails(dir, "checksum_mismatch");
    const sha = await sha256File(file);
    editManifest(dir, (m) => { (m["files"] as Record<string, unknown>)["tokenizer.json"] = { sha256: sha, bytes: stat.length }; });
    await assert.rejects(loadEmbedder(dir), (err: unknown) => err instanceof BundleError && err.file === "tokenizer.json" && /BPE/.test(err.message));
  });
});

describe("bundle with vocab.json + merges.txt instead of tokenizer.json", { skip: bundleUnavailableReason() ?? false }, () => {
  after(() => { for (const dir of scratch) rmSync(dir, { recursive: true, force: true }); });

  test("loads and embeds texts exactly like the tokenizer.json bundle", async () => {
    const source = await testBundle();
    const dir = copyBundle(source);
    unlinkSync(path.join(dir, "tokenizer.json"));
    const bpe = path.join(REPO_ROOT, "training", "countclip", "assets", "clip-bpe");
    const files: Record<string, { sha256: string; bytes: number }> = {};
    for (const name of ["vocab.json", "merges.txt"]) {
      cpSync(path.join(bpe, name), path.join(dir, name));
      files[name] = { sha256: await sha256File(path.join(dir, name)), bytes: readFileSync(path.join(dir, name)).length };
    }
    editManifest(dir, (m) => {
      const listed = m["files"] as Record<string, unknown>;
      delete listed["tokenizer.json"];
      Object.assign(listed, files);
    });
    const [a, b] = await Promise.all([loadEmbedder(source), loadEmbedder(dir)]);
    try {
      const texts = ["three cats", "Two dogs and THREE cats’ toys 🐶", "a <|endoftext|> b", "cat ".repeat(80)];
      const [va, vb] = await Promise.all([a.embedTexts(texts), b.embedTexts(texts)]);
      va.forEach((v, i) => assert.deepEqual(Array.from(v), Array.from(vb[i]!), texts[i]));
      assert.notEqual(a.modelId, b.modelId, "different files, different model id");
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("manifest shape", () => {
  const valid = {
    format: "countclip-bundle", format_version: 1, model_name: "m", base_model: "b", embed_dim: 32, logit_scale: 100,
    context_length: 77, image_size: 224, created_at: "", training: {}, metrics: {}, command: "",
    files: { "text.onnx": { sha256: "a".repeat(64), bytes: 1 } },
  };

  test("accepts the contract's manifest", () => {
    assert.equal(parseManifest(valid).embed_dim, 32);
  });

  test("rejects wrong types with the field's name", () => {
    for (const [field, value] of [["embed_dim", 0], ["logit_scale", -1], ["context_length", "77"], ["model_name", ""], ["files", []]] as const) {
      assert.throws(() => parseManifest({ ...valid, [field]: value }), (err: unknown) =>
        err instanceof BundleError && err.code === "invalid_manifest" && err.message.includes(field));
    }
  });
});
