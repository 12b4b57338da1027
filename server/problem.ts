/**
 * RFC 7807 problem details. Handlers throw `Problem`s (or helpers below); one Express error
 * handler turns any error into `application/problem+json`. Errors a client caused map to 4xx;
 * only genuine server faults become 500, and their internals are logged, never sent.
 */
import { STATUS_CODES } from "node:http";
import type { ErrorRequestHandler, RequestHandler } from "express";

export interface FieldError {
  path: string;
  message: string;
}

export class Problem extends Error {
  /** The problem type: its URI is `${PROBLEM_BASE}${slug}`, one slug per title. */
  readonly slug: string;
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: FieldError[],
  ) {
    super(detail ?? title);
    this.slug = slugOf(title);
  }
}

export const PROBLEM_BASE = "https://countclip.dev/problems/";

/** The type is derived from the title, so one title never hides two types nor one type two titles. */
export function slugOf(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

export const badRequest = (detail: string, errors?: FieldError[]) => new Problem(400, "Bad Request", detail, errors);
export const unauthorized = (detail: string) => new Problem(401, "Unauthorized", detail);
export const forbidden = (detail: string) => new Problem(403, "Forbidden", detail);
export const notFound = (detail: string) => new Problem(404, "Not Found", detail);
export const conflict = (detail: string) => new Problem(409, "Conflict", detail);
export const unavailable = (detail: string) => new Problem(503, "Service Unavailable", detail);

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

/** Errors from other modules that know their HTTP status and title (ImageInputError). */
function fromStatusError(err: unknown): Problem | undefined {
  if (!(err instanceof Error)) return undefined;
  const { status, title } = err as { status?: unknown; title?: unknown };
  if (typeof status !== "number" || status < 400 || status >= 500) return undefined;
  return new Problem(status, typeof title === "string" ? title : STATUS_CODES[status] ?? "Bad Request", err.message);
}

export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  const mapped = fromBodyParser(err as never) ?? fromStatusError(err);
  if (mapped) return mapped;
  return new Problem(500, "Internal Server Error", "the server failed to handle the request; see its log");
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
  const problem = toProblem(err);
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
