import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { embeddedEnv, type LatchkeyProcess, startLatchkey } from "../fixtures/processes.ts";

// A client that shares no code with Latchkey: @grpc/grpc-js with the .proto files loaded at
// run time, as a user in another stack (or language) would integrate.
const protoDir = fileURLToPath(new URL("../../proto/", import.meta.url));
const definition = protoLoader.loadSync(
  [
    "latchkey/token/v1/token.proto",
    "latchkey/policy/v1/policy.proto",
    "latchkey/vault/v1/vault.proto",
    "latchkey/audit/v1/audit.proto",
    "grpc/health/v1/health.proto",
  ],
  { includeDirs: [protoDir], keepCase: false, longs: String, enums: String, defaults: true },
);
const loaded = grpc.loadPackageDefinition(definition);

/** A service constructor by its full name, e.g. `latchkey.token.v1.TokenService`. */
function service(fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = loaded;
  for (const part of fullName.split(".")) node = (node as grpc.GrpcObject)[part];
  return node as grpc.ServiceClientConstructor;
}

type Unary = (
  request: object,
  metadata: grpc.Metadata,
  callback: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;
// biome-ignore lint/suspicious/noExplicitAny: proto-loader decodes responses to untyped plain objects, read loosely here.
type Loose = Record<string, any>;
type Call = (method: string, request: object) => Promise<Loose>;

const dataDir = mkdtempSync(join(tmpdir(), "latchkey-interop-"));
let latchkey: LatchkeyProcess;
let call: (service: grpc.ServiceClientConstructor, metadata?: grpc.Metadata) => Call;

before(async () => {
  latchkey = await startLatchkey(["run", "all"], embeddedEnv(dataDir), ["rpc", "gateway"]);
  const address = new URL(latchkey.urls.rpc as string).host;
  const admin = new grpc.Metadata();
  admin.set("authorization", `Bearer ${readFileSync(join(dataDir, "admin-key"), "utf8").trim()}`);
  call = (Service, metadata = admin) => {
    const client = new Service(address, grpc.credentials.createInsecure()) as unknown as Record<
      string,
      Unary
    >;
    return (method, request) =>
      new Promise((resolve, reject) =>
        (client[method] as Unary).call(client, request, metadata, (err, res) =>
          err ? reject(err) : resolve(res as Loose),
        ),
      );
  };
});

after(async () => {
  await latchkey?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("grpc-js: TokenService create, get, and NotFound with a readable message", async () => {
  const tokens = call(service("latchkey.token.v1.TokenService"));
  const created = await tokens("CreateToken", {
    parent: "tenants/interop",
    token: { subject: "grpc-js" },
  });
  assert.match(created.secret, /^lk_/);
  const got = await tokens("GetToken", { name: created.token.name });
  assert.equal(got.token.subject, "grpc-js");
  assert.equal(got.token.state, "TOKEN_STATE_ACTIVE");
  await assert.rejects(
    tokens("GetToken", { name: "tenants/interop/tokens/tok_00000000000000000000000000" }),
    (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.match(err.details, /tenants\/interop\/tokens/);
      return true;
    },
  );
});

test("grpc-js: PolicyService, VaultService and AuditService answer", async () => {
  const policy = call(service("latchkey.policy.v1.PolicyService"));
  await policy("CreateUpstream", {
    parent: "tenants/interop",
    upstreamId: "api",
    upstream: { origin: "https://api.example.com" },
  });
  const { upstreams } = await policy("ListUpstreams", { parent: "tenants/interop" });
  assert.deepEqual(
    upstreams.map((u: { name: string }) => u.name),
    ["tenants/interop/upstreams/api"],
  );

  const vault = call(service("latchkey.vault.v1.VaultService"));
  const created = await vault("CreateCredential", {
    parent: "tenants/interop",
    credentialId: "api-key",
    credential: { allowedOrigins: ["https://api.example.com"], scheme: { bearer: {} } },
    material: { token: "sk_interop_secret" },
  });
  assert.equal(created.credential.name, "tenants/interop/credentials/api-key");
  assert.ok(!JSON.stringify(created).includes("sk_interop_secret"), "material never comes back");

  const audit = call(service("latchkey.audit.v1.AuditService"));
  const listed = await audit("ListEvents", { parent: "tenants/interop" });
  assert.ok(Array.isArray(listed.events));
});

test("grpc-js: an unauthenticated call is refused, health answers without a key", async () => {
  const anonymous = new grpc.Metadata();
  await assert.rejects(
    call(service("latchkey.token.v1.TokenService"), anonymous)("ListTokens", {
      parent: "tenants/interop",
    }),
    (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED,
  );
  const health = call(service("grpc.health.v1.Health"), anonymous);
  const res = await health("Check", { service: "latchkey.token.v1.TokenService" });
  assert.equal(res.status, "SERVING");
});
