import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { connectionNamed, hopByHop } from "./headers.ts";
import type { Refusal } from "./refusal.ts";

const JSON_TYPE = "application/json";

/**
 * Step 8 of the request path, for answers the gateway gives itself: the refusal's status
 * and JSON body, `x-request-id`, `WWW-Authenticate: Bearer` on 401 (RFC 6750 §3). With
 * `close`, the connection is closed after the answer: the client's unread body is not worth
 * reading (Node would otherwise drain it to reuse the connection).
 */
export function respondRefusal(
  res: ServerResponse,
  refusal: Refusal,
  requestId: string,
  close: boolean,
): void {
  const headers = [
    "content-type",
    JSON_TYPE,
    "content-length",
    String(refusal.body.length),
    "x-request-id",
    requestId,
  ];
  if (refusal.status === 401) headers.push("www-authenticate", 'Bearer realm="latchkey"');
  if (close) headers.push("connection", "close");
  res.writeHead(refusal.status, headers);
  res.end(refusal.body);
}

const okBody = Buffer.from('{"status":"ok"}');
const unavailableBody = Buffer.from('{"status":"unavailable"}');

/** Answers `/_latchkey/healthz` and `/_latchkey/readyz`. */
export function respondProbe(res: ServerResponse, ok: boolean, requestId: string): void {
  const body = ok ? okBody : unavailableBody;
  res.writeHead(ok ? 200 : 503, [
    "content-type",
    JSON_TYPE,
    "content-length",
    String(body.length),
    "cache-control",
    "no-store",
    "x-request-id",
    requestId,
  ]);
  res.end(body);
}

/**
 * The upstream's response headers as the client gets them: without hop-by-hop headers or
 * any its `Connection` names, without its own `x-request-id` (the gateway's replaces it),
 * and without any header that echoes the injected credential (some APIs reflect the
 * request's Authorization in debug headers; the client must never learn the real secret).
 */
export function responseHeaders(
  upstream: IncomingHttpHeaders,
  requestId: string,
  echoes: readonly string[],
): string[] {
  const named = connectionNamed(upstream.connection);
  const out: string[] = [];
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || hopByHop.has(name) || name === "x-request-id") continue;
    if (named?.has(name)) continue;
    if (typeof value === "string") {
      if (echoes.length > 0 && echoesSecret(value, echoes)) continue;
      out.push(name, value);
      continue;
    }
    for (const item of value) {
      if (echoes.length > 0 && echoesSecret(item, echoes)) continue;
      out.push(name, item);
    }
  }
  out.push("x-request-id", requestId);
  return out;
}

function echoesSecret(value: string, echoes: readonly string[]): boolean {
  for (let i = 0; i < echoes.length; i++) if (value.includes(echoes[i] as string)) return true;
  return false;
}
