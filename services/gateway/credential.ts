import type { Client } from "@connectrpc/connect";
import type {
  ResolveCredentialResponse,
  VaultService,
} from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import { type CacheEntry, createBoundedCache, createSingleFlight } from "./cache.ts";
import { ttlMs } from "./durations.ts";
import { errorName } from "./error-name.ts";
import { type Refusal, refusals } from "./refusal.ts";
import type { UpstreamTarget } from "./resolve-upstream.ts";

/**
 * Resolved credential material, prepared once per lease for injection. Holds secrets: it
 * lives only in this cache and on the outbound request, never in logs or events.
 */
export interface Credential {
  readonly kind: "credential";
  /** The credential version injected (audited); 0 when there is no credential. */
  readonly version: number;
  /** Headers to set, as flat name/value pairs (lower-case names). */
  readonly headers: readonly string[];
  /** Query parameter to set (replacing any the client sent), or undefined. */
  readonly query: { readonly name: string; readonly pair: string } | undefined;
  /**
   * Values whose appearance in a response header means the upstream echoed the credential:
   * such headers are removed before the response reaches the client.
   */
  readonly echoes: readonly string[];
}

/** What upstreams without a credential get: nothing injected. */
export const noCredential: Credential = {
  kind: "credential",
  version: 0,
  headers: [],
  query: undefined,
  echoes: [],
};

/** Options for createCredentials. */
export interface CredentialsOptions {
  vaultClient: Client<typeof VaultService>;
  log: Logger;
  maxEntries: number;
  /** Resolve again this long before the lease ends (at most half the lease). */
  renewMarginMs: number;
  now?: () => number;
}

/** Step 5 of the request path: the upstream's credential from the vault. */
export interface Credentials {
  /** The upstream's credential, noCredential when it has none, or 503's refusal. */
  resolve(upstream: UpstreamTarget): Credential | Refusal | Promise<Credential | Refusal>;
  /** Drops every cached lease of credential `name` (a change event arrived for it). */
  invalidateCredential(name: string): void;
  clear(): void;
}

/**
 * Header names a credential may never set: they would change the framing or target of
 * the request rather than authenticate it.
 */
const forbiddenHeaderNames = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "cookie",
]);
const headerName = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
// Field values (RFC 9110 §5.5): visible characters, spaces and tabs; no CR, LF or NUL.
const headerValue = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Echo scrubbing ignores values shorter than this: they would match innocent headers. */
const minEchoLength = 8;
const retryAfterErrorMs = 1_000;

/**
 * Creates the credential cache: one entry per (credential, origin), kept until its lease
 * ends minus a margin, dropped by change events, with single-flight loading. When the vault
 * fails, a cached lease is used until it truly ends, and never past it.
 */
export function createCredentials(options: CredentialsOptions): Credentials {
  const { vaultClient, log, renewMarginMs } = options;
  const now = options.now ?? Date.now;
  const cache = createBoundedCache<string, Credential>({ maxEntries: options.maxEntries });
  const flights = createSingleFlight<string, Credential | Refusal>();
  let epoch = 0;

  async function load(
    name: string,
    origin: string,
    key: string,
    previous: CacheEntry<Credential> | undefined,
  ): Promise<Credential | Refusal> {
    const startEpoch = epoch;
    let response: ResolveCredentialResponse;
    try {
      response = await vaultClient.resolveCredential({ name, origin });
    } catch (err) {
      const at = now();
      // A credential changed since (a version disabled as a kill switch) must not come back.
      if (previous !== undefined && epoch === startEpoch && at < previous.staleUntil) {
        log.warn({ credential: name, err: errorName(err) }, "vault failed; using the cached lease");
        const freshUntil = Math.min(at + retryAfterErrorMs, previous.staleUntil);
        cache.set(key, { ...previous, freshUntil });
        return previous.value;
      }
      log.warn({ credential: name, err: errorName(err) }, "vault failed");
      return refusals.credentialUnavailable;
    }
    const credential = prepare(response);
    if (typeof credential === "string") {
      log.error({ credential: name, problem: credential }, "credential cannot be injected");
      return refusals.credentialUnavailable;
    }
    const lease = ttlMs(response.lease);
    if (lease > 0 && epoch === startEpoch) {
      const start = now();
      const margin = Math.min(renewMarginMs, lease / 2);
      cache.set(key, {
        value: credential,
        freshUntil: start + lease - margin,
        staleUntil: start + lease,
      });
    }
    return credential;
  }

  return {
    resolve(upstream) {
      const name = upstream.credential;
      if (name === "") return noCredential;
      const key = `${name} ${upstream.origin}`;
      const entry = cache.get(key);
      if (entry !== undefined && now() < entry.freshUntil) return entry.value;
      // Keyed by epoch: a request after an invalidation never joins an older call.
      return flights.run(`${epoch} ${key}`, () => load(name, upstream.origin, key, entry));
    },
    invalidateCredential(name) {
      epoch++;
      const prefix = `${name} `;
      // Credentials are few and their changes rare: a scan beats keeping an index.
      for (const key of [...cache.keys()]) if (key.startsWith(prefix)) cache.delete(key);
    },
    clear() {
      epoch++;
      cache.clear();
    },
  };
}

/**
 * Turns a ResolveCredential answer into what rewrite() injects, or a problem description
 * (never containing the material) when the scheme and material disagree or a value could
 * not be sent safely in a header.
 */
export function prepare(response: ResolveCredentialResponse): Credential | string {
  const scheme = response.scheme?.kind;
  const material = response.material?.kind;
  if (scheme === undefined || material === undefined) return "scheme or material missing";
  const base = { kind: "credential" as const, version: response.version, query: undefined };
  switch (scheme.case) {
    case "bearer": {
      if (material.case !== "token") return "bearer scheme needs a token";
      const value = `Bearer ${material.value}`;
      if (!headerValue.test(value)) return "token is not a valid header value";
      return { ...base, headers: ["authorization", value], echoes: echoes([material.value]) };
    }
    case "basic": {
      if (material.case !== "basic") return "basic scheme needs a username and password";
      const { username, password } = material.value;
      if (username.includes(":")) return "username contains a colon (RFC 7617)";
      const encoded = Buffer.from(`${username}:${password}`, "utf8").toString("base64");
      return {
        ...base,
        headers: ["authorization", `Basic ${encoded}`],
        echoes: echoes([encoded, password]),
      };
    }
    case "header": {
      if (material.case !== "headers") return "header scheme needs header values";
      const values = material.value.values;
      const names =
        scheme.value.headerNames.length > 0 ? scheme.value.headerNames : Object.keys(values);
      const headers: string[] = [];
      const secrets: string[] = [];
      for (const rawName of names) {
        const name = rawName.toLowerCase();
        const value = values[name] ?? values[rawName];
        if (value === undefined) return `no value for header ${name}`;
        if (!headerName.test(name) || forbiddenHeaderNames.has(name) || name.startsWith("proxy-")) {
          return `header ${name} may not carry a credential`;
        }
        if (!headerValue.test(value)) return `value of header ${name} is not a valid header value`;
        headers.push(name, value);
        secrets.push(value);
      }
      if (headers.length === 0) return "header scheme names no header";
      return { ...base, headers, echoes: echoes(secrets) };
    }
    case "query": {
      if (material.case !== "token") return "query scheme needs a token";
      const name = scheme.value.parameter;
      if (name === "") return "query scheme names no parameter";
      const encoded = encodeURIComponent(material.value);
      return {
        ...base,
        headers: [],
        query: { name, pair: `${encodeURIComponent(name)}=${encoded}` },
        echoes: echoes([material.value, encoded]),
      };
    }
    default:
      return "unknown injection scheme";
  }
}

function echoes(values: readonly string[]): string[] {
  return [...new Set(values.filter((value) => value.length >= minEchoLength))];
}
