import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { TokenService } from "../gen/latchkey/token/v1/token_pb.js";
import { createInProcessTransport } from "./index.ts";
import { captureLog, secretInError, testAuthenticate, testRoutes } from "./test-service.ts";

function client(credential?: string) {
  const { log, lines } = captureLog();
  const transport = createInProcessTransport({
    routes: testRoutes,
    authenticate: testAuthenticate,
    log,
    ...(credential ? { credential } : {}),
  });
  return { tokens: createClient(TokenService, transport), lines };
}

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail("expected the call to fail");
}

describe("createInProcessTransport", () => {
  test("puts the authenticated principal in the handler context", async () => {
    const { tokens } = client("good");
    const res = await tokens.getToken({ name: "tenants/acme/tokens/tok_1" });
    assert.equal(res.token?.name, "tenants/acme/tokens/tok_1");
    assert.equal(res.token?.displayName, "admin:key_test");
  });

  test("without a credential the handler sees no principal", async () => {
    const { tokens } = client();
    const res = await tokens.getToken({ name: "tenants/acme/tokens/tok_1" });
    assert.equal(res.token?.displayName, "anonymous");
  });

  test("a credential that does not authenticate is refused before the handler", async () => {
    const { tokens } = client("bad");
    const err = await rejection(tokens.getToken({ name: "tenants/acme/tokens/tok_1" }));
    assert.equal(err.code, Code.Unauthenticated);
  });

  test("maps DomainError to its code and message", async () => {
    const { tokens } = client("gw");
    const err = await rejection(tokens.getToken({ name: "tenants/acme/tokens/missing" }));
    assert.equal(err.code, Code.NotFound);
    assert.equal(err.rawMessage, "token tenants/acme/tokens/missing not found");
  });

  test("hides other errors as Internal and logs the cause", async () => {
    const { tokens, lines } = client("gw");
    const err = await rejection(tokens.getToken({ name: "tenants/acme/tokens/boom" }));
    assert.equal(err.code, Code.Internal);
    assert.equal(err.rawMessage, "internal error");
    assert.ok(!JSON.stringify(err).includes(secretInError));
    assert.ok(!err.message.includes(secretInError));
    const failed = lines().find((l) => l.msg === "rpc failed");
    assert.ok(failed, "the Internal error is logged");
    assert.equal(failed.level, 50);
    assert.match(JSON.stringify(failed.err), /connection refused/);
  });

  test("an RPC left out of the implementation answers Unimplemented", async () => {
    const { tokens } = client("good");
    const err = await rejection(tokens.createToken({}));
    assert.equal(err.code, Code.Unimplemented);
  });

  test("logs one debug line per call with procedure, code and duration", async () => {
    const { tokens, lines } = client("good");
    await tokens.getToken({ name: "tenants/acme/tokens/tok_1" });
    const rpcLines = lines().filter((l) => l.msg === "rpc");
    assert.equal(rpcLines.length, 1);
    assert.equal(rpcLines[0]?.procedure, "latchkey.token.v1.TokenService/GetToken");
    assert.equal(rpcLines[0]?.code, "OK");
    assert.equal(typeof rpcLines[0]?.durationMs, "number");
    assert.ok(!JSON.stringify(lines()).includes("tok_1"), "request bodies are never logged");
  });
});
