import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  type InjectionScheme,
  InjectionSchemeSchema,
  type SecretMaterial,
  SecretMaterialSchema,
} from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { validateMaterial, validateScheme } from "./scheme.ts";

const secret = "sk_live_DO_NOT_ECHO";

const bearer = create(InjectionSchemeSchema, { kind: { case: "bearer", value: {} } });
const basic = create(InjectionSchemeSchema, { kind: { case: "basic", value: {} } });
const header = (...headerNames: string[]) =>
  create(InjectionSchemeSchema, { kind: { case: "header", value: { headerNames } } });
const query = (parameter: string) =>
  create(InjectionSchemeSchema, { kind: { case: "query", value: { parameter } } });

const token = (value: string) => create(SecretMaterialSchema, { kind: { case: "token", value } });
const headers = (values: Record<string, string>) =>
  create(SecretMaterialSchema, { kind: { case: "headers", value: { values } } });
const basicAuth = (username: string, password: string) =>
  create(SecretMaterialSchema, { kind: { case: "basic", value: { username, password } } });

/** Asserts InvalidArgument whose message does not contain the secret. */
function rejects(fn: () => void, pattern?: RegExp): void {
  assert.throws(fn, (err: Error & { kind?: string }) => {
    assert.equal(err.kind, "invalid_argument");
    assert.ok(!err.message.includes(secret), `message echoes the secret: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe("validateScheme", () => {
  test("accepts each scheme", () => {
    for (const scheme of [bearer, basic, header("x-api-key", "x-tenant"), query("api_key")]) {
      assert.equal(validateScheme(scheme), scheme);
    }
  });

  test("refuses a missing scheme", () => {
    rejects(() => validateScheme(undefined), /bearer, header, basic or query/);
    rejects(() => validateScheme(create(InjectionSchemeSchema)));
  });

  test("refuses bad header names", () => {
    rejects(() => validateScheme(header()), /must not be empty/);
    rejects(() => validateScheme(header("X-Api-Key")), /lower-case/);
    rejects(() => validateScheme(header("x api")), /lower-case/);
    rejects(() => validateScheme(header("x-key:")), /lower-case/);
    rejects(() => validateScheme(header("x-a", "x-a")), /repeated/);
    for (const reserved of [
      "host",
      "content-length",
      "connection",
      "transfer-encoding",
      "te",
      "upgrade",
      "keep-alive",
      "proxy-authorization",
    ]) {
      rejects(() => validateScheme(header(reserved)), /managed by the gateway/);
    }
  });

  test("refuses bad query parameter names", () => {
    for (const name of ["", "a b", "a&b", "a=b", "k%20", "x".repeat(129)]) {
      rejects(() => validateScheme(query(name)), /scheme\.query\.parameter/);
    }
  });
});

describe("validateMaterial", () => {
  const ok: [InjectionScheme, SecretMaterial][] = [
    [bearer, token(secret)],
    [query("key"), token("any value at all, spaces & symbols=")],
    [header("x-api-key"), headers({ "x-api-key": secret })],
    [header("x-a", "x-b"), headers({ "x-a": "one", "x-b": "two words" })],
    [basic, basicAuth("user", secret)],
    [basic, basicAuth(secret, "")],
    [basic, basicAuth("", secret)],
  ];

  test("accepts material that fits its scheme", () => {
    for (const [scheme, material] of ok) validateMaterial(scheme, material);
  });

  test("refuses material of another kind", () => {
    rejects(() => validateMaterial(bearer, headers({ "x-api-key": secret })), /material\.token/);
    rejects(() => validateMaterial(bearer, undefined), /material\.token/);
    rejects(() => validateMaterial(query("k"), basicAuth("u", secret)), /material\.token/);
    rejects(() => validateMaterial(header("x-k"), token(secret)), /material\.headers/);
    rejects(() => validateMaterial(basic, token(secret)), /material\.basic/);
  });

  test("header material must cover exactly the scheme's names", () => {
    rejects(() => validateMaterial(header("x-a", "x-b"), headers({ "x-a": secret })), /x-a, x-b/);
    rejects(
      () => validateMaterial(header("x-a"), headers({ "x-a": secret, [secret]: "v" })),
      /exactly/,
    );
    rejects(() => validateMaterial(header("x-a"), headers({ "X-A": secret })), /exactly/);
  });

  test("refuses values that could split or corrupt a request", () => {
    rejects(() => validateMaterial(bearer, token("")));
    rejects(() => validateMaterial(bearer, token(`${secret} x`)));
    rejects(() => validateMaterial(bearer, token(`${secret}\r\nx-evil: 1`)));
    rejects(() => validateMaterial(bearer, token("x".repeat(8193))));
    rejects(() => validateMaterial(query("k"), token(`${secret}\n`)));
    rejects(() => validateMaterial(header("x-a"), headers({ "x-a": `${secret}\r\n` })));
    rejects(() => validateMaterial(header("x-a"), headers({ "x-a": ` ${secret}` })));
    rejects(() => validateMaterial(header("x-a"), headers({ "x-a": "" })));
    rejects(() => validateMaterial(header("x-a"), headers({ "x-a": "😀" })));
    rejects(() => validateMaterial(basic, basicAuth("user\n", secret)));
    rejects(() => validateMaterial(basic, basicAuth("u", `${secret}\u0000`)));
  });

  test("a basic username must not contain a colon (RFC 7617)", () => {
    rejects(() => validateMaterial(basic, basicAuth(`a:${secret}`, "p")), /':'/);
    rejects(() => validateMaterial(basic, basicAuth("", "")), /username or a password/);
  });
});
