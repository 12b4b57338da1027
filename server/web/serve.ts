/**
 * Serves the built page (build.ts) from the same Express process: `/` is index.html, revalidated
 * by ETag on every load; `/assets/*` carry content hashes in their names and are immutable for
 * a year. A Content-Security-Policy of 'self' keeps the page from loading anything from
 * elsewhere, so "no CDN" is enforced by the browser, not only by convention.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import express, { Router, type Response } from "express";
import { DIST_DIR } from "./build.ts";

const CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>countclip: page not built</title>
<h1>The page is not built</h1><p>Run <code>npm run build:web</code> (or <code>make setup</code>) and reload.
The API at <code>/v1/</code> works without it.</p></html>`;

interface Page {
  html: string;
  etag: string;
  mtimeMs: number;
}

function securityHeaders(res: Response): void {
  res.setHeader("Content-Security-Policy", CSP);
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "no-referrer");
}

export function webRoutes(distDir = DIST_DIR): Router {
  const router = Router();
  const file = path.join(distDir, "index.html");
  let page: Page | undefined;

  // Re-read when a rebuild of the page replaced the file (npm run build:web while serving).
  async function current(): Promise<Page | undefined> {
    const info = await stat(file).catch(() => undefined);
    if (!info) return undefined;
    if (page?.mtimeMs !== info.mtimeMs) {
      const html = await readFile(file, "utf8");
      page = { html, etag: `"${createHash("sha256").update(html).digest("hex").slice(0, 32)}"`, mtimeMs: info.mtimeMs };
    }
    return page;
  }

  router.get("/", async (req, res) => {
    securityHeaders(res);
    const built = await current();
    if (!built) {
      res.status(503).type("html").setHeader("Cache-Control", "no-store");
      res.send(NOT_BUILT);
      return;
    }
    res.setHeader("Cache-Control", "no-cache");
    res.setHeader("ETag", built.etag);
    if (req.headers["if-none-match"] === built.etag) {
      res.status(304).end();
      return;
    }
    res.type("html").send(built.html);
  });

  router.use("/assets", express.static(path.join(distDir, "assets"), {
    immutable: true,
    maxAge: "365d",
    index: false,
    redirect: false,
    setHeaders: (res) => res.setHeader("X-Content-Type-Options", "nosniff"),
  }));

  return router;
}
