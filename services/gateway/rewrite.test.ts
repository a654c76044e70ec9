import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ResolveCredentialResponseSchema } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { type Credential, noCredential, prepare } from "./credential.ts";
import { type RewriteInput, rewrite } from "./rewrite.ts";

const token = `lk_${"B".repeat(33)}`;
const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

function inbound(rawHeaders: string[], overrides: Partial<RewriteInput> = {}): RewriteInput {
  return {
    rawHeaders,
    clientAddress: "192.0.2.7",
    encrypted: false,
    requestId: "req_test",
    traceparent,
    tracestate: "",
    ...overrides,
  };
}

const route = { path: "/v1/items", query: "", chunked: false };
const upstream = { basePath: "", forwardCookies: false };

/** Outbound headers as a name → values map, for assertions. */
function headerMap(headers: string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    map.set(name, [...(map.get(name) ?? []), headers[i + 1] as string]);
  }
  return map;
}

function credential(
  init: Parameters<typeof create<typeof ResolveCredentialResponseSchema>>[1],
): Credential {
  const prepared = prepare(create(ResolveCredentialResponseSchema, init));
  assert.equal(typeof prepared, "object", `credential not prepared: ${String(prepared)}`);
  return prepared as Credential;
}

describe("rewrite: removal", () => {
  test("drops hop-by-hop headers", () => {
    const out = headerMap(
      rewrite(
        inbound([
          "Connection",
          "keep-alive",
          "Keep-Alive",
          "timeout=5",
          "Proxy-Authenticate",
          "Basic",
          "Proxy-Authorization",
          "Basic abc",
          "TE",
          "trailers",
          "Trailer",
          "Expires",
          "Transfer-Encoding",
          "chunked",
          "Upgrade",
          "websocket",
          "Proxy-Connection",
          "keep-alive",
          "Accept",
          "application/json",
        ]),
        route,
        upstream,
        noCredential,
      ).headers,
    );
    for (const name of [
      "connection",
      "keep-alive",
      "proxy-authenticate",
      "proxy-authorization",
      "te",
      "trailer",
      "transfer-encoding",
      "upgrade",
      "proxy-connection",
    ]) {
      assert.equal(out.has(name), false, name);
    }
    assert.deepEqual(out.get("accept"), ["application/json"]);
  });

  test("drops the headers a Connection header names", () => {
    const out = headerMap(
      rewrite(
        inbound([
          "Connection",
          "close, X-Internal-Hop",
          "connection",
          "x-other",
          "X-Internal-Hop",
          "1",
          "x-other",
          "2",
          "x-kept",
          "3",
        ]),
        route,
        upstream,
        noCredential,
      ).headers,
    );
    assert.equal(out.has("x-internal-hop"), false);
    assert.equal(out.has("x-other"), false);
    assert.deepEqual(out.get("x-kept"), ["3"]);
  });

  test("removes the proxy token from Authorization", () => {
    const out = rewrite(
      inbound(["Authorization", `Bearer ${token}`]),
      route,
      upstream,
      noCredential,
    );
    assert.equal(out.headers.join("\n").includes(token), false);
    assert.equal(headerMap(out.headers).has("authorization"), false);
  });

  test("removes the proxy token from x-api-key", () => {
    const out = rewrite(inbound(["X-Api-Key", token]), route, upstream, noCredential);
    assert.equal(out.headers.join("\n").includes(token), false);
    assert.equal(headerMap(out.headers).has("x-api-key"), false);
  });

  test("removes every Proxy-* header", () => {
    const out = headerMap(
      rewrite(inbound(["Proxy-Token", token, "proxy-anything", "x"]), route, upstream, noCredential)
        .headers,
    );
    assert.equal(
      [...out.keys()].some((name) => name.startsWith("proxy-")),
      false,
    );
  });

  test("drops Cookie unless the upstream forwards cookies", () => {
    const raw = ["Cookie", "session=abc"];
    assert.equal(
      headerMap(rewrite(inbound(raw), route, upstream, noCredential).headers).has("cookie"),
      false,
    );
    const forwarding = { basePath: "", forwardCookies: true };
    assert.deepEqual(
      headerMap(rewrite(inbound(raw), route, forwarding, noCredential).headers).get("cookie"),
      ["session=abc"],
    );
  });

  test("drops Host (undici sets the upstream's) and Expect", () => {
    const out = headerMap(
      rewrite(
        inbound(["Host", "gw.example", "Expect", "100-continue"]),
        route,
        upstream,
        noCredential,
      ).headers,
    );
    assert.equal(out.has("host"), false);
    assert.equal(out.has("expect"), false);
  });

  test("drops method and URL overrides, so the upstream runs what policy evaluated", () => {
    const overrides = [
      "X-HTTP-Method-Override",
      "X-HTTP-Method",
      "X-Method-Override",
      "X-Original-URL",
      "X-Rewrite-URL",
    ];
    const raw = overrides.flatMap((name) => [
      name,
      name.includes("URL") ? "/admin/users" : "DELETE",
    ]);
    const out = headerMap(rewrite(inbound(raw), route, upstream, noCredential).headers);
    for (const name of overrides) assert.equal(out.has(name.toLowerCase()), false, name);
  });

  test("drops Content-Length of a chunked body, keeps it otherwise", () => {
    const raw = ["Content-Length", "5"];
    assert.deepEqual(
      headerMap(rewrite(inbound(raw), route, upstream, noCredential).headers).get("content-length"),
      ["5"],
    );
    const chunked = { ...route, chunked: true };
    assert.equal(
      headerMap(rewrite(inbound(raw), chunked, upstream, noCredential).headers).has(
        "content-length",
      ),
      false,
    );
  });
});

describe("rewrite: forwarding headers", () => {
  test("sets Forwarded and X-Forwarded-* from the connection, never from the client", () => {
    const out = headerMap(
      rewrite(
        inbound([
          "Host",
          "gw.example:8443",
          "X-Forwarded-For",
          "10.0.0.1",
          "X-Forwarded-Proto",
          "https",
          "X-Forwarded-Host",
          "admin.internal",
          "X-Forwarded-Port",
          "443",
          "Forwarded",
          "for=10.0.0.1",
          "X-Real-IP",
          "10.0.0.1",
        ]),
        route,
        upstream,
        noCredential,
      ).headers,
    );
    assert.deepEqual(out.get("x-forwarded-for"), ["192.0.2.7"]);
    assert.deepEqual(out.get("x-forwarded-proto"), ["http"]);
    assert.deepEqual(out.get("x-forwarded-host"), ["gw.example:8443"]);
    assert.deepEqual(out.get("forwarded"), ['for=192.0.2.7;proto=http;host="gw.example:8443"']);
    assert.equal(out.has("x-forwarded-port"), false);
    assert.equal(out.has("x-real-ip"), false);
  });

  test("brackets and quotes IPv6 in Forwarded; https over TLS", () => {
    const out = headerMap(
      rewrite(
        inbound([], { clientAddress: "2001:db8::1", encrypted: true }),
        route,
        upstream,
        noCredential,
      ).headers,
    );
    assert.deepEqual(out.get("forwarded"), ['for="[2001:db8::1]";proto=https']);
    assert.deepEqual(out.get("x-forwarded-proto"), ["https"]);
  });

  test("replaces traceparent and x-request-id with the gateway's", () => {
    const out = headerMap(
      rewrite(
        inbound([
          "traceparent",
          "00-11111111111111111111111111111111-2222222222222222-01",
          "x-request-id",
          "client",
        ]),
        route,
        upstream,
        noCredential,
      ).headers,
    );
    assert.deepEqual(out.get("traceparent"), [traceparent]);
    assert.deepEqual(out.get("x-request-id"), ["req_test"]);
  });

  test("prefixes the base path and keeps the query", () => {
    const out = rewrite(
      inbound([]),
      { path: "/items", query: "a=1&b=2", chunked: false },
      { basePath: "/v2", forwardCookies: false },
      noCredential,
    );
    assert.equal(out.path, "/v2/items?a=1&b=2");
  });
});

describe("rewrite: credential injection", () => {
  test("bearer", () => {
    const cred = credential({
      version: 3,
      scheme: { kind: { case: "bearer", value: {} } },
      material: { kind: { case: "token", value: "sk_live_realsecret" } },
    });
    const out = headerMap(
      rewrite(inbound(["Authorization", `Bearer ${token}`]), route, upstream, cred).headers,
    );
    assert.deepEqual(out.get("authorization"), ["Bearer sk_live_realsecret"]);
    assert.equal(cred.version, 3);
    assert.deepEqual(cred.echoes, ["sk_live_realsecret"]);
  });

  test("custom headers, replacing any the client sent", () => {
    const cred = credential({
      scheme: {
        kind: { case: "header", value: { headerNames: ["x-vendor-key", "x-vendor-account"] } },
      },
      material: {
        kind: {
          case: "headers",
          value: { values: { "x-vendor-key": "vk_123456789", "x-vendor-account": "acct-42" } },
        },
      },
    });
    const out = headerMap(
      rewrite(inbound(["X-Vendor-Key", "client-guess"]), route, upstream, cred).headers,
    );
    assert.deepEqual(out.get("x-vendor-key"), ["vk_123456789"]);
    assert.deepEqual(out.get("x-vendor-account"), ["acct-42"]);
  });

  test("basic", () => {
    const cred = credential({
      scheme: { kind: { case: "basic", value: {} } },
      material: { kind: { case: "basic", value: { username: "svc", password: "p4ssw0rd-long" } } },
    });
    const out = headerMap(rewrite(inbound([]), route, upstream, cred).headers);
    assert.deepEqual(out.get("authorization"), [
      `Basic ${Buffer.from("svc:p4ssw0rd-long").toString("base64")}`,
    ]);
  });

  test("query parameter, replacing the client's under any spelling", () => {
    const cred = credential({
      scheme: { kind: { case: "query", value: { parameter: "api_key" } } },
      material: { kind: { case: "token", value: "q secret/&=" } },
    });
    const out = rewrite(
      inbound([]),
      {
        path: "/v1/search",
        query: "q=cats&api_key=mine&api%5Fkey=smuggled&page=2",
        chunked: false,
      },
      upstream,
      cred,
    );
    assert.equal(out.path, "/v1/search?q=cats&page=2&api_key=q%20secret%2F%26%3D");
    const bare = rewrite(inbound([]), { path: "/v1", query: "", chunked: false }, upstream, cred);
    assert.equal(bare.path, "/v1?api_key=q%20secret%2F%26%3D");
  });

  test("refuses material that would break the request", () => {
    const crlf = prepare(
      create(ResolveCredentialResponseSchema, {
        scheme: { kind: { case: "bearer", value: {} } },
        material: { kind: { case: "token", value: "abc\r\nx-injected: 1" } },
      }),
    );
    assert.equal(typeof crlf, "string");
    const hostHeader = prepare(
      create(ResolveCredentialResponseSchema, {
        scheme: { kind: { case: "header", value: { headerNames: ["host"] } } },
        material: { kind: { case: "headers", value: { values: { host: "evil.example" } } } },
      }),
    );
    assert.equal(typeof hostHeader, "string");
    const mismatch = prepare(
      create(ResolveCredentialResponseSchema, {
        scheme: { kind: { case: "basic", value: {} } },
        material: { kind: { case: "token", value: "abc" } },
      }),
    );
    assert.equal(typeof mismatch, "string");
  });
});
