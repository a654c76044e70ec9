/**
 * The gateway on port 0 in front of a real node:http upstream on port 0. The token, policy
 * and vault services are test doubles of the RPC boundary only (Connect router transports
 * answering from maps), since those services are built elsewhere; the bus is the real
 * in-process bus.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
} from "node:http";
import { type AddressInfo, connect } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { request } from "undici";
import { splitAuditEventBatch } from "../../libs/bus/audit-batch.ts";
import { createMemoryBus } from "../../libs/bus/memory-bus.ts";
import { changeSubject } from "../../libs/bus/types.ts";
import {
  type AuditEvent,
  AuditEventSchema,
  ChangeAction,
  ChangeEventSchema,
  GatewayDecision,
  ResourceType,
} from "../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  Effect,
  PolicyService,
  RuleMode,
  type UpstreamSchema,
} from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import {
  type TokenClaimsSchema,
  TokenService,
  VerifyFailure,
} from "../../libs/gen/latchkey/token/v1/token_pb.js";
import { VaultService } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { createLogger } from "../../libs/log/index.ts";
import { generateTokenSecret } from "../../libs/token-format/index.ts";
import { bufferedBodyBytes } from "./forward.ts";
import { createGateway, type Gateway } from "./gateway.ts";

const newSecret = (): string => generateTokenSecret().secret;

const realCredential = `sk_real_${randomBytes(12).toString("hex")}`;
const acmeToken = { secret: newSecret(), name: "tenants/acme/tokens/tok_acme1" };
const limitedToken = { secret: newSecret(), name: "tenants/acme/tokens/tok_limited" };
const revocableToken = { secret: newSecret(), name: "tenants/acme/tokens/tok_revocable" };
const otherToken = { secret: newSecret(), name: "tenants/other/tokens/tok_other1" };
const expiredToken = newSecret();

// ---------------------------------------------------------------- the upstream

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];
/** Requests the upstream began to read, whether or not their body arrived whole. */
let upstreamStarted = 0;
let releaseStream: (() => void) | undefined;
/** Settles when the gateway closes the upstream's /sse-endless response. */
const upstreamHungUp = Promise.withResolvers<void>();
let upstream: Server;
let upstreamUrl = "";

/** Lets the held upstream stream end; resolves with what the client receives from now on. */
async function releaseAndRead(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  res.on("data", (chunk: Buffer) => chunks.push(chunk));
  assert.ok(releaseStream, "the upstream is still holding the stream open");
  releaseStream();
  releaseStream = undefined;
  await once(res, "end");
  return Buffer.concat(chunks).toString();
}

function startUpstream(): Promise<void> {
  upstream = createServer(async (req: IncomingMessage, res) => {
    upstreamStarted++;
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      return; // the gateway cut the upload (body limit): nothing to answer
    }
    received.push({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
    });
    // Like a real API: without the real credential, nothing.
    if (req.headers.authorization !== `Bearer ${realCredential}`) {
      res.writeHead(401, { "content-type": "application/json" });
      res.end('{"error":"upstream says no"}');
      return;
    }
    const path = (req.url ?? "").split("?")[0];
    switch (path) {
      case "/base/v1/sse": {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        res.write("data: first\n\n");
        await new Promise<void>((resolve) => {
          releaseStream = resolve;
        });
        res.end("data: second\n\n");
        return;
      }
      case "/base/v1/sse-quiet": {
        // The head now, the first event only when the test says so.
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.flushHeaders();
        await new Promise<void>((resolve) => {
          releaseStream = resolve;
        });
        res.end("data: late\n\n");
        return;
      }
      case "/base/v1/sse-endless": {
        // One event, then nothing until the gateway hangs up.
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write("data: first\n\n");
        res.once("close", () => upstreamHungUp.resolve());
        return;
      }
      case "/base/v1/slow":
        await sleep(1_500);
        res.end("late");
        return;
      case "/base/v1/echo-auth":
        res.writeHead(200, {
          "x-debug-authorization": req.headers.authorization ?? "",
          "x-kept": "yes",
          connection: "x-upstream-hop",
          "x-upstream-hop": "drop me",
        });
        res.end("ok");
        return;
      case "/base/v1/redirect":
        res.writeHead(302, { location: "https://elsewhere.example/" });
        res.end();
        return;
      default:
        res.writeHead(200, {
          "content-type": "application/json",
          "x-request-id": "upstream-own-id",
        });
        res.end(JSON.stringify({ path, bytes: Buffer.concat(chunks).length }));
    }
  });
  upstream.listen(0, "127.0.0.1");
  return once(upstream, "listening").then(() => {
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
}

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

// ---------------------------------------------------------------- the RPC test doubles

type Claims = MessageInitShape<typeof TokenClaimsSchema>;
type ClaimsExtra = Pick<Claims, "allowedUpstreams" | "expireTime" | "attributes">;
const tokenStates = new Map<string, { claims?: Claims; failure?: VerifyFailure }>();
const calls = { verify: 0, bundle: [] as string[], resolve: 0 };
let tokenServiceDown = false;
let vaultDown = false;
let downUrl = "";

function claims(name: string, extra: ClaimsExtra = {}): Claims {
  const tenant = name.split("/")[1] as string;
  return { name, tenant, subject: "app-1", attributes: { team: "payments" }, ...extra };
}

function upstreamInit(
  tenant: string,
  slug: string,
  init: MessageInitShape<typeof UpstreamSchema>,
): MessageInitShape<typeof UpstreamSchema> {
  return {
    name: `tenants/${tenant}/upstreams/${slug}`,
    credential: `tenants/${tenant}/credentials/api-key`,
    requestTimeout: durationFromMs(2_000),
    maxRequestBodyBytes: 1024n,
    ...init,
  };
}

const rule = (id: string, effect: Effect, extra: Record<string, unknown> = {}) => ({
  id,
  effect,
  upstreams: [],
  methods: [],
  paths: [],
  condition: "",
  mode: RuleMode.ENFORCE,
  ...extra,
});

const transport = createRouterTransport((router) => {
  router.service(TokenService, {
    async verifyToken(req) {
      calls.verify++;
      if (tokenServiceDown) throw new Error("token service down");
      const state = tokenStates.get(req.secret);
      const cacheTtl = durationFromMs(60_000);
      if (state === undefined) return { failure: VerifyFailure.NOT_FOUND, cacheTtl };
      if (state.failure !== undefined)
        return { failure: state.failure, claims: state.claims, cacheTtl };
      return { claims: state.claims, cacheTtl };
    },
  });
  router.service(PolicyService, {
    async getBundle(req) {
      calls.bundle.push(req.parent);
      const cacheTtl = durationFromMs(60_000);
      if (req.parent === "tenants/acme") {
        return {
          cacheTtl,
          upstreams: [
            upstreamInit("acme", "api", {
              origin: upstreamUrl,
              basePath: "/base",
              requestTimeout: durationFromMs(300),
            }),
            upstreamInit("acme", "down", { origin: downUrl }),
            upstreamInit("acme", "open", { origin: upstreamUrl, basePath: "/base" }),
            upstreamInit("acme", "bulk", {
              origin: upstreamUrl,
              basePath: "/base",
              maxRequestBodyBytes: BigInt(4 * bufferedBodyBytes),
            }),
          ],
          policySet: {
            version: 7n,
            rules: [
              rule("allow-all", Effect.ALLOW),
              rule("deny-admin", Effect.DENY, { paths: ["/v1/admin/**"] }),
              rule("watch-items", Effect.DENY, { paths: ["/v1/items"], mode: RuleMode.DRY_RUN }),
              rule("payments-only-post", Effect.DENY, {
                methods: ["DELETE"],
                condition: 'token.attributes.team != "platform"',
              }),
            ],
          },
        };
      }
      if (req.parent === "tenants/other") {
        return {
          cacheTtl,
          upstreams: [upstreamInit("other", "secret-api", { origin: upstreamUrl })],
          policySet: { version: 1n, rules: [rule("allow-all", Effect.ALLOW)] },
        };
      }
      return { cacheTtl, upstreams: [], policySet: { version: 0n, rules: [] } };
    },
  });
  router.service(VaultService, {
    async resolveCredential(req) {
      calls.resolve++;
      if (vaultDown) throw new Error("vault down");
      assert.equal(
        req.origin === upstreamUrl || req.origin === downUrl,
        true,
        "origin from the bundle",
      );
      return {
        name: req.name,
        version: 4,
        scheme: { kind: { case: "bearer", value: {} } },
        material: { kind: { case: "token", value: realCredential } },
        lease: durationFromMs(60_000),
      };
    },
  });
});

// ---------------------------------------------------------------- the gateway

const logLines: string[] = [];
const log = createLogger({
  level: "debug",
  component: "gateway-test",
  destination: new Writable({
    write(chunk, _encoding, callback) {
      logLines.push(String(chunk));
      callback();
    },
  }),
});
const bus = createMemoryBus();
const audited: AuditEvent[] = [];
const auditedRaw: Uint8Array[] = [];
let gateway: Gateway;
let gatewayUrl = "";

before(async () => {
  await startUpstream();
  downUrl = await closedPortUrl();
  tokenStates.set(acmeToken.secret, { claims: claims(acmeToken.name) });
  tokenStates.set(limitedToken.secret, {
    claims: claims(limitedToken.name, { allowedUpstreams: ["open"] }),
  });
  tokenStates.set(revocableToken.secret, { claims: claims(revocableToken.name) });
  tokenStates.set(otherToken.secret, { claims: claims(otherToken.name) });
  tokenStates.set(expiredToken, {
    claims: claims("tenants/acme/tokens/tok_expired", {
      expireTime: timestampFromMs(Date.now() - 1000),
    }),
  });
  bus.subscribe("latchkey.audit.>", (message) => {
    for (const event of splitAuditEventBatch(message.data)) {
      auditedRaw.push(event);
      audited.push(fromBinary(AuditEventSchema, event));
    }
  });
  gateway = createGateway({
    tokenClient: createClient(TokenService, transport),
    policyClient: createClient(PolicyService, transport),
    vaultClient: createClient(VaultService, transport),
    bus,
    log,
    config: { port: 0, auditFlushMs: 5, drainTimeoutMs: 2_000 },
  });
  gatewayUrl = (await gateway.start()).url;
});

after(async () => {
  releaseStream?.();
  await gateway.stop();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
  await bus.close();
});

/** Calls the gateway and returns status, headers and body text. */
async function call(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
) {
  const response = await request(`${gatewayUrl}${path}`, {
    method: (init.method ?? "GET") as "GET",
    headers: init.headers,
    body: init.body,
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text };
}

/**
 * Sends `head` (request line and headers, without the final blank line) over a raw socket:
 * HTTP clients normalise targets (WHATWG URL turns `%2e%2e` into `..` and resolves it) and
 * merge headers, which would hide exactly what these tests send.
 */
async function rawCall(head: string): Promise<{ status: number; headers: string; body: string }> {
  const url = new URL(gatewayUrl);
  const socket = connect(Number(url.port), url.hostname);
  await once(socket, "connect");
  socket.end(`${head}\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
  let text = "";
  for await (const chunk of socket) text += chunk;
  const [headers = "", body = ""] = text.split("\r\n\r\n");
  return { status: Number(headers.split(" ")[1]), headers, body };
}

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

/** The first gateway request audited with `field` equal to `value`, waiting up to 2 s. */
async function auditWhere(field: "requestId" | "path", value: string): Promise<AuditEvent> {
  for (let i = 0; i < 200; i++) {
    const event = audited.find(
      (e) => e.detail.case === "gatewayRequest" && e.detail.value[field] === value,
    );
    if (event) return event;
    await sleep(10);
  }
  throw new Error(`no audit event with ${field} ${value}`);
}

/** The audit event of the request whose x-request-id is `requestId`. */
const auditOf = (requestId: string) => auditWhere("requestId", requestId);

function gatewayRequest(event: AuditEvent) {
  assert.equal(event.detail.case, "gatewayRequest");
  return event.detail.value;
}

const forbiddenBody = '{"error":{"code":"forbidden","message":"forbidden"}}';

// ---------------------------------------------------------------- tests

describe("gateway: proxying", () => {
  test("reaches the upstream with the real credential and without the proxy token", async () => {
    const before = received.length;
    const res = await call("/api/v1/items?limit=2", {
      headers: {
        ...bearer(acmeToken.secret),
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-host": "evil.example",
        cookie: "session=secret-cookie",
        "x-custom": "kept",
      },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { path: "/base/v1/items", bytes: 0 });
    assert.match(String(res.headers["x-request-id"]), /^req_[0-9a-z]{26}$/);
    assert.equal(received.length, before + 1);
    const got = received.at(-1) as Received;
    assert.equal(got.url, "/base/v1/items?limit=2");
    assert.equal(got.headers.authorization, `Bearer ${realCredential}`);
    assert.equal(got.headers["x-custom"], "kept");
    assert.equal(got.headers.cookie, undefined);
    assert.equal(got.headers["x-forwarded-for"], "127.0.0.1");
    assert.notEqual(got.headers["x-forwarded-host"], "evil.example");
    assert.equal(got.headers["x-request-id"], res.headers["x-request-id"]);
    assert.match(String(got.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    assert.equal(JSON.stringify(got.headers).includes(acmeToken.secret), false);
  });

  test("the proxy token in x-api-key is removed too", async () => {
    const res = await call("/api/v1/items", { headers: { "x-api-key": acmeToken.secret } });
    assert.equal(res.status, 200);
    const got = received.at(-1) as Received;
    assert.equal(got.headers["x-api-key"], undefined);
    assert.equal(JSON.stringify(got.headers).includes(acmeToken.secret), false);
  });

  test("a warm request makes no RPC", async () => {
    await call("/api/v1/items", { headers: bearer(acmeToken.secret) });
    const snapshot = { verify: calls.verify, bundle: calls.bundle.length, resolve: calls.resolve };
    for (let i = 0; i < 5; i++) {
      assert.equal(
        (await call("/api/v1/items", { headers: bearer(acmeToken.secret) })).status,
        200,
      );
    }
    assert.deepEqual(
      { verify: calls.verify, bundle: calls.bundle.length, resolve: calls.resolve },
      snapshot,
    );
  });

  test("concurrent misses for one token share one VerifyToken call", async () => {
    const secret = newSecret();
    tokenStates.set(secret, { claims: claims("tenants/acme/tokens/tok_burst") });
    const start = calls.verify;
    const results = await Promise.all(
      Array.from({ length: 10 }, () => call("/api/v1/items", { headers: bearer(secret) })),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      Array(10).fill(200),
    );
    assert.equal(calls.verify - start, 1);
  });

  test("posts a body through", async () => {
    const res = await call("/api/v1/upload", {
      method: "POST",
      headers: { ...bearer(acmeToken.secret), "content-type": "text/plain" },
      body: "hello upstream",
    });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).bytes, 14);
    assert.equal((received.at(-1) as Received).body, "hello upstream");
    const event = await auditOf(String(res.headers["x-request-id"]));
    assert.equal(gatewayRequest(event).requestBytes, 14n);
  });

  test("a body past the buffered size streams through whole", async () => {
    const body = randomBytes(bufferedBodyBytes + 1000);
    const res = await call("/bulk/v1/upload", {
      method: "POST",
      headers: bearer(acmeToken.secret),
      body,
    });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).bytes, body.length);
    const event = await auditOf(String(res.headers["x-request-id"]));
    assert.equal(gatewayRequest(event).requestBytes, BigInt(body.length));
  });

  test("a client that leaves mid-body sends nothing upstream and is audited", async () => {
    const before = upstreamStarted;
    const url = new URL(gatewayUrl);
    const socket = connect(Number(url.port), url.hostname);
    await once(socket, "connect");
    socket.write(
      `POST /api/v1/partial HTTP/1.1\r\nHost: ${url.host}\r\n` +
        `Authorization: Bearer ${acmeToken.secret}\r\nContent-Length: 100\r\n\r\n0123456789`,
    );
    await sleep(50);
    socket.destroy();
    const event = await auditWhere("path", "/v1/partial");
    assert.equal(gatewayRequest(event).reason, "client_closed");
    assert.equal(gatewayRequest(event).status, 0);
    assert.equal(upstreamStarted, before);
  });

  test("relays redirects instead of following them", async () => {
    const res = await call("/api/v1/redirect", { headers: bearer(acmeToken.secret) });
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, "https://elsewhere.example/");
  });

  test("scrubs response headers that echo the credential, and hop-by-hop ones", async () => {
    const res = await call("/api/v1/echo-auth", { headers: bearer(acmeToken.secret) });
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-debug-authorization"], undefined);
    assert.equal(res.headers["x-upstream-hop"], undefined);
    assert.equal(res.headers["x-kept"], "yes");
    assert.equal(JSON.stringify(res.headers).includes(realCredential), false);
  });

  test("the upstream's own x-request-id is replaced by the gateway's", async () => {
    const res = await call("/api/v1/items", { headers: bearer(acmeToken.secret) });
    assert.match(String(res.headers["x-request-id"]), /^req_/);
  });

  test("server-sent events flow through before the upstream ends the response", async () => {
    const url = new URL(`${gatewayUrl}/api/v1/sse`);
    const req = httpRequest(url, { headers: bearer(acmeToken.secret) });
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["content-type"], "text/event-stream");
    const [first] = (await once(res, "data")) as [Buffer];
    // The upstream is still holding the response open: this chunk was not buffered.
    assert.equal(String(first), "data: first\n\n");
    assert.equal(await releaseAndRead(res), "data: second\n\n");
  });

  test("a client that leaves an event stream ends the upstream call and is audited", async () => {
    const req = httpRequest(new URL(`${gatewayUrl}/api/v1/sse-endless`), {
      headers: bearer(acmeToken.secret),
    });
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    const [first] = (await once(res, "data")) as [Buffer];
    assert.equal(String(first), "data: first\n\n");
    req.destroy();
    await upstreamHungUp.promise;
    const event = await auditWhere("path", "/v1/sse-endless");
    assert.equal(gatewayRequest(event).reason, "client_closed");
  });

  test("an event stream's head reaches the client before its first event", async () => {
    const url = new URL(`${gatewayUrl}/api/v1/sse-quiet`);
    const req = httpRequest(url, { headers: bearer(acmeToken.secret) });
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    assert.equal(res.statusCode, 200);
    // The upstream has not sent an event yet: it waits for releaseAndRead.
    assert.equal(await releaseAndRead(res), "data: late\n\n");
  });
});

describe("gateway: authentication", () => {
  test("401 without a token", async () => {
    const res = await call("/api/v1/items");
    assert.equal(res.status, 401);
    assert.match(String(res.headers["www-authenticate"]), /^Bearer/);
    assert.deepEqual(JSON.parse(res.text), {
      error: { code: "unauthenticated", message: "missing proxy token" },
    });
  });

  test("401 with a malformed token, without asking the token service", async () => {
    const start = calls.verify;
    const res = await call("/api/v1/items", { headers: bearer("lk_not-a-real-token") });
    assert.equal(res.status, 401);
    assert.match(String(res.headers["www-authenticate"]), /^Bearer/);
    assert.equal(res.text.includes("lk_not"), false);
    assert.equal(calls.verify, start);
  });

  test("401 with an unknown token, and the refusal is cached", async () => {
    const secret = newSecret();
    const start = calls.verify;
    const first = await call("/api/v1/items", { headers: bearer(secret) });
    const second = await call("/api/v1/items", { headers: bearer(secret) });
    assert.equal(first.status, 401);
    assert.equal(second.status, 401);
    assert.equal(first.text.includes(secret), false);
    assert.equal(JSON.parse(first.text).error.message, "invalid token");
    assert.equal(calls.verify - start, 1);
  });

  test("401 for an expired token", async () => {
    const res = await call("/api/v1/items", { headers: bearer(expiredToken) });
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.text).error.message, "token expired");
  });

  test("revocation through a change event makes the next request 401", async () => {
    const ok = await call("/api/v1/items", { headers: bearer(revocableToken.secret) });
    assert.equal(ok.status, 200);
    // The token service now says revoked, but the cached verdict still says valid...
    tokenStates.set(revocableToken.secret, {
      failure: VerifyFailure.REVOKED,
      claims: { name: revocableToken.name, tenant: "acme" },
    });
    assert.equal(
      (await call("/api/v1/items", { headers: bearer(revocableToken.secret) })).status,
      200,
    );
    // ...until the change event arrives.
    const event = create(ChangeEventSchema, {
      id: "evt_revoke1",
      tenant: "acme",
      resource: revocableToken.name,
      resourceType: ResourceType.TOKEN,
      action: ChangeAction.REVOKED,
      actor: "key_test",
    });
    await bus.publish(changeSubject("acme", "token"), toBinary(ChangeEventSchema, event), {
      msgId: event.id,
    });
    await sleep(10);
    const res = await call("/api/v1/items", { headers: bearer(revocableToken.secret) });
    assert.equal(res.status, 401);
    assert.deepEqual(JSON.parse(res.text), {
      error: { code: "unauthenticated", message: "token revoked" },
    });
    // Audited under the token's tenant and name, which VerifyToken gives for a revoked token.
    const audit = await auditOf(String(res.headers["x-request-id"]));
    assert.equal(audit.tenant, "acme");
    assert.equal(gatewayRequest(audit).token, revocableToken.name);
    assert.equal(gatewayRequest(audit).reason, "token_revoked");
  });

  test("duplicate credential headers are refused before anything", async () => {
    const start = calls.verify;
    const res = await rawCall(
      `GET /api/v1/items HTTP/1.1\r\nAuthorization: Bearer ${acmeToken.secret}\r\nauthorization: Bearer ${otherToken.secret}`,
    );
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).error.code, "invalid_request");
    assert.equal(calls.verify, start);
  });

  test("ambiguous targets are refused over the wire, before the token is checked", async () => {
    const start = calls.verify;
    for (const target of [
      "http://evil.example/api/v1/items",
      "//evil.example/api/v1/items",
      "/api/v1/%2e%2e/admin",
      "/api/v1/..%2fadmin",
      "/api/v1\\admin",
      "/api/v1/%61dmin",
      "/api/v1/admin;jsessionid=1",
    ]) {
      const res = await rawCall(
        `GET ${target} HTTP/1.1\r\nAuthorization: Bearer ${acmeToken.secret}`,
      );
      assert.equal(res.status, 400, target);
      assert.equal(JSON.parse(res.body).error.code, "invalid_request", target);
    }
    assert.equal(calls.verify, start);
  });

  test("503 when the token service is down and nothing is cached", async () => {
    tokenServiceDown = true;
    try {
      const res = await call("/api/v1/items", { headers: bearer(newSecret()) });
      assert.equal(res.status, 503);
    } finally {
      tokenServiceDown = false;
    }
  });
});

describe("gateway: authorization and tenants", () => {
  test("unknown slug, another tenant's slug and a policy deny get the same 403", async () => {
    const unknown = await call("/nope/v1/items", { headers: bearer(acmeToken.secret) });
    const otherTenants = await call("/secret-api/v1/items", { headers: bearer(acmeToken.secret) });
    const denied = await call("/api/v1/admin/users", { headers: bearer(acmeToken.secret) });
    const notListed = await call("/api/v1/items", { headers: bearer(limitedToken.secret) });
    for (const res of [unknown, otherTenants, denied, notListed]) {
      assert.equal(res.status, 403);
      assert.equal(res.text, forbiddenBody);
    }
    // The other tenant's bundle was never even fetched for acme's token.
    assert.equal(calls.bundle.includes("tenants/other"), false);
  });

  test("each tenant reaches only its own upstreams", async () => {
    const res = await call("/secret-api/v1/items", { headers: bearer(otherToken.secret) });
    assert.equal(res.status, 200);
    const denied = await call("/api/v1/items", { headers: bearer(otherToken.secret) });
    assert.equal(denied.status, 403);
  });

  test("policy conditions see token attributes", async () => {
    const res = await call("/api/v1/items/1", {
      method: "DELETE",
      headers: bearer(acmeToken.secret),
    });
    assert.equal(res.status, 403);
    const platform = newSecret();
    tokenStates.set(platform, {
      claims: claims("tenants/acme/tokens/tok_platform", { attributes: { team: "platform" } }),
    });
    const allowed = await call("/api/v1/items/1", { method: "DELETE", headers: bearer(platform) });
    assert.equal(allowed.status, 200);
  });

  test("a policy change event drops the tenant's bundle", async () => {
    const start = calls.bundle.length;
    await call("/api/v1/items", { headers: bearer(acmeToken.secret) });
    assert.equal(calls.bundle.length, start);
    const event = create(ChangeEventSchema, {
      id: "evt_policy1",
      tenant: "acme",
      resource: "tenants/acme/policySet",
      resourceType: ResourceType.POLICY_SET,
      action: ChangeAction.UPDATED,
      version: 8n,
    });
    await bus.publish(changeSubject("acme", "policy"), toBinary(ChangeEventSchema, event), {
      msgId: event.id,
    });
    await sleep(10);
    await call("/api/v1/items", { headers: bearer(acmeToken.secret) });
    assert.deepEqual(calls.bundle.slice(start), ["tenants/acme"]);
  });
});

describe("gateway: limits and failures", () => {
  test("413 when Content-Length exceeds the upstream's limit", async () => {
    const before = received.length;
    const res = await call("/api/v1/upload", {
      method: "POST",
      headers: bearer(acmeToken.secret),
      body: Buffer.alloc(2048, 1),
    });
    assert.equal(res.status, 413);
    assert.equal(received.length, before);
  });

  test("a chunked body past the limit is cut off with 413", async () => {
    const res = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(new URL(`${gatewayUrl}/api/v1/upload`), {
        method: "POST",
        headers: { ...bearer(acmeToken.secret), "transfer-encoding": "chunked" },
      });
      req.on("error", reject);
      req.on("response", (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      req.write(Buffer.alloc(600, 1));
      setTimeout(() => req.write(Buffer.alloc(600, 1)), 20);
    });
    assert.equal(res, 413);
  });

  test("502 when the upstream is down", async () => {
    const res = await call("/down/v1/items", { headers: bearer(acmeToken.secret) });
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.text).error.code, "bad_gateway");
  });

  test("504 when the upstream does not answer in time", async () => {
    const res = await call("/api/v1/slow", { headers: bearer(acmeToken.secret) });
    assert.equal(res.status, 504);
    assert.equal(JSON.parse(res.text).error.code, "gateway_timeout");
  });

  test("503 when the vault fails and no lease is cached; never forwarded without it", async () => {
    const event = create(ChangeEventSchema, {
      id: "evt_cred1",
      tenant: "acme",
      resource: "tenants/acme/credentials/api-key",
      resourceType: ResourceType.CREDENTIAL,
      action: ChangeAction.ROTATED,
    });
    await bus.publish(changeSubject("acme", "credential"), toBinary(ChangeEventSchema, event), {
      msgId: event.id,
    });
    await sleep(10);
    vaultDown = true;
    const before = received.length;
    try {
      const res = await call("/api/v1/items", { headers: bearer(acmeToken.secret) });
      assert.equal(res.status, 503);
      assert.equal(received.length, before);
    } finally {
      vaultDown = false;
    }
  });

  test("health endpoints live under a reserved prefix", async () => {
    assert.equal((await call("/_latchkey/healthz")).status, 200);
    assert.equal((await call("/_latchkey/readyz")).status, 200);
    assert.equal((await call("/_latchkey/other")).status, 404);
  });
});

describe("gateway: audit", () => {
  test("one event per request, with the trace id and without any secret", async () => {
    const traceId = randomBytes(16).toString("hex");
    const res = await call("/api/v1/items?api_key=query-secret-value", {
      headers: { ...bearer(acmeToken.secret), traceparent: `00-${traceId}-${"1".repeat(16)}-01` },
    });
    assert.equal(res.status, 200);
    const event = await auditOf(String(res.headers["x-request-id"]));
    assert.equal(event.tenant, "acme");
    assert.equal(event.traceId, traceId);
    assert.match(event.id, /^evt_[0-9a-z]{26}$/);
    const detail = gatewayRequest(event);
    assert.equal(detail.token, acmeToken.name);
    assert.equal(detail.upstream, "api");
    assert.equal(detail.method, "GET");
    assert.equal(detail.path, "/v1/items");
    assert.equal(detail.decision, GatewayDecision.ALLOWED);
    assert.equal(detail.status, 200);
    assert.equal(detail.policyVersion, 7n);
    assert.deepEqual(detail.dryRunRuleIds, ["watch-items"]);
    assert.equal(detail.credentialVersion, 4);
    assert.equal(detail.clientAddress, "127.0.0.1");
    assert.ok(detail.durationUs > 0n);
    assert.ok(detail.responseBytes > 0n);
    // The upstream got the same trace.
    assert.equal(String((received.at(-1) as Received).headers.traceparent).split("-")[1], traceId);
  });

  test("refused requests are audited too", async () => {
    const unauth = await call("/api/v1/items");
    const unauthEvent = await auditOf(String(unauth.headers["x-request-id"]));
    assert.equal(unauthEvent.tenant, "_unknown");
    assert.equal(gatewayRequest(unauthEvent).decision, GatewayDecision.UNAUTHENTICATED);
    assert.equal(gatewayRequest(unauthEvent).reason, "token_missing");
    assert.equal(gatewayRequest(unauthEvent).status, 401);

    const denied = await call("/api/v1/admin/x", { headers: bearer(acmeToken.secret) });
    const deniedEvent = gatewayRequest(await auditOf(String(denied.headers["x-request-id"])));
    assert.equal(deniedEvent.decision, GatewayDecision.DENIED);
    assert.equal(deniedEvent.reason, "policy_denied");
    assert.equal(deniedEvent.status, 403);

    const rejected = await rawCall(
      `GET /api/v1/../admin HTTP/1.1\r\nAuthorization: Bearer ${acmeToken.secret}`,
    );
    assert.equal(rejected.status, 400);
    const requestId = /x-request-id: (\S+)/.exec(rejected.headers)?.[1] ?? "";
    const rejectedEvent = gatewayRequest(await auditOf(requestId));
    assert.equal(rejectedEvent.decision, GatewayDecision.REJECTED);
    assert.equal(rejectedEvent.reason, "dot_segment");
  });

  test("no audit event and no log line holds a secret or a query string", async () => {
    await gateway.stop(); // drains the audit buffer
    gatewayUrl = (await gateway.start()).url;
    const everything = Buffer.concat(auditedRaw.map((bytes) => Buffer.from(bytes))).toString(
      "latin1",
    );
    const logs = logLines.join("");
    for (const secret of [
      acmeToken.secret,
      otherToken.secret,
      realCredential,
      "query-secret-value",
    ]) {
      assert.equal(everything.includes(secret), false, "audit events");
      assert.equal(logs.includes(secret), false, "logs");
    }
    assert.ok(audited.length > 20);
  });
});

describe("gateway: processes sharing a port", () => {
  test("with reusePort two gateways bind one port and both serve", async () => {
    const options = () => ({
      tokenClient: createClient(TokenService, transport),
      policyClient: createClient(PolicyService, transport),
      vaultClient: createClient(VaultService, transport),
      bus,
      log,
    });
    const first = createGateway({ ...options(), config: { port: 0, reusePort: true } });
    const { port } = await first.start();
    const second = createGateway({ ...options(), config: { port, reusePort: true } });
    try {
      const { url } = await second.start();
      assert.equal(new URL(url).port, String(port));
      const res = await fetch(`${url}/_latchkey/readyz`);
      assert.equal(res.status, 200);
    } finally {
      await second.stop();
      await first.stop();
    }
    // Without it the port stays exclusive, as before.
    const lone = createGateway({ ...options(), config: { port: 0 } });
    const taken = (await lone.start()).port;
    try {
      await assert.rejects(
        createGateway({ ...options(), config: { port: taken } }).start(),
        /EADDRINUSE/,
      );
    } finally {
      await lone.stop();
    }
  });
});
