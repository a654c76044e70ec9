/**
 * The forwarder on its own: which request bodies it reads before the upstream call. A real
 * node:http upstream and a real client-facing server; the request stream handed to
 * forward() is a stand-in, so a test can tell whether the forwarder waited for it.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { noCredential } from "./credential.ts";
import { Exchange } from "./exchange.ts";
import { createForwarder, type Forwarder } from "./forward.ts";
import type { UpstreamTarget } from "./resolve-upstream.ts";
import type { ProxyRoute } from "./route.ts";

let upstream: Server;
let upstreamOrigin = "";
let front: Server;
let frontUrl = "";
let forwarder: Forwarder;
/** Declared body length of the next request, as route() would have parsed it. */
let contentLength = -1;

function listen(server: Server): Promise<string> {
  server.listen(0, "127.0.0.1");
  return once(server, "listening").then(
    () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  );
}

before(async () => {
  upstream = createServer((req, res) => {
    res.end(`${req.method} ${req.url} content-length=${req.headers["content-length"] ?? "none"}`);
  });
  upstreamOrigin = await listen(upstream);
  forwarder = createForwarder({
    connections: 4,
    connectTimeoutMs: 2_000,
    bodyTimeoutMs: 2_000,
    keepAliveMs: 2_000,
  });
  const target = {
    kind: "upstream",
    slug: "api",
    origin: upstreamOrigin,
    basePath: "",
    credential: "",
    requestTimeoutMs: 2_000,
    maxRequestBodyBytes: 1024,
  } as UpstreamTarget;
  front = createServer((req, res) => {
    const route: ProxyRoute = {
      kind: "proxy",
      slug: "api",
      path: "/items",
      query: "",
      secret: undefined,
      credentialSource: "none",
      contentLength,
      chunked: false,
    };
    const exchange = new Exchange("req_test", Date.now(), "GET", "127.0.0.1", false, []);
    // A request stream that never ends: reading it would stall the exchange.
    const body = new PassThrough() as unknown as IncomingMessage;
    req.resume();
    void forwarder.forward(
      body,
      res,
      exchange,
      route,
      target,
      { path: "/items", headers: [] },
      noCredential,
    );
  });
  frontUrl = await listen(front);
});

after(async () => {
  // A request left hanging (by a forwarder that waits for the stream) must not keep the
  // process alive after its test failed.
  front.closeAllConnections();
  front.close();
  await forwarder.close();
  upstream.close();
});

function get(): Promise<string> {
  return new Promise((resolve, reject) => {
    request(`${frontUrl}/api/items`, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve(text));
    })
      .on("error", reject)
      .end();
  });
}

describe("forward: request bodies", () => {
  for (const declared of [-1, 0]) {
    test(`a request without a body (declared length ${declared}) goes upstream without reading the request stream`, {
      timeout: 5_000,
    }, async () => {
      contentLength = declared;
      assert.equal(await get(), "GET /items content-length=none");
    });
  }
});
