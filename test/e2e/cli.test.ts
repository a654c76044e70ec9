import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { embeddedEnv, type LatchkeyProcess, startLatchkey } from "../fixtures/processes.ts";
import { type RecordingUpstream, startRecordingUpstream } from "../fixtures/upstream.ts";

const cli = fileURLToPath(new URL("../../cli/latchkey.ts", import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), "latchkey-cli-"));
let latchkey: LatchkeyProcess;
let upstream: RecordingUpstream;
const realSecret = "walkthrough-upstream-secret";

/** Runs `latchkey <args>` as a user would, with optional stdin; resolves with its output. */
function lk(
  args: string[],
  stdin?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: {
        ...process.env,
        LATCHKEY_DATA_DIR: dataDir,
        LATCHKEY_URL: latchkey.urls.rpc,
        LATCHKEY_ADMIN_KEY: "",
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? "");
  });
}

before(async () => {
  upstream = await startRecordingUpstream(realSecret);
  latchkey = await startLatchkey(["run", "all"], embeddedEnv(dataDir), ["rpc", "gateway"]);
});

after(async () => {
  await latchkey?.stop();
  await upstream?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

// The README's walkthrough, command by command, with a local upstream instead of httpbin.org.
test("the README walkthrough works through the CLI", async () => {
  const credential = await lk(
    ["credential", "create", "acme", "demo-key", "--scheme", "bearer", "--origin", upstream.origin],
    realSecret,
  );
  assert.equal(credential.code, 0, credential.stderr);
  assert.ok(!credential.stdout.includes(realSecret), "the CLI never prints the material");

  const created = await lk([
    "upstream",
    "create",
    "acme",
    "demo",
    "--origin",
    upstream.origin,
    "--credential",
    "tenants/acme/credentials/demo-key",
  ]);
  assert.equal(created.code, 0, created.stderr);

  const policyFile = join(dataDir, "policy.json");
  writeFileSync(
    policyFile,
    JSON.stringify({
      rules: [
        {
          id: "read-anything",
          effect: "EFFECT_ALLOW",
          upstreams: ["demo"],
          methods: ["GET"],
          paths: ["/anything/**"],
        },
      ],
    }),
  );
  const policy = await lk(["policy", "put", "acme", "--file", policyFile]);
  assert.equal(policy.code, 0, policy.stderr);
  assert.match(policy.stdout, /"version": "1"/);

  const token = await lk(["token", "create", "acme", "--subject", "demo-app", "--ttl", "24h"]);
  assert.equal(token.code, 0, token.stderr);
  const [secret, metadata] = token.stdout.trim().split("\n") as [string, string];
  assert.match(secret, /^lk_[0-9A-Za-z]{33}$/);
  const tokenName = (JSON.parse(metadata) as { name: string }).name;

  const gateway = latchkey.urls.gateway as string;
  const ok = await fetch(`${gateway}/demo/anything/hello`, {
    headers: { authorization: `Bearer ${secret}` },
  });
  assert.equal(ok.status, 200);
  assert.equal(upstream.received.at(-1)?.headers.authorization, `Bearer ${realSecret}`);
  const post = await fetch(`${gateway}/demo/anything/x`, {
    method: "POST",
    headers: { authorization: `Bearer ${secret}` },
  });
  assert.equal(post.status, 403);

  const revoked = await lk(["token", "revoke", tokenName, "--reason", "walkthrough"]);
  assert.equal(revoked.code, 0, revoked.stderr);
  let status = 0;
  for (let i = 0; i < 50 && status !== 401; i++) {
    status = (await fetch(`${gateway}/demo/anything/hello`, { headers: { "x-api-key": secret } }))
      .status;
  }
  assert.equal(status, 401);

  let audit = "";
  for (let i = 0; i < 50 && !audit.includes('"status":401'); i++) {
    audit = (await lk(["audit", "list", "acme", "--token", tokenName])).stdout;
  }
  assert.match(audit, /"status":200/);
  assert.match(audit, /"status":403/);
  assert.match(audit, /"status":401/);
  assert.ok(
    !audit.includes(secret) && !audit.includes(realSecret),
    "no secret in the audit output",
  );
});

test("bad command lines get a usage message and exit code 2", async () => {
  const missing = await lk(["upstream", "create", "acme"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /usage: latchkey upstream create/);
  const unknown = await lk(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /latchkey run <all\|token/);
  const noSecret = await lk(
    ["credential", "create", "acme", "x", "--origin", "https://example.com"],
    "",
  );
  assert.equal(noSecret.code, 2);
  assert.match(noSecret.stderr, /secret on stdin is empty/);
});

test("the executable runs by its #! line (env -S node with the shipped V8 flags)", async () => {
  const result = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    // As `npx latchkey` or `npm start` runs it: the file itself, `node` found on PATH.
    const child = spawn(cli, ["--help"], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` },
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout }));
  });
  assert.equal(result.code, 0);
  assert.match(result.stdout, /latchkey run <all\|token\|policy\|vault\|audit\|gateway>/);
});

test("server-side errors are printed plainly with exit code 1", async () => {
  const res = await lk([
    "upstream",
    "create",
    "acme",
    "bad",
    "--origin",
    "https://user:pw@example.com/path",
  ]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^error: /);
  assert.ok(!res.stderr.includes("pw@"), "credentials in a rejected origin are not echoed");
});
