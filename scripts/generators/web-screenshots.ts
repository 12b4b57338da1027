/**
 * The README's screenshots of the page (docs/screenshots/*.png): the service on the default
 * model and gallery in a temp data dir, Debian's chromium headless, "three cats" typed, then
 * the first result's relevancy map. PNGs are palette-quantised to stay small.
 *
 *   npx tsx scripts/generators/web-screenshots.ts [outDir]
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { createApp } from "../../server/http/app.ts";
import { loadConfig } from "../../server/services/config.ts";
import { loadEmbedder } from "../../server/model/embedder.ts";
import { IndexService } from "../../server/services/index-service.ts";
import { buildWeb } from "../../server/web/build.ts";
import { browserMissing, launchBrowser, listen } from "../../test/helpers/browser.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

async function save(png: Buffer, file: string): Promise<void> {
  await sharp(png).png({ palette: true, colours: 128, compressionLevel: 9 }).toFile(file);
  console.log(`wrote ${path.relative(ROOT, file)}`);
}

async function main(outDir: string): Promise<void> {
  const missing = browserMissing();
  if (missing) throw new Error(missing);
  await mkdir(outDir, { recursive: true });
  await buildWeb();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "countclip-shots-"));
  const config = loadConfig({ DATA_DIR: dataDir });
  const service = new IndexService(config, loadEmbedder);
  await service.start();
  const server = await listen(createApp({ config, service, defaultMetrics: false }));
  const browser = await launchBrowser({ width: 960, height: 640 });
  try {
    const page = await browser.context.newPage();
    await page.goto(server.url);
    await page.locator("#search-query").pressSequentially("three cats", { delay: 20 });
    await page.waitForSelector('#search-results[data-query="three cats"]:not([aria-busy])');
    await page.evaluate(() => Promise.all([...document.images].map((img) => img.decode().catch(() => undefined))));
    await save(await page.screenshot({ clip: { x: 0, y: 0, width: 960, height: 640 } }), path.join(outDir, "search.png"));
    await page.locator("#search-results > li.card").first().locator("button").click();
    await page.waitForSelector('#explain-canvas[data-ready="true"]');
    await save(await page.locator("#explain").screenshot(), path.join(outDir, "explain.png"));
  } finally {
    await browser.close();
    await server.close();
    await service.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main(path.resolve(process.argv[2] ?? path.join(ROOT, "docs/screenshots")));
