/**
 * Builds the page: server/web/src (plain TypeScript and CSS) bundled by esbuild into
 * `dist/assets/*-HASH.{js,css}`, and `dist/index.html` naming them. Content-hashed names let
 * Express serve the assets as immutable; only index.html is revalidated. Nothing is fetched
 * from outside: the page is these files and the API.
 *
 *   npm run build:web      (run by `make setup` and before `npm start`)
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as esbuild from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SRC_DIR = path.join(HERE, "src");
export const DIST_DIR = path.join(HERE, "dist");

export interface BuiltPage {
  dir: string;
  /** Asset paths as the page names them ("/assets/main-HASH.js"). */
  js: string;
  css: string;
  bytes: number;
}

export async function buildWeb(outDir = DIST_DIR): Promise<BuiltPage> {
  const assets = path.join(outDir, "assets");
  await rm(assets, { recursive: true, force: true });
  await mkdir(assets, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { main: path.join(SRC_DIR, "main.ts"), style: path.join(SRC_DIR, "style.css") },
    outdir: assets,
    entryNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    metafile: true,
    logLevel: "warning",
  });
  const outputs = Object.entries(result.metafile.outputs);
  const named = (ext: string) => {
    const found = outputs.find(([file]) => file.endsWith(ext));
    if (!found) throw new Error(`esbuild wrote no ${ext} file`);
    return `/assets/${path.basename(found[0])}`;
  };
  const js = named(".js");
  const css = named(".css");
  const template = await readFile(path.join(SRC_DIR, "index.html"), "utf8");
  const html = template.replace("%STYLE%", css).replace("%SCRIPT%", js);
  const tmp = path.join(outDir, `index.html.${process.pid}.tmp`);
  await writeFile(tmp, html);
  await rename(tmp, path.join(outDir, "index.html"));
  const bytes = outputs.reduce((sum, [, out]) => sum + out.bytes, 0) + html.length;
  return { dir: outDir, js, css, bytes };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const built = await buildWeb(process.argv[2] ? path.resolve(process.argv[2]) : DIST_DIR);
  console.log(`web: built ${path.relative(process.cwd(), built.dir) || "."} (${built.js}, ${built.css}; ${(built.bytes / 1024).toFixed(1)} KiB)`);
}
