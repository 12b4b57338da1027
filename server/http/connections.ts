/**
 * The HTTP server, hardened against slow clients (slowloris): request headers must arrive
 * within `headersTimeoutMs` and the whole request within `requestTimeoutMs` (Node answers 408
 * and closes), idle keep-alive connections close after `keepAliveTimeoutMs`, and at most
 * `maxConnections` are open. Past the cap a new connection does not wait for a slot: the
 * longest-open connection with no request in flight (a half-sent request, or an idle
 * keep-alive) is closed to make room, so clients that send whole requests keep being served
 * while a flood of half-sent ones is shed oldest first.
 */
import http, { type RequestListener, type Server } from "node:http";
import type { Socket } from "node:net";

export interface ConnectionLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

interface Tracked {
  /** Requests whose headers arrived and whose response has not ended. */
  inFlight: number;
}

export function createGuardedServer(handler: RequestListener, limits: ConnectionLimits): Server {
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  const server = http.createServer({
    headersTimeout,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node enforces both timeouts in a sweep at this period; its default (30 s) would let a
    // slow client outlive a 10 s headers timeout threefold.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
  });
  const open = new Map<Socket, Tracked>(); // insertion order: oldest first
  server.on("connection", (socket: Socket) => {
    if (open.size >= limits.maxConnections && !evictIdle(open)) {
      socket.destroy();
      return;
    }
    open.set(socket, { inFlight: 0 });
    socket.once("close", () => open.delete(socket));
  });
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const tracked = open.get(req.socket);
    if (tracked) {
      tracked.inFlight++;
      res.once("close", () => tracked.inFlight--);
    }
    handler(req, res);
  });
  return server;
}

/** Close the oldest connection with no request in flight; false when every one is busy. */
function evictIdle(open: Map<Socket, Tracked>): boolean {
  for (const [socket, tracked] of open) {
    if (tracked.inFlight > 0) continue;
    open.delete(socket);
    socket.destroy();
    return true;
  }
  return false;
}
