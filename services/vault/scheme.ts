import { invalidArgument } from "../../libs/errors/index.ts";
import type { InjectionScheme, SecretMaterial } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";

/** RFC 9110 §5.6.2 `token`, lower case only (the form the gateway compares names in), ≤ 128. */
const headerNamePattern = /^[!#$%&'*+\-.^_`|~0-9a-z]{1,128}$/;

/**
 * Names the gateway owns: hop-by-hop headers (RFC 9110 §7.6.1) would be stripped or break
 * the connection, and Host / Content-Length decide routing and framing (request smuggling).
 */
const reservedHeaders = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
  "host",
  "content-length",
]);

/** Unreserved URI characters (RFC 3986 §2.3): a parameter name that never needs escaping. */
const queryParameterPattern = /^[A-Za-z0-9._~-]{1,128}$/;

/**
 * RFC 9110 §5.5 field-value: visible ASCII or obs-text, inner spaces and tabs, no leading or
 * trailing whitespace. Also exactly what undici lets through, so injection cannot fail late.
 */
const headerValuePattern = /^[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?$/;
/** A bearer token: visible ASCII without spaces, as RFC 6750's b64token and real API keys are. */
const bearerPattern = /^[\x21-\x7e]+$/;
/** No control characters: CR and LF above all, anywhere material may end up. */
const controlCharacter = /\p{Cc}/u;

/** Longest accepted secret value; real API keys and JWTs stay far below it. */
const maxValueLength = 8192;
/** Most headers one header-scheme credential may set. */
const maxHeaders = 16;

/**
 * Checks an injection scheme and returns it. Throws InvalidArgument naming the problem;
 * schemes hold no secrets, so their fields may appear in messages.
 */
export function validateScheme(scheme: InjectionScheme | undefined): InjectionScheme {
  const kind = scheme?.kind;
  switch (kind?.case) {
    case "bearer":
    case "basic":
      return scheme as InjectionScheme;
    case "header": {
      const names = kind.value.headerNames;
      if (names.length === 0) throw invalidArgument("scheme.header.header_names must not be empty");
      if (names.length > maxHeaders) {
        throw invalidArgument(`scheme.header.header_names allows at most ${maxHeaders} names`);
      }
      const seen = new Set<string>();
      for (const name of names) {
        if (!headerNamePattern.test(name)) {
          throw invalidArgument(
            `scheme.header.header_names: ${JSON.stringify(name.slice(0, 100))} is not a lower-case header name`,
          );
        }
        if (reservedHeaders.has(name)) {
          throw invalidArgument(
            `scheme.header.header_names: ${name} is managed by the gateway and cannot be injected`,
          );
        }
        if (seen.has(name))
          throw invalidArgument(`scheme.header.header_names: ${name} is repeated`);
        seen.add(name);
      }
      return scheme as InjectionScheme;
    }
    case "query":
      if (!queryParameterPattern.test(kind.value.parameter)) {
        throw invalidArgument(
          "scheme.query.parameter must be 1-128 characters of letters, digits, '.', '_', '~' or '-'",
        );
      }
      return scheme as InjectionScheme;
    default:
      throw invalidArgument("credential.scheme must be one of bearer, header, basic or query");
  }
}

/**
 * Checks that `material` fits `scheme` (already validated). Messages name fields and rules
 * only: never a value, and never a key of the material's header map, since a secret pasted
 * into the wrong field must not come back in an error.
 */
export function validateMaterial(
  scheme: InjectionScheme,
  material: SecretMaterial | undefined,
): void {
  const kind = material?.kind;
  switch (scheme.kind.case) {
    case "bearer":
      if (kind?.case !== "token") throw invalidArgument("the bearer scheme needs material.token");
      checkValue("material.token", kind.value, bearerPattern, "visible ASCII without spaces");
      return;
    case "query":
      if (kind?.case !== "token") throw invalidArgument("the query scheme needs material.token");
      if (
        kind.value.length === 0 ||
        kind.value.length > maxValueLength ||
        controlCharacter.test(kind.value)
      ) {
        throw invalidArgument(
          `material.token must be 1-${maxValueLength} characters without control characters`,
        );
      }
      return;
    case "header": {
      if (kind?.case !== "headers")
        throw invalidArgument("the header scheme needs material.headers");
      const expected = scheme.kind.value.headerNames;
      const given = Object.keys(kind.value.values);
      if (
        given.length !== expected.length ||
        !expected.every((name) => Object.hasOwn(kind.value.values, name))
      ) {
        throw invalidArgument(
          `material.headers must hold values for exactly the scheme's header names: ${expected.join(", ")}`,
        );
      }
      for (const name of expected) {
        checkValue(
          `material.headers[${name}]`,
          kind.value.values[name] ?? "",
          headerValuePattern,
          "a header value (no control characters, no surrounding whitespace)",
        );
      }
      return;
    }
    case "basic": {
      if (kind?.case !== "basic") throw invalidArgument("the basic scheme needs material.basic");
      const { username, password } = kind.value;
      if (username.includes(":")) {
        // RFC 7617 §2: the first colon separates user-id from password.
        throw invalidArgument("material.basic.username must not contain ':'");
      }
      if (username === "" && password === "") {
        throw invalidArgument("material.basic needs a username or a password");
      }
      for (const [field, value] of [
        ["material.basic.username", username],
        ["material.basic.password", password],
      ] as const) {
        if (value.length > maxValueLength || controlCharacter.test(value)) {
          throw invalidArgument(
            `${field} must be at most ${maxValueLength} characters without control characters`,
          );
        }
      }
      return;
    }
    default:
      throw invalidArgument("credential.scheme must be one of bearer, header, basic or query");
  }
}

function checkValue(field: string, value: string, pattern: RegExp, rule: string): void {
  if (value.length === 0 || value.length > maxValueLength || !pattern.test(value)) {
    throw invalidArgument(`${field} must be 1-${maxValueLength} characters of ${rule}`);
  }
}
