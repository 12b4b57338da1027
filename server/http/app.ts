/**
 * The Express app, built from a started IndexService (tests pass their own; main.ts builds one
 * from the environment). Every error leaves as application/problem+json.
 */
import express, { type Express } from "express";
import type { Config } from "../services/config.ts";
import { requireApiKey } from "./auth.ts";
import { Metrics } from "./metrics.ts";
import { notFoundHandler, problemHandler } from "./problem-details.ts";
import { jsonParser, type RouteContext } from "./routes/context.ts";
import { explainRoutes } from "./routes/explain.ts";
import { imageContentRoutes } from "./routes/image-content.ts";
import { imageRoutes } from "./routes/images.ts";
import { indexRoutes } from "./routes/index.ts";
import { opsRoutes } from "./routes/ops.ts";
import { searchRoutes } from "./routes/search.ts";
import type { IndexService } from "../services/index-service.ts";
import { ApiValidator } from "./validation.ts";
import { webRoutes } from "../web/serve.ts";

export interface AppOptions {
  config: Config;
  service: IndexService;
  /** Collect process-level default metrics (off in tests that build many apps). */
  defaultMetrics?: boolean;
}

export function createApp({ config, service, defaultMetrics = true }: AppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  const metrics = new Metrics(service, defaultMetrics);
  const ctx: RouteContext = {
    config,
    service,
    api: new ApiValidator(),
    metrics,
    json: jsonParser(config.bodyLimitBytes),
    auth: requireApiKey(config.apiKey),
  };
  app.use(metrics.middleware());
  app.use(searchRoutes(ctx), imageRoutes(ctx), indexRoutes(ctx), opsRoutes(ctx));
  // The page for people (server/web): `/` and its content-hashed assets.
  app.use(explainRoutes(ctx), imageContentRoutes(ctx), webRoutes());
  app.use(notFoundHandler);
  app.use(problemHandler);
  return app;
}
