/**
 * Path globs for policy rules, matched against the canonical path: the exact bytes the
 * gateway forwards after the upstream slug, percent-encoding untouched.
 *
 * Syntax:
 * - A glob starts with `/` and is split into segments on `/`.
 * - `*` matches characters within one segment (never `/`). A segment that is only `*`
 *   needs at least one character, so `/v1/charges/*` does not match `/v1/charges/`.
 * - A segment that is exactly `**` matches zero or more whole segments, so
 *   `/v1/charges/**` matches `/v1/charges`, `/v1/charges/` and `/v1/charges/ch_1/refunds`.
 *   `**` inside a segment (`/a**b`) is rejected as ambiguous.
 * - Every other character is literal, including `%`: `/files/a%2Fb` matches only those bytes.
 *   Matching is case-sensitive, like the paths it guards.
 */

/** Longest glob accepted, in characters. */
export const maxGlobLength = 1024;

/** Returns the problem with a glob, or undefined when it is well formed. */
export function globProblem(glob: string): string | undefined {
  if (glob.length === 0) return "is empty";
  if (glob.length > maxGlobLength) return `is longer than ${maxGlobLength} characters`;
  if (!glob.startsWith("/")) return "must start with /";
  // `?` and `#` would start a query or fragment: paths are matched without them, so a glob
  // holding one could never match and is almost certainly a mistake.
  if (glob.includes("?")) return "must not contain ? (the query string is not matched)";
  if (glob.includes("#")) return "must not contain #";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
  if (/[\u0000-\u0020\u007f]/.test(glob)) return "must not contain spaces or control characters";
  if (glob.includes("\\")) return "must not contain a backslash";
  const segments = glob.slice(1).split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    // An empty segment is only allowed last (a trailing slash): `//` never reaches policy
    // because the gateway rejects such paths, so a glob with one is a typo.
    if (segment === "" && i < segments.length - 1) return "must not contain an empty segment (//)";
    if (segment === "." || segment === "..") return "must not contain . or .. segments";
    if (segment !== "**" && segment.includes("**")) {
      return "may use ** only as a whole segment (e.g. /v1/**)";
    }
    if (/%(?![0-9A-Fa-f]{2})/.test(segment)) return "has a malformed percent-encoding";
  }
  return undefined;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** Converts one well-formed glob into the source of an anchored regular expression. */
function globSource(glob: string): string {
  const segments = glob.slice(1).split("/");
  let source = "";
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment === "**") {
      // Zero or more whole segments, including a trailing slash: `(?:/[^/]*)*`.
      source += "(?:/[^/]*)*";
      continue;
    }
    if (segment === "*") {
      source += "/[^/]+";
      continue;
    }
    source += `/${segment.split("*").map(escapeRegExp).join("[^/]*")}`;
  }
  return source;
}

/** A compiled set of globs: matches a path when any glob does. */
export interface PathMatcher {
  /** Whether `path` (query string, if any, ignored) is matched by one of the globs. */
  test(path: string): boolean;
}

const matchEverything: PathMatcher = { test: () => true };

/**
 * Compiles globs into one matcher (a single regular expression with one alternative per
 * glob). An empty list matches every path. Throws when a glob is malformed; validate with
 * {@link globProblem} first to report problems to users.
 */
export function compileGlobs(globs: readonly string[]): PathMatcher {
  if (globs.length === 0) return matchEverything;
  const sources = globs.map((glob) => {
    const problem = globProblem(glob);
    if (problem !== undefined) throw new Error(`path glob ${JSON.stringify(glob)} ${problem}`);
    return globSource(glob);
  });
  const re = new RegExp(`^(?:${sources.join("|")})$`);
  return {
    test(path: string): boolean {
      // The query string is never part of the match: a deny rule on `/admin` must not be
      // bypassed by `/admin?x=1` if a caller passes the request target instead of the path.
      const q = path.indexOf("?");
      return re.test(q === -1 ? path : path.slice(0, q));
    },
  };
}
