import type * as http2 from "node:http2";

/**
 * Percent-encodes a status message the way the gRPC HTTP/2 protocol spells it: only bytes
 * outside printable ASCII, and `%` itself, are escaped.
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function fix(headers: unknown): void {
  if (!headers || typeof headers !== "object") return;
  const h = headers as Record<string, unknown>;
  const value = h["grpc-message"];
  if (typeof value !== "string") return;
  try {
    h["grpc-message"] = encodeGrpcMessage(decodeURIComponent(value));
  } catch {
    // Not valid percent-encoding: leave it as Connect wrote it.
  }
}

/**
 * Rewrites `grpc-message` on a gRPC response into the protocol's minimal percent-encoding.
 * Connect encodes it with encodeURIComponent (`/` → `%2F`), which the spec allows, but
 * @grpc/grpc-js decodes with decodeURI, which leaves `%2F` and `%3A` in place: every
 * Latchkey error naming a resource (`tenants/acme/tokens/...`) reached Node gRPC clients
 * mangled. Trailers-only error responses carry the message in the headers, so both paths
 * are covered.
 */
export function normalizeGrpcMessage(res: http2.Http2ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => unknown;
  const addTrailers = res.addTrailers.bind(res);
  Object.assign(res, {
    writeHead: (...args: unknown[]) => {
      for (const arg of args) fix(arg);
      return writeHead(...args);
    },
    addTrailers: (trailers: http2.OutgoingHttpHeaders) => {
      fix(trailers);
      addTrailers(trailers);
    },
  });
}
