import { invalidArgument } from "../../libs/errors/index.ts";

/**
 * `scheme://authority` with at most one trailing `/`, and nothing WHATWG URL parsing would
 * silently repair: `https:host` without slashes, backslashes (`https:\\host`), whitespace
 * or control characters. An origin that only matches after repair is not the origin the
 * caller wrote, so it is refused rather than guessed at.
 */
const shape = /^(https?):\/\/([^/?#\\@\s\p{Cc}]+)\/?$/iu;

/**
 * Normalizes an origin to `scheme://host[:port]`: scheme and host lower-cased, IDNs in
 * punycode, the default port dropped, a single trailing `/` accepted. Throws
 * InvalidArgument for anything else (schemes other than http and https, user information,
 * a path, query or fragment), so two spellings of one origin always compare equal and
 * nothing that is not an origin passes as one.
 *
 * Shared need: the gateway and the policy service normalize upstream origins the same way.
 * Components may not import each other, so this belongs in libs/ once a second user exists.
 */
export function normalizeOrigin(input: string, field = "origin"): string {
  if (input.includes("@")) {
    // Never echo the input here: user information may hold a password.
    throw invalidArgument(`${field} must not contain user information`);
  }
  const url = shape.test(input) ? URL.parse(input) : null;
  if (!url || url.hostname === "") {
    throw invalidArgument(
      `${field} must be an http or https origin like https://host[:port] (no path, query or fragment), got ${quote(input)}`,
    );
  }
  // `host` keeps a non-default port and drops the scheme's default one (443, 80).
  return `${url.protocol}//${url.host}`;
}

/** Quotes caller input for an error message, cut short so a message stays readable. */
function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}
