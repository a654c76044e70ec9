import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health_pb.js";
import {
  ServerReflection,
  type ServerReflectionRequest,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import { TokenService } from "../gen/latchkey/token/v1/token_pb.js";
import { createClientTransport, createRpcServer } from "./index.ts";
import {
  captureLog,
  createTestRoutes,
  secretInError,
  testAuthenticate,
  testRoutes,
} from "./test-service.ts";
import type { RpcServer, RpcServerOptions } from "./types.ts";

const protoDir = new URL("../../proto/", import.meta.url).pathname;

async function startServer(overrides: Partial<RpcServerOptions> = {}) {
  const { log, lines } = captureLog();
  const server = createRpcServer({
    name: "test",
    routes: testRoutes,
    services: [TokenService],
    host: "127.0.0.1",
    port: 0,
    authenticate: testAuthenticate,
    log,
    ...overrides,
  });
  const { port, url } = await server.start();
  return { server, port, url, lines };
}

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail("expected the call to fail");
}

/** Promisifies a grpc-js unary call. */
function grpcCall<T>(
  client: grpc.Client,
  method: string,
  request: object,
  metadata = new grpc.Metadata(),
): Promise<T> {
  return new Promise((resolve, reject) => {
    type Unary = (
      req: object,
      md: grpc.Metadata,
      cb: (err: grpc.ServiceError | null, res: T) => void,
    ) => void;
    const fn = (client as unknown as Record<string, Unary | undefined>)[method];
    assert.ok(fn, `no method ${method}`);
    fn.call(client, request, metadata, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function grpcClient(pkgPath: string, protoFile: string, port: number): grpc.Client {
  const definition = protoLoader.loadSync(join(protoDir, protoFile), {
    includeDirs: [protoDir],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition);
  let ctor: unknown = loaded;
  for (const part of pkgPath.split(".")) ctor = (ctor as Record<string, unknown>)[part];
  const Ctor = ctor as typeof grpc.Client;
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** Sends reflection requests one at a time on one stream and collects the answers. */
async function reflect(
  transport: Transport,
  requests: ServerReflectionRequest["messageRequest"][],
) {
  const client = createClient(ServerReflection, transport);
  async function* input() {
    for (const messageRequest of requests) yield { host: "", messageRequest };
  }
  const out = [];
  for await (const res of client.serverReflectionInfo(input())) out.push(res);
  return out;
}

describe("createRpcServer over cleartext", () => {
  let ctx: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    ctx = await startServer();
  });
  after(() => ctx.server.stop());

  test("serves the Connect gRPC transport over h2c, with the principal in the handler", async () => {
    const transport = createClientTransport({ baseUrl: ctx.url, credential: "good" });
    try {
      const tokens = createClient(TokenService, transport);
      const res = await tokens.getToken({ name: "tenants/acme/tokens/tok_1" });
      assert.equal(res.token?.name, "tenants/acme/tokens/tok_1");
      assert.equal(res.token?.displayName, "admin:key_test");
    } finally {
      transport.close();
    }
  });

  test("serves Connect over HTTP/1.1 on the same port", async () => {
    for (const useBinaryFormat of [false, true]) {
      const transport = createConnectTransport({
        baseUrl: ctx.url,
        httpVersion: "1.1",
        useBinaryFormat,
      });
      const tokens = createClient(TokenService, transport);
      const res = await tokens.getToken(
        { name: "tenants/acme/tokens/tok_2" },
        { headers: { authorization: "Bearer gw" } },
      );
      assert.equal(res.token?.displayName, "gateway");
    }
  });

  test("serves gRPC-Web over HTTP/1.1 and Connect JSON to plain fetch", async () => {
    const res = await fetch(`${ctx.url}/latchkey.token.v1.TokenService/GetToken`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "tenants/acme/tokens/tok_3" }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { token: { name: string; displayName: string } };
    assert.deepEqual(body.token, { name: "tenants/acme/tokens/tok_3", displayName: "anonymous" });
  });

  test("serves @grpc/grpc-js clients loading the .proto", async () => {
    const client = grpcClient(
      "latchkey.token.v1.TokenService",
      "latchkey/token/v1/token.proto",
      ctx.port,
    );
    try {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", "Bearer good");
      const res = await grpcCall<{ token: { name: string; displayName: string } }>(
        client,
        "getToken",
        { name: "tenants/acme/tokens/tok_4" },
        metadata,
      );
      assert.equal(res.token.name, "tenants/acme/tokens/tok_4");
      assert.equal(res.token.displayName, "admin:key_test");

      const err = await grpcCall(client, "getToken", { name: "tenants/acme/tokens/missing" }).then(
        () => assert.fail("expected NotFound"),
        (e: grpc.ServiceError) => e,
      );
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, "token tenants/acme/tokens/missing not found");
    } finally {
      client.close();
    }
  });

  test("answers grpc.health.v1 Check and List", async () => {
    const client = grpcClient("grpc.health.v1.Health", "grpc/health/v1/health.proto", ctx.port);
    try {
      for (const service of ["", "latchkey.token.v1.TokenService"]) {
        const res = await grpcCall<{ status: string }>(client, "check", { service });
        assert.equal(res.status, "SERVING");
      }
      const err = await grpcCall(client, "check", { service: "nope.v1.Nope" }).then(
        () => assert.fail("expected NotFound"),
        (e: grpc.ServiceError) => e,
      );
      assert.equal(err.code, grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
    const transport = createGrpcTransport({ baseUrl: ctx.url });
    const list = await createClient(Health, transport).list({});
    assert.deepEqual(Object.keys(list.statuses).sort(), ["", "latchkey.token.v1.TokenService"]);
  });

  test("answers server reflection with the files and their imports", async () => {
    const transport = createGrpcTransport({ baseUrl: ctx.url });
    const [listed, bySymbol, byMethod, byFile, missing] = await reflect(transport, [
      { case: "listServices", value: "" },
      { case: "fileContainingSymbol", value: "latchkey.token.v1.TokenService" },
      { case: "fileContainingSymbol", value: "latchkey.token.v1.TokenService.GetToken" },
      { case: "fileByFilename", value: "google/protobuf/timestamp.proto" },
      { case: "fileContainingSymbol", value: "nope.v1.Nope" },
    ]);

    assert.equal(listed?.messageResponse.case, "listServicesResponse");
    const names = listed.messageResponse.value.service.map((s) => s.name);
    assert.deepEqual(names, [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "latchkey.token.v1.TokenService",
    ]);

    assert.equal(bySymbol?.messageResponse.case, "fileDescriptorResponse");
    const files = bySymbol.messageResponse.value.fileDescriptorProto.map((b) =>
      fromBinary(FileDescriptorProtoSchema, b),
    );
    assert.equal(files[0]?.name, "latchkey/token/v1/token.proto");
    // The closure is complete: a client can build a registry and find the service
    // (a FileDescriptorSet lists imports first; the answer lists the asked-for file first).
    const registry = createFileRegistry(
      create(FileDescriptorSetSchema, { file: [...files].reverse() }),
    );
    const service = registry.getService("latchkey.token.v1.TokenService");
    assert.ok(service);
    assert.ok(service.methods.some((m) => m.name === "GetToken"));
    assert.ok(files.some((f) => f.name === "google/protobuf/timestamp.proto"));

    // Files already sent on this stream are not repeated, except the one asked for.
    assert.equal(byMethod?.messageResponse.case, "fileDescriptorResponse");
    assert.equal(byMethod.messageResponse.value.fileDescriptorProto.length, 1);
    assert.equal(byFile?.messageResponse.case, "fileDescriptorResponse");
    assert.equal(
      fromBinary(
        FileDescriptorProtoSchema,
        byFile.messageResponse.value.fileDescriptorProto[0] ?? new Uint8Array(),
      ).name,
      "google/protobuf/timestamp.proto",
    );

    assert.equal(missing?.messageResponse.case, "errorResponse");
    assert.equal(missing.messageResponse.value.errorCode, Code.NotFound);
  });

  test("an RPC absent from the implementation answers Unimplemented", async () => {
    const transport = createClientTransport({ baseUrl: ctx.url, credential: "good" });
    try {
      const err = await rejection(createClient(TokenService, transport).createToken({}));
      assert.equal(err.code, Code.Unimplemented);
    } finally {
      transport.close();
    }
  });

  test("maps DomainError to its code and hides other errors as Internal", async () => {
    const transport = createClientTransport({ baseUrl: ctx.url, credential: "gw" });
    try {
      const tokens = createClient(TokenService, transport);
      const notFound = await rejection(tokens.getToken({ name: "tenants/acme/tokens/missing" }));
      assert.equal(notFound.code, Code.NotFound);
      assert.equal(notFound.rawMessage, "token tenants/acme/tokens/missing not found");

      const internal = await rejection(tokens.getToken({ name: "tenants/acme/tokens/boom" }));
      assert.equal(internal.code, Code.Internal);
      assert.equal(internal.rawMessage, "internal error");
      assert.ok(!internal.message.includes(secretInError));
      assert.ok(
        ctx
          .lines()
          .some((l) => l.msg === "rpc failed" && JSON.stringify(l).includes(secretInError)),
        "the cause is in the server log",
      );
    } finally {
      transport.close();
    }
  });

  test("refuses a credential that does not authenticate", async () => {
    const transport = createClientTransport({ baseUrl: ctx.url, credential: "bad" });
    try {
      const tokens = createClient(TokenService, transport);
      const err = await rejection(tokens.getToken({ name: "tenants/acme/tokens/tok_1" }));
      assert.equal(err.code, Code.Unauthenticated);
    } finally {
      transport.close();
    }
  });

  test("answers /healthz and /readyz over HTTP/1.1", async () => {
    const live = await fetch(`${ctx.url}/healthz`);
    assert.equal(live.status, 200);
    const ready = await fetch(`${ctx.url}/readyz`);
    assert.equal(ready.status, 200);
    const other = await fetch(`${ctx.url}/nope`);
    assert.equal(other.status, 404);
  });
});

describe("createRpcServer stop", () => {
  test("flips health to NOT_SERVING, lets in-flight calls finish, then closes", async () => {
    let release = () => {};
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const ctx = await startServer({ routes: createTestRoutes({ slow }) });
    const transport = createClientTransport({ baseUrl: ctx.url, credential: "good" });
    try {
      const watch = createClient(Health, transport).watch({ service: "" })[Symbol.asyncIterator]();
      const first = await watch.next();
      assert.equal(first.value?.status, ServingStatus.SERVING);

      const tokens = createClient(TokenService, transport);
      const inFlight = tokens.getToken({ name: "tenants/acme/tokens/slow" });
      // Streams on one connection are accepted in order: once a later Check is answered,
      // the server has taken the GetToken call in.
      await createClient(Health, transport).check({ service: "" });

      const stopped = ctx.server.stop();
      const flipped = await watch.next();
      assert.equal(flipped.value?.status, ServingStatus.NOT_SERVING);
      assert.equal((await watch.next()).done, true, "Watch ends on shutdown");

      release();
      const res = await inFlight;
      assert.equal(res.token?.name, "tenants/acme/tokens/slow");
      await stopped;

      const err = await rejection(tokens.getToken({ name: "tenants/acme/tokens/tok_1" }));
      assert.equal(err.code, Code.Unavailable);
    } finally {
      release();
      transport.close();
      await ctx.server.stop();
    }
  });
});

const haveOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate. */
function makeCertificates(dir: string) {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=latchkey-test-ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
  );
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  );
  ssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "server.ext",
    "-out",
    "server.crt",
  );
  ssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=latchkey-client",
    "-keyout",
    "client.key",
    "-out",
    "client.csr",
  );
  ssl(
    "x509",
    "-req",
    "-in",
    "client.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-out",
    "client.crt",
  );
  const f = (name: string) => join(dir, name);
  return {
    ca: f("ca.crt"),
    serverCert: f("server.crt"),
    serverKey: f("server.key"),
    clientCert: f("client.crt"),
    clientKey: f("client.key"),
  };
}

describe("createRpcServer over TLS", {
  skip: haveOpenssl ? false : "openssl CLI not found",
}, () => {
  let dir: string;
  let certs: ReturnType<typeof makeCertificates>;
  const servers: RpcServer[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "latchkey-tls-"));
    certs = makeCertificates(dir);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  test("serves gRPC over TLS and HTTP/1.1 probes over TLS", async () => {
    const ctx = await startServer({
      tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
    });
    servers.push(ctx.server);
    assert.match(ctx.url, /^https:\/\//);
    const transport = createClientTransport({
      baseUrl: ctx.url,
      credential: "good",
      tls: { caFile: certs.ca },
    });
    try {
      const res = await createClient(TokenService, transport).getToken({
        name: "tenants/a/tokens/t",
      });
      assert.equal(res.token?.displayName, "admin:key_test");
    } finally {
      transport.close();
    }
    const status = await new Promise<number | undefined>((resolve, reject) => {
      https
        .get(`${ctx.url}/readyz`, { ca: execFileSync("cat", [certs.ca]) }, (res) => {
          res.resume();
          resolve(res.statusCode);
        })
        .on("error", reject);
    });
    assert.equal(status, 200);
  });

  test("requires a client certificate signed by the CA when caFile is set (mTLS)", async () => {
    const ctx = await startServer({
      tls: { certFile: certs.serverCert, keyFile: certs.serverKey, caFile: certs.ca },
    });
    servers.push(ctx.server);

    const without = createClientTransport({ baseUrl: ctx.url, tls: { caFile: certs.ca } });
    try {
      // TLS 1.3 refuses after the handshake with a "certificate required" alert, which
      // connect-node reports as Internal with the TLS error as cause.
      const err = await rejection(createClient(Health, without).check({ service: "" }));
      assert.match(String(err.cause), /certificate required/);
    } finally {
      without.close();
    }

    const withCert = createClientTransport({
      baseUrl: ctx.url,
      tls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey },
    });
    try {
      const res = await createClient(Health, withCert).check({ service: "" });
      assert.equal(res.status, ServingStatus.SERVING);
    } finally {
      withCert.close();
    }
  });
});
