import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import {
  TokenService,
  VerifyFailure,
  type VerifyTokenResponseSchema,
} from "../../libs/gen/latchkey/token/v1/token_pb.js";
import { createLogger } from "../../libs/log/index.ts";
import { generateTokenSecret } from "../../libs/token-format/index.ts";
import { refusals } from "./refusal.ts";
import { createVerifier, type VerifiedToken, type VerifierOptions } from "./verify.ts";

const secretA = generateTokenSecret().secret;
const secretA2 = generateTokenSecret().secret; // the same token after a rotation
const secretB = generateTokenSecret().secret;
const nameA = "tenants/acme/tokens/tok_a";
const nameB = "tenants/acme/tokens/tok_b";

type Answer = MessageInitShape<typeof VerifyTokenResponseSchema> | Error;
let answers: Map<string, Answer>;
let calls: string[];
let clock: number;
/** When set, VerifyToken waits for it before answering. */
let gate: Promise<void> | undefined;

const transport = createRouterTransport((router) => {
  router.service(TokenService, {
    async verifyToken(req) {
      calls.push(req.secret);
      if (gate) await gate;
      const answer = answers.get(req.secret) ?? {
        failure: VerifyFailure.NOT_FOUND,
        cacheTtl: durationFromMs(60_000),
      };
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
});

function valid(name: string, ttlMs = 60_000, extra: { expireMs?: number } = {}): Answer {
  return {
    claims: {
      name,
      tenant: "acme",
      subject: "s",
      expireTime: extra.expireMs === undefined ? undefined : timestampFromMs(extra.expireMs),
    },
    cacheTtl: durationFromMs(ttlMs),
  };
}

function verifier(options: Partial<VerifierOptions> = {}) {
  return createVerifier({
    tokenClient: createClient(TokenService, transport),
    log: createLogger({ level: "silent" }),
    maxTtlMs: 10_000,
    maxEntries: 100,
    maxNegativeEntries: 100,
    staleIfErrorMs: 5_000,
    now: () => clock,
    ...options,
  });
}

beforeEach(() => {
  answers = new Map([
    [secretA, valid(nameA)],
    [secretA2, valid(nameA)],
    [secretB, valid(nameB)],
  ]);
  calls = [];
  clock = 1_000_000;
  gate = undefined;
});

describe("verify", () => {
  test("malformed tokens are refused without an RPC", async () => {
    const v = verifier();
    assert.equal(await v.verify(undefined), refusals.tokenMissing);
    assert.equal(await v.verify(""), refusals.tokenInvalid);
    assert.equal(await v.verify("lk_short"), refusals.tokenInvalid);
    assert.equal(await v.verify(`xx_${"a".repeat(33)}`), refusals.tokenInvalid);
    assert.equal(await v.verify(`lk_${"a".repeat(32)}!`), refusals.tokenInvalid);
    // Right length and alphabet, wrong checksum: a typo in a real token.
    const real = generateTokenSecret().secret;
    const typo = `${real.slice(0, 10)}${real[10] === "x" ? "y" : "x"}${real.slice(11)}`;
    assert.equal(await v.verify(typo), refusals.tokenInvalid);
    assert.deepEqual(calls, []);
  });

  test("a verdict is cached for min(cache_ttl, maxTtlMs); a warm hit is synchronous", async () => {
    const v = verifier({ maxTtlMs: 1_000 });
    const first = (await v.verify(secretA)) as VerifiedToken;
    assert.equal(first.name, nameA);
    assert.equal(first.tenant, "acme");
    assert.deepEqual(first.policyToken, { id: "tok_a", subject: "s", attributes: {} });
    const hit = v.verify(secretA);
    assert.equal(hit, first, "served from the cache without a promise");
    clock += 1_001;
    await v.verify(secretA);
    assert.deepEqual(calls, [secretA, secretA]);
  });

  test("a zero cache_ttl is never cached", async () => {
    answers.set(secretA, valid(nameA, 0));
    const v = verifier();
    await v.verify(secretA);
    await v.verify(secretA);
    assert.equal(calls.length, 2);
  });

  test("refusals are cached too, and report the reason", async () => {
    answers.set(secretB, { failure: VerifyFailure.REVOKED, cacheTtl: durationFromMs(60_000) });
    const v = verifier();
    assert.equal(await v.verify(secretB), refusals.tokenRevoked);
    assert.equal(await v.verify(secretB), refusals.tokenRevoked);
    assert.equal(calls.length, 1);
    answers.set(secretB, { failure: VerifyFailure.EXPIRED, cacheTtl: durationFromMs(60_000) });
    v.clear();
    assert.equal(await v.verify(secretB), refusals.tokenExpired);
  });

  test("a cached valid verdict stops working when the token expires", async () => {
    answers.set(secretA, valid(nameA, 60_000, { expireMs: clock + 500 }));
    const v = verifier();
    assert.equal((await v.verify(secretA)).kind, "token");
    clock += 501;
    assert.equal(await v.verify(secretA), refusals.tokenExpired);
  });

  test("invalidating a token drops every secret of it, and only it", async () => {
    const v = verifier();
    await v.verify(secretA);
    await v.verify(secretA2);
    await v.verify(secretB);
    assert.equal(calls.length, 3);
    v.invalidateToken(nameA);
    await v.verify(secretA);
    await v.verify(secretA2);
    await v.verify(secretB);
    assert.deepEqual(calls.slice(3), [secretA, secretA2]);
  });

  test("invalidation also drops cached refusals (an update may revive a token)", async () => {
    const unknown = generateTokenSecret().secret;
    const v = verifier();
    assert.equal(await v.verify(unknown), refusals.tokenInvalid);
    answers.set(unknown, valid("tenants/acme/tokens/tok_d"));
    v.invalidateToken("tenants/acme/tokens/tok_d");
    assert.equal((await v.verify(unknown)).kind, "token");
  });

  test("concurrent misses share one VerifyToken call", async () => {
    const v = verifier();
    let open: () => void = () => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    const pending = [v.verify(secretA), v.verify(secretA), v.verify(secretA)];
    open();
    const results = await Promise.all(pending);
    assert.equal(calls.length, 1);
    assert.ok(results.every((r) => r === results[0]));
  });

  test("an answer that raced an invalidation is used once but not cached", async () => {
    const v = verifier();
    let open: () => void = () => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    const pending = v.verify(secretA);
    v.invalidateToken(nameA); // the revocation event arrives while VerifyToken is in flight
    open();
    assert.equal((await pending).kind, "token");
    gate = undefined;
    answers.set(secretA, { failure: VerifyFailure.REVOKED, cacheTtl: durationFromMs(60_000) });
    assert.equal(await v.verify(secretA), refusals.tokenRevoked);
  });

  test("a stale verdict stands in while the token service fails, then 503", async () => {
    const v = verifier({ maxTtlMs: 1_000, staleIfErrorMs: 5_000 });
    await v.verify(secretA);
    answers.set(secretA, new Error("connection refused"));
    clock += 1_500;
    const stale = (await v.verify(secretA)) as VerifiedToken;
    assert.equal(stale.kind, "token");
    assert.equal(stale.stale, true);
    clock += 5_000;
    assert.equal(await v.verify(secretA), refusals.tokenServiceUnavailable);
  });

  test("without a cached verdict a failing token service means 503", async () => {
    answers.set(secretA, new Error("down"));
    const v = verifier();
    assert.equal(await v.verify(secretA), refusals.tokenServiceUnavailable);
  });

  test("a revoked token is not revived by stale data", async () => {
    const v = verifier({ maxTtlMs: 1_000 });
    await v.verify(secretA);
    v.invalidateToken(nameA);
    answers.set(secretA, new Error("down"));
    assert.equal(await v.verify(secretA), refusals.tokenServiceUnavailable);
  });

  test("a revocation during a failing reload does not bring the stale verdict back", async () => {
    const v = verifier({ maxTtlMs: 1_000, staleIfErrorMs: 5_000 });
    await v.verify(secretA);
    clock += 1_500; // past fresh: the next request reloads
    answers.set(secretA, new Error("timeout"));
    let open: () => void = () => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    const reloading = v.verify(secretA);
    v.invalidateToken(nameA); // the REVOKED event arrives while the reload is in flight
    open();
    assert.equal(await reloading, refusals.tokenServiceUnavailable);
    gate = undefined;
    assert.equal(await v.verify(secretA), refusals.tokenServiceUnavailable);
  });

  test("a request after an invalidation does not join a call that started before it", async () => {
    const v = verifier();
    let open: () => void = () => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    const early = v.verify(secretA);
    v.invalidateToken(nameA);
    answers.set(secretA, { failure: VerifyFailure.REVOKED, cacheTtl: durationFromMs(60_000) });
    const late = v.verify(secretA);
    open();
    await early;
    assert.equal(await late, refusals.tokenRevoked);
    assert.equal(calls.length, 2, "the later request made its own VerifyToken call");
  });

  test("junk tokens fill the refusal cache without evicting valid verdicts", async () => {
    const v = verifier({ maxEntries: 10, maxNegativeEntries: 2 });
    await v.verify(secretA);
    for (let i = 0; i < 20; i++) await v.verify(generateTokenSecret().secret);
    const before = calls.length;
    await v.verify(secretA);
    assert.equal(calls.length, before);
  });
});
