/**
 * Child-process entry of the benchmark upstream: the "real API" every target ends up calling.
 *
 * It is deliberately as cheap as node:http allows (precomputed bodies, no framework) so that
 * the direct row is the ceiling the proxies are compared against. It REQUIRES the credential
 * header and answers 401 without it, so a proxy that fails to inject the credential shows up
 * as errors instead of as suspiciously fast successes.
 *
 * Usage: node bench/upstream-process.ts   (env UPSTREAM_SECRET; prints {"port": n} when ready)
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { SSE_EVENT_COUNT } from "./routes.ts";

const secret = process.env.UPSTREAM_SECRET;
if (secret === undefined || secret === "") {
  process.stderr.write("UPSTREAM_SECRET is required\n");
  process.exit(2);
}
const expected = `Bearer ${secret}`;

// ~200 bytes, built once: per-request JSON.stringify would measure V8, not the proxies.
const jsonBody = Buffer.from(
  JSON.stringify({
    id: "acct_4f9c2a71",
    object: "account",
    name: "Benchmark Upstream Ltd",
    email: "billing@example.invalid",
    plan: "pro",
    seats: 50,
    active: true,
    created: 1767225600,
    tags: ["bench", "latchkey", "baseline"],
  }),
);
const jsonHeaders = { "content-type": "application/json", "content-length": jsonBody.length };
const unauthorized = Buffer.from('{"error":"missing or wrong credential"}');
const sseEvents = Array.from({ length: SSE_EVENT_COUNT }, (_, i) =>
  Buffer.from(`id: ${i + 1}\nevent: tick\ndata: {"seq":${i + 1},"of":${SSE_EVENT_COUNT}}\n\n`),
);

/** Writes the events one per event-loop turn so they leave as separate chunks (a real stream). */
function streamEvents(res: ServerResponse, index: number): void {
  if (res.destroyed) return;
  const event = sseEvents[index];
  if (event === undefined) {
    res.end();
    return;
  }
  res.write(event);
  setImmediate(streamEvents, res, index + 1);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.headers.authorization !== expected) {
    req.resume();
    res.writeHead(401, {
      "content-type": "application/json",
      "content-length": unauthorized.length,
    });
    res.end(unauthorized);
    return;
  }
  const url = req.url ?? "/";
  if (req.method === "GET" && url === "/json") {
    res.writeHead(200, jsonHeaders);
    res.end(jsonBody);
    return;
  }
  if (req.method === "POST" && url === "/echo") {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    req.on("end", () => {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        "content-length": body.length,
      });
      res.end(body);
    });
    return;
  }
  if (req.method === "GET" && url === "/sse") {
    req.resume();
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    streamEvents(res, 0);
    return;
  }
  req.resume();
  res.writeHead(404, { "content-length": 0 });
  res.end();
}

const server = createServer({ keepAlive: true }, handle);
// Load generators hold connections open for a whole run; the 5 s default would close idle
// pooled sockets between rounds and add reconnects to the next measurement.
server.keepAliveTimeout = 120_000;
server.maxRequestsPerSocket = 0;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("unexpected listen address");
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
