import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { type LatchkeyProcess, startLatchkey } from "../fixtures/processes.ts";

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
const loaded = grpc.loadPackageDefinition(definition) as unknown as Record<string, any>;

type Call = (method: string, request: object) => Promise<any>;

const dataDir = mkdtempSync(join(tmpdir(), "latchkey-interop-"));
let latchkey: LatchkeyProcess;
let call: (service: any) => Call;

before(async () => {
  latchkey = await startLatchkey(
    ["run", "all"],
    {
      LATCHKEY_DATA_DIR: dataDir,
      LATCHKEY_RPC_PORT: "0",
      LATCHKEY_GATEWAY_PORT: "0",
      LATCHKEY_DATABASE_URL: "",
      LATCHKEY_NATS_URL: "",
    },
    ["rpc", "gateway"],
  );
  const address = new URL(latchkey.urls.rpc as string).host;
  const metadata = new grpc.Metadata();
  metadata.set(
    "authorization",
    `Bearer ${readFileSync(join(dataDir, "admin-key"), "utf8").trim()}`,
  );
  call = (Service) => {
    const client = new Service(address, grpc.credentials.createInsecure());
    return (method, request) =>
      new Promise((resolve, reject) =>
        client[method](request, metadata, (err: grpc.ServiceError | null, res: unknown) =>
          err ? reject(err) : resolve(res),
        ),
      );
  };
});

after(async () => {
  await latchkey?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("grpc-js: TokenService create, get, and NotFound with a readable message", async () => {
  const tokens = call(loaded.latchkey.token.v1.TokenService);
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
  const policy = call(loaded.latchkey.policy.v1.PolicyService);
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

  const vault = call(loaded.latchkey.vault.v1.VaultService);
  const created = await vault("CreateCredential", {
    parent: "tenants/interop",
    credentialId: "api-key",
    credential: { allowedOrigins: ["https://api.example.com"], scheme: { bearer: {} } },
    material: { token: "sk_interop_secret" },
  });
  assert.equal(created.credential.name, "tenants/interop/credentials/api-key");
  assert.ok(!JSON.stringify(created).includes("sk_interop_secret"), "material never comes back");

  const audit = call(loaded.latchkey.audit.v1.AuditService);
  const listed = await audit("ListEvents", { parent: "tenants/interop" });
  assert.ok(Array.isArray(listed.events));
});

test("grpc-js: an unauthenticated call is refused, health answers without a key", async () => {
  const address = new URL(latchkey.urls.rpc as string).host;
  const tokens = new loaded.latchkey.token.v1.TokenService(
    address,
    grpc.credentials.createInsecure(),
  );
  await assert.rejects(
    new Promise((resolve, reject) =>
      tokens.ListTokens({ parent: "tenants/interop" }, (err: unknown, res: unknown) =>
        err ? reject(err) : resolve(res),
      ),
    ),
    (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED,
  );
  const health = new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  const res = await new Promise<any>((resolve, reject) =>
    health.Check({ service: "latchkey.token.v1.TokenService" }, (err: unknown, r: unknown) =>
      err ? reject(err) : resolve(r),
    ),
  );
  assert.equal(res.status, "SERVING");
});
