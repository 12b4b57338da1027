/**
 * Debian's chromium driven by playwright-core for the page's end-to-end tests: the system
 * browser (no browser download), headless, no network beyond loopback, a fresh profile.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import os from "node:os";
import path from "node:path";
import type { Express } from "express";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
export const ARTIFACTS = path.resolve("test-artifacts");

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  return `no chromium at ${CHROMIUM}: the browser tests need Debian's chromium (make setup as root installs it; or apt-get install chromium)`;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(viewport = { width: 1100, height: 900 }): Promise<Browser> {
  const profile = await mkdtemp(path.join(os.tmpdir(), "countclip-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: FLAGS,
    viewport,
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Listen on an ephemeral loopback port; resolves with the base URL and a closer. */
export async function listen(app: Express): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Screenshot the page as it is, then each view, into test-artifacts/ (called on failure). */
export async function screenshotViews(page: Page, base: string, name: string): Promise<string[]> {
  await mkdir(ARTIFACTS, { recursive: true });
  const files = [path.join(ARTIFACTS, `${name}-failure.png`)];
  await page.screenshot({ path: files[0]!, fullPage: true }).catch(() => undefined);
  for (const view of ["search", "rerank", "count", "index"]) {
    const extra = await page.context().newPage();
    try {
      await extra.goto(`${base}/?view=${view}`, { timeout: 5000 });
      const file = path.join(ARTIFACTS, `${name}-view-${view}.png`);
      await extra.screenshot({ path: file, fullPage: true });
      files.push(file);
    } catch {
      // The page itself may be what failed; the first screenshot is the one that matters.
    } finally {
      await extra.close();
    }
  }
  return files;
}
