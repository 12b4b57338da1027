/**
 * RFC 7807 on the wire: one Express error handler turns any error into
 * `application/problem+json` (lib/problem.ts says what went wrong; this says how it is sent),
 * including body-parser's own errors (malformed JSON, a body over BODY_LIMIT_BYTES).
 */
import { STATUS_CODES } from "node:http";
import type { ErrorRequestHandler, RequestHandler } from "express";
import { notFound, Problem, toProblem } from "../lib/problem.ts";

export const PROBLEM_BASE = "https://countclip.dev/problems/";

interface BodyParserError {
  type?: unknown;
  status?: unknown;
  message?: string;
  limit?: unknown;
}

/**
 * body-parser's errors, recognised by their string `type` (errors of other modules that merely
 * carry a `status`, such as ImageInputError, are not theirs and keep their own titles).
 */
function fromBodyParser(err: BodyParserError): Problem | undefined {
  if (typeof err.type !== "string") return undefined;
  switch (err.type) {
    case "entity.parse.failed":
      return new Problem(400, "Malformed JSON", `request body is not valid JSON: ${err.message ?? ""}`.trim());
    case "entity.too.large":
      return new Problem(413, "Payload Too Large", typeof err.limit === "number"
        ? `request body exceeds the limit of ${err.limit} bytes (BODY_LIMIT_BYTES)`
        : "request body exceeds the configured limit (BODY_LIMIT_BYTES)");
    case "encoding.unsupported":
    case "charset.unsupported":
      return new Problem(415, "Unsupported Media Type", err.message);
    case "request.aborted":
      return new Problem(400, "Bad Request", "request aborted by the client");
    default:
      if (typeof err.status === "number" && err.status >= 400 && err.status < 500) {
        return new Problem(err.status, STATUS_CODES[err.status] ?? "Bad Request", err.message);
      }
      return undefined;
  }
}

/** Any error as the problem its response reports: body-parser's errors by their type first. */
export function responseProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  return fromBodyParser(err as never) ?? toProblem(err);
}

export function sendProblem(res: Parameters<RequestHandler>[1], problem: Problem, instance?: string): void {
  const body: Record<string, unknown> = {
    type: `${PROBLEM_BASE}${problem.slug}`,
    title: problem.title,
    status: problem.status,
  };
  if (problem.detail !== undefined) body["detail"] = problem.detail;
  if (instance !== undefined) body["instance"] = instance;
  if (problem.errors) body["errors"] = problem.errors;
  res.status(problem.status).type("application/problem+json").send(JSON.stringify(body));
}

export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const problem = responseProblem(err);
  if (problem.status >= 500 && !(err instanceof Problem)) console.error(`${req.method} ${req.originalUrl}:`, err);
  if (res.headersSent) {
    res.end();
    return;
  }
  sendProblem(res, problem, req.originalUrl);
};

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(notFound(`no route for ${req.method} ${req.path}`));
};
