/** What every route module gets: configuration, the service, the contract validator, helpers. */
import express, { type RequestHandler, type Response } from "express";
import type { Config } from "../../services/config.ts";
import type { Metrics } from "../metrics.ts";
import { Problem } from "../../lib/problem.ts";
import type { IndexService } from "../../services/index-service.ts";
import type { ApiValidator } from "../validation.ts";

export interface RouteContext {
  config: Config;
  service: IndexService;
  api: ApiValidator;
  metrics: Metrics;
  /** JSON body parser with the configured size limit. */
  json: RequestHandler;
  /** API-key check (no-op when no key is configured). */
  auth: RequestHandler;
}

export function jsonParser(limitBytes: number): RequestHandler {
  return express.json({ limit: limitBytes, strict: true, type: ["application/json", "application/*+json"] });
}

/** Aborts when the client disconnects before the response is sent (work can be dropped). */
export function clientGone(res: Response): AbortSignal {
  const controller = new AbortController();
  // A response's "close" fires once: after it was sent, or when the connection dropped first.
  res.once("close", () => {
    if (!res.writableFinished) controller.abort(new Problem(499, "Client Closed Request", "the client disconnected"));
  });
  return controller.signal;
}

/** Terminal handler for a known path with an unsupported method. */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  return (req, res, next) => {
    res.setHeader("Allow", allowed.join(", "));
    next(new Problem(405, "Method Not Allowed", `${req.method} is not supported here; use ${allowed.join(" or ")}`));
  };
}
