/** API-key check for mutating endpoints: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { unauthorized } from "../lib/problem.ts";

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function presentedKey(header: string | undefined, apiKeyHeader: string | undefined): string | undefined {
  if (apiKeyHeader) return apiKeyHeader;
  const match = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
  return match?.[1]?.trim();
}

/** A no-op when no key is configured. Compares digests in constant time. */
export function requireApiKey(apiKey: string | undefined): RequestHandler {
  if (!apiKey) return (_req, _res, next) => next();
  const expected = digest(apiKey);
  return (req, res, next) => {
    const key = presentedKey(req.headers.authorization, req.header("x-api-key"));
    if (key !== undefined && timingSafeEqual(digest(key), expected)) return next();
    res.setHeader("WWW-Authenticate", 'Bearer realm="countclip"');
    next(unauthorized(key === undefined ? "this endpoint requires an API key" : "wrong API key"));
  };
}

/** Hosts that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1";
}

/**
 * The start-up policy for open mutations: without API_KEY anyone who reaches the port may add,
 * delete and rebuild, so a non-loopback HOST is refused unless ALLOW_UNAUTHENTICATED=1. Returns
 * the warnings to log (empty when mutations need a key); throws when the service must not start.
 */
export function exposureWarnings(config: { host: string; apiKey: string | undefined; allowUnauthenticated: boolean }): string[] {
  if (config.apiKey) return [];
  const open = "no API_KEY is set: anyone who can reach this port may add and delete images and rebuild the index";
  if (isLoopback(config.host)) return [`WARNING: ${open} (HOST=${config.host} is loopback-only). Set API_KEY to require a key.`];
  if (!config.allowUnauthenticated) {
    throw new Error(`refusing to listen on non-loopback HOST=${config.host} without API_KEY (${open}); set API_KEY, or ALLOW_UNAUTHENTICATED=1 to accept that`);
  }
  const bar = "!".repeat(78);
  return [bar, `!! WARNING: ALLOW_UNAUTHENTICATED=1 on HOST=${config.host}: ${open}.`, bar];
}
