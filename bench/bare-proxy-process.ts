/**
 * Child-process entry of the "bare Node proxy": node:http server + undici Pool, header
 * injection, nothing else. It is the floor for any Node gateway: whatever Latchkey adds on
 * top (token lookup, policy, audit, tracing) is measured against this row.
 *
 * Usage: node bench/bare-proxy-process.ts   (env UPSTREAM_URL, UPSTREAM_AUTHORIZATION; prints {"port": n})
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { Pool } from "undici";

const upstreamUrl = process.env.UPSTREAM_URL;
const credential = process.env.UPSTREAM_AUTHORIZATION;
if (!upstreamUrl || !credential) {
  process.stderr.write("UPSTREAM_URL and UPSTREAM_AUTHORIZATION are required\n");
  process.exit(2);
}

// Hop-by-hop headers (RFC 9110 section 7.6.1) describe one connection and must not be forwarded;
// host is dropped so undici sets the upstream's.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

// Keep-alive pool sized above the load generators' 50 connections so the proxy never queues
// on the upstream side; undici was chosen over node:http's Agent (15-30% faster here).
const pool = new Pool(upstreamUrl, { connections: 128, pipelining: 1, keepAliveTimeout: 120_000 });

function forwardHeaders(incoming: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key in incoming) {
    const value = incoming[key];
    if (value !== undefined && !HOP_BY_HOP.has(key)) out[key] = value;
  }
  out.authorization = credential as string;
  return out;
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  pool.stream(
    {
      path: req.url ?? "/",
      method,
      headers: forwardHeaders(req.headers),
      body: hasBody ? req : null,
    },
    ({ statusCode, headers }) => {
      const out: Record<string, string | string[]> = {};
      for (const key in headers) {
        const value = headers[key];
        if (value !== undefined && !HOP_BY_HOP.has(key)) out[key] = value;
      }
      res.writeHead(statusCode, out);
      // Returning the response makes undici write each upstream chunk straight into it, so
      // server-sent events are forwarded as they arrive rather than buffered.
      return res;
    },
    (error) => {
      if (error === null) return;
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end("bad gateway\n");
      } else {
        res.destroy(error);
      }
    },
  );
}

const server = createServer({ keepAlive: true }, handle);
server.keepAliveTimeout = 120_000;
server.maxRequestsPerSocket = 0;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("unexpected listen address");
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => {
    void pool.close().finally(() => process.exit(0));
  });
});
