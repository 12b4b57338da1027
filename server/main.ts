/**
 * Entry point (`npm start`, `make start`): configuration from the environment, the model and
 * index loaded (or built from the default gallery), then HTTP. SIGTERM/SIGINT drain and exit.
 */
import type { Server } from "node:http";
import { createApp } from "./http/app.ts";
import { exposureWarnings } from "./http/auth.ts";
import { loadConfig } from "./services/config.ts";
import { createGuardedServer } from "./http/connections.ts";
import { loadEmbedder } from "./model/embedder.ts";
import { IndexService } from "./services/index-service.ts";

async function main(): Promise<void> {
  const config = loadConfig();
  // Throws (and so refuses to start) on a non-loopback HOST without API_KEY.
  for (const line of exposureWarnings(config)) console.warn(line);
  const service = new IndexService(config, loadEmbedder);
  const app = createApp({ config, service });
  // Listen first so /healthz answers (and /readyz says 503) while the index loads.
  const server: Server = createGuardedServer(app, config).listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => server.once("listening", resolve).once("error", reject));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  console.log(`countclip listening on http://${config.host}:${port} (data ${config.dataDir})`);
  const shutdown = (signal: string) => {
    console.log(`${signal}: shutting down`);
    server.close();
    void service.close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  await service.start();
  const status = service.acquireUnleased();
  console.log(`ready: model ${status.modelId}, ${await status.index.size()} images, build ${status.build}`);
}

main().catch((err: unknown) => {
  console.error(`countclip failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
