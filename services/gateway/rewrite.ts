import type { Credential } from "./credential.ts";
import { connectionNamed, hopByHop } from "./headers.ts";
import type { ProxyRoute } from "./route.ts";

/** What rewrite() reads of the inbound request (an Exchange has all of it). */
export interface RewriteInput {
  /** The inbound headers as Node received them: name, value, name, value, ... */
  readonly rawHeaders: readonly string[];
  /** The peer address of the client's connection. */
  readonly clientAddress: string;
  /** The client connection is TLS. */
  readonly encrypted: boolean;
  readonly requestId: string;
  /** The gateway's `traceparent` for the upstream call. */
  readonly traceparent: string;
  /** The inbound `tracestate`, when the inbound trace is continued. */
  readonly tracestate: string;
}

/** The request to send upstream. */
export interface OutboundRequest {
  /** Base path + canonical path + query: what goes on the request line. */
  readonly path: string;
  /** Flat name/value pairs, as undici takes them. */
  readonly headers: string[];
}

/**
 * Inbound headers that never reach an upstream besides the hop-by-hop ones: where the proxy
 * token travels, what the gateway sets itself from the connection (inbound values are
 * client-controlled and must not be trusted), `expect` (Node already answered
 * `100-continue`; undici refuses the header), and the method and URL overrides that
 * frameworks honour (Google APIs, Express method-override, IIS URL Rewrite, old Symfony):
 * they would make the upstream run a method or path that policy never evaluated.
 */
const dropped = new Set([
  "host",
  "authorization",
  "x-api-key",
  "forwarded",
  "x-real-ip",
  "traceparent",
  "tracestate",
  "x-request-id",
  "expect",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  "x-original-url",
  "x-rewrite-url",
]);

/**
 * Step 6 of the request path: the outbound request line and headers.
 *
 * Removes hop-by-hop headers and any a `Connection` header names, every inbound credential
 * (the proxy token from Authorization or x-api-key, all `Proxy-*`, Cookie unless the
 * upstream forwards cookies), Host (undici sets the upstream's), and inbound
 * Forwarded/X-Forwarded-*; then sets Forwarded and X-Forwarded-For/-Proto/-Host from the
 * connection, `x-request-id`, `traceparent`, and injects the credential (headers, or the
 * query parameter, replacing any the client sent under the same name).
 */
export function rewrite(
  inbound: RewriteInput,
  route: Pick<ProxyRoute, "path" | "query" | "chunked">,
  upstream: { readonly basePath: string; readonly forwardCookies: boolean },
  credential: Credential,
): OutboundRequest {
  const raw = inbound.rawHeaders;
  const headers: string[] = [];
  const injected = credential.headers;
  let host = "";
  let connection: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (hopByHop.has(lower)) {
      if (lower === "connection") {
        connection ??= [];
        connection.push(value);
      }
      continue;
    }
    if (dropped.has(lower)) {
      if (lower === "host") host = value;
      continue;
    }
    if (lower.startsWith("proxy-") || lower.startsWith("x-forwarded-")) continue;
    if (lower === "cookie" && !upstream.forwardCookies) continue;
    // A chunked body is re-framed by undici; a stale length would corrupt it.
    if (lower === "content-length" && route.chunked) continue;
    if (injected.length > 0 && isInjected(injected, lower)) continue;
    headers.push(lower, value);
  }

  const named = connectionNamed(connection);
  const out = named === undefined ? headers : withoutNamed(headers, named);

  const forwardedFor = inbound.clientAddress;
  const proto = inbound.encrypted ? "https" : "http";
  let forwarded = `for=${forwardedNode(forwardedFor)};proto=${proto}`;
  if (host !== "") forwarded += `;host=${quoted(host)}`;
  out.push("forwarded", forwarded, "x-forwarded-for", forwardedFor, "x-forwarded-proto", proto);
  if (host !== "") out.push("x-forwarded-host", host);
  out.push("x-request-id", inbound.requestId, "traceparent", inbound.traceparent);
  if (inbound.tracestate !== "") out.push("tracestate", inbound.tracestate);
  for (let i = 0; i < injected.length; i++) out.push(injected[i] as string);

  const query =
    credential.query === undefined ? route.query : withParameter(route.query, credential.query);
  const path =
    query === "" ? upstream.basePath + route.path : `${upstream.basePath}${route.path}?${query}`;
  return { path, headers: out };
}

function isInjected(injected: readonly string[], lower: string): boolean {
  for (let i = 0; i < injected.length; i += 2) if (injected[i] === lower) return true;
  return false;
}

function withoutNamed(headers: string[], named: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!named.has(headers[i] as string)) out.push(headers[i] as string, headers[i + 1] as string);
  }
  return out;
}

/** RFC 7239 §6: IPv6 addresses are bracketed and quoted. */
function forwardedNode(address: string): string {
  return address.includes(":") ? `"[${address}]"` : address;
}

/** RFC 7239 §4 / RFC 9110 §5.6.4: a quoted-string, escaping `"` and `\`. */
function quoted(value: string): string {
  if (!value.includes('"') && !value.includes("\\")) return `"${value}"`;
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * `query` with every parameter named `parameter.name` removed (compared after
 * percent-decoding, so `api%5Fkey` cannot smuggle a second `api_key`) and the credential's
 * pair appended.
 */
function withParameter(query: string, parameter: { name: string; pair: string }): string {
  if (query === "") return parameter.pair;
  const kept: string[] = [];
  for (const part of query.split("&")) {
    if (part === "") continue;
    const equals = part.indexOf("=");
    const rawName = equals === -1 ? part : part.slice(0, equals);
    if (decodeName(rawName) !== parameter.name) kept.push(part);
  }
  kept.push(parameter.pair);
  return kept.join("&");
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, " "));
  } catch {
    return name;
  }
}
