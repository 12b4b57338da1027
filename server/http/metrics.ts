/**
 * Prometheus metrics (prom-client), one registry per app so tests can build many apps.
 * Request metrics are labelled by route template (not URL) to keep cardinality bounded.
 */
import type { RequestHandler } from "express";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { IndexService } from "../services/index-service.ts";

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<"method" | "route" | "status">;
  readonly duration: Histogram<"method" | "route">;

  constructor(service: IndexService, defaults = true) {
    const registers = [this.registry];
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: "countclip_" });
    this.requests = new Counter({
      name: "countclip_http_requests_total",
      help: "HTTP requests by route template and status",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.duration = new Histogram({
      name: "countclip_http_request_duration_seconds",
      help: "HTTP request latency by route template",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    for (const result of ["hits", "misses"] as const) {
      new Gauge({
        name: `countclip_count_prompt_cache_${result}`,
        help: `Count-prompt embedding cache ${result} since the serving model was loaded`,
        registers,
        collect() {
          this.set(service.ready ? service.acquireUnleased().countPrompts[result] : 0);
        },
      });
    }
    new Gauge({
      name: "countclip_count_prompt_cache_hit_ratio",
      help: "Share of count-aware lookups answered from the count-prompt cache (hits / (hits + misses))",
      registers,
      collect() {
        const cache = service.ready ? service.acquireUnleased().countPrompts : undefined;
        const total = cache ? cache.hits + cache.misses : 0;
        this.set(total > 0 ? cache!.hits / total : 0);
      },
    });
    new Gauge({
      name: "countclip_hubness_cache_hit_ratio",
      help: "Share of count-aware candidates whose hub score h(v) came from the cache (0 when the model has no hubness correction)",
      registers,
      collect() {
        const cache = service.ready ? service.acquireUnleased().hubness : null;
        const total = cache ? cache.hits + cache.misses : 0;
        this.set(total > 0 ? cache!.hits / total : 0);
      },
    });
    new Gauge({
      name: "countclip_query_queue_wait_seconds",
      help: "Estimated wait of a query arriving now for its text embedding (what back-pressure compares with MAX_QUEUE_WAIT_MS)",
      registers,
      collect() {
        this.set(service.ready ? service.acquireUnleased().queryWaitMs / 1000 : 0);
      },
    });
    new Gauge({
      name: "countclip_queries_refused",
      help: "Queries refused by back-pressure (503 Overloaded) since the serving model was loaded",
      registers,
      collect() {
        this.set(service.ready ? service.acquireUnleased().refusedQueries : 0);
      },
    });
    new Gauge({
      name: "countclip_model_precision",
      help: "1 for the precision each tower of the serving model runs at (fp32, int8)",
      labelNames: ["tower", "precision"],
      registers,
      collect() {
        this.reset();
        if (!service.ready) return;
        for (const [tower, precision] of Object.entries(service.acquireUnleased().embedder.precision)) this.set({ tower, precision }, 1);
      },
    });
    new Gauge({
      name: "countclip_index_size",
      help: "Images in the serving index",
      registers,
      async collect() {
        this.set(service.ready ? await service.acquireUnleased().index.size() : 0);
      },
    });
    new Gauge({
      name: "countclip_index_build",
      help: "Full (re)builds of the serving index",
      registers,
      collect() {
        this.set(service.ready ? service.acquireUnleased().build : 0);
      },
    });
    new Gauge({
      name: "countclip_ready",
      help: "1 when a model and an index are serving",
      registers,
      collect() {
        this.set(service.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: "countclip_rebuild_running",
      help: "1 while a background rebuild runs",
      registers,
      collect() {
        this.set(service.rebuild.state === "running" ? 1 : 0);
      },
    });
    new Gauge({
      name: "countclip_rebuild_progress_ratio",
      help: "Fraction of images the running (or last) rebuild has embedded",
      registers,
      collect() {
        const r = service.rebuild;
        this.set(r.total > 0 ? r.done / r.total : 0);
      },
    });
  }

  /** Middleware recording every request once it finishes. */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const stop = process.hrtime.bigint();
      res.on("finish", () => {
        const route = routeOf(req);
        const seconds = Number(process.hrtime.bigint() - stop) / 1e9;
        this.requests.inc({ method: req.method, route, status: String(res.statusCode) });
        this.duration.observe({ method: req.method, route }, seconds);
      });
      next();
    };
  }
}

function routeOf(req: Parameters<RequestHandler>[0]): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === "string" ? `${req.baseUrl}${path}` : "unmatched";
}
