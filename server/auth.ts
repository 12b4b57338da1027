/** API-key check for mutating endpoints: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { unauthorized } from "./problem.ts";

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
