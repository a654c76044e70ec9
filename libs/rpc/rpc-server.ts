import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type ConnectNodeAdapterOptions, connectNodeAdapter } from "@connectrpc/connect-node";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { normalizeGrpcMessage } from "./grpc-message.ts";
import { createHealthState } from "./health.ts";
import { reflectionRoutes } from "./reflection.ts";
import { createServerInterceptors } from "./server-interceptors.ts";
import type { RpcServer, RpcServerOptions } from "./types.ts";

/** The HTTP/2 connection preface (RFC 9113 §3.4): how h2c prior-knowledge clients start. */
const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

type NodeServerRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeServerResponse = http.ServerResponse | http2.Http2ServerResponse;

/** How long in-flight calls get to finish on stop() before they are cut off. */
const defaultDrainTimeoutMs = 10_000;
/** Time allowed to send the first bytes, so idle sockets cannot pile up before dispatch. */
const firstBytesTimeoutMs = 30_000;

/**
 * Hands a cleartext connection to the HTTP/2 server when it opens with the h2 preface and
 * to the HTTP/1.1 server otherwise. A cleartext HTTP/2 server refuses HTTP/1.1 (and Node
 * has no h2c upgrade), yet gRPC clients speak h2c while curl and browsers speak 1.1: one
 * port for both means peeking.
 */
function dispatchByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let buffered: Buffer = Buffer.alloc(0);
  socket.setTimeout(firstBytesTimeoutMs, () => socket.destroy());
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const n = Math.min(buffered.length, h2Preface.length);
    const matches = buffered.subarray(0, n).equals(h2Preface.subarray(0, n));
    // A partial preface needs more bytes before deciding.
    if (matches && n < h2Preface.length) return;
    socket.off("data", onData);
    socket.setTimeout(0);
    socket.pause();
    // Put the bytes back; the chosen server reads them first when it resumes the socket.
    socket.unshift(buffered);
    if (matches) {
      // Http2Session reads what is buffered on the socket before taking over its handle.
      h2.emit("connection", socket);
    } else {
      // The HTTP/1.1 parser takes over the handle but reads the bytes put back only as
      // 'data' events, which a paused socket does not emit.
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}

/** Ends long-lived server streams (health Watch, audit StreamEvents) when stop() begins. */
function streamShutdownInterceptor(signal: AbortSignal): Interceptor {
  return (next) => (req) =>
    req.stream ? next({ ...req, signal: AbortSignal.any([req.signal, signal]) }) : next(req);
}

/** `application/grpc` and `application/grpc+proto`, not gRPC-Web (its clients decode fully). */
function isGrpc(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/grpc(\+|;|$)/.test(contentType);
}

function baseUrl(host: string, port: number, tls: boolean): string {
  // Unspecified listen addresses are not dialable; loopback reaches the same listener.
  const dialHost = host === "" || host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  const h = dialHost.includes(":") ? `[${dialHost}]` : dialHost;
  return `${tls ? "https" : "http"}://${h}:${port}`;
}

/**
 * Serves a component's Connect services, plus grpc.health.v1 and gRPC server reflection,
 * over Connect, gRPC and gRPC-Web on one TCP port: HTTP/2 (h2c prior knowledge, for gRPC
 * clients) and HTTP/1.1 (curl, browsers, Connect JSON) side by side, or TLS with ALPN
 * choosing h2 or http/1.1 when `tls` is set (mTLS when it has a CA). Plain `GET /healthz`
 * (live) and `GET /readyz` (ready) answer Kubernetes probes on the same port. Every RPC runs
 * through createServerInterceptors.
 *
 * stop() flips health and readiness to NOT_SERVING, stops accepting connections (HTTP/2
 * GOAWAY, HTTP/1.1 `connection: close`), ends server streams, lets in-flight calls finish
 * for up to `drainTimeoutMs` (10 s), then aborts handlers' signals and closes every socket.
 */
export function createRpcServer(options: RpcServerOptions): RpcServer {
  const { log, services } = options;
  const drainTimeoutMs = options.drainTimeoutMs ?? defaultDrainTimeoutMs;
  const health = createHealthState(services.map((s) => s.typeName));
  const reflection = reflectionRoutes([...services, Health]);
  const streamsShutdown = new AbortController();
  const shutdown = new AbortController();

  let stopping = false;
  let inflight = 0;
  const idleWaiters = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();

  const probes: NonNullable<ConnectNodeAdapterOptions["fallback"]> = (req, res) => {
    const path = req.url?.split("?", 1)[0];
    const get = req.method === "GET" || req.method === "HEAD";
    let status = 404;
    if (get && path === "/healthz") status = 200;
    if (get && path === "/readyz") status = health.serving() ? 200 : 503;
    const body = status === 200 ? "ok\n" : status === 503 ? "not ready\n" : "not found\n";
    const r = res as http.ServerResponse;
    r.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
    r.end(req.method === "HEAD" ? undefined : body);
  };

  const connectHandler = connectNodeAdapter({
    routes(router) {
      options.routes(router);
      health.routes(router);
      reflection(router);
    },
    interceptors: [
      ...createServerInterceptors({ authenticate: options.authenticate, log }),
      streamShutdownInterceptor(streamsShutdown.signal),
    ],
    shutdownSignal: shutdown.signal,
    fallback: probes,
  });

  const handle = (req: NodeServerRequest, res: NodeServerResponse) => {
    inflight++;
    res.once("close", () => {
      inflight--;
      if (inflight === 0) for (const wake of idleWaiters) wake();
    });
    if (stopping && req.httpVersionMajor === 1) {
      // Keep-alive connections would otherwise carry new calls into a closing server.
      (res as http.ServerResponse).setHeader("connection", "close");
    }
    if (req.httpVersionMajor === 2 && isGrpc(req.headers["content-type"])) {
      normalizeGrpcMessage(res as http2.Http2ServerResponse);
    }
    connectHandler(req, res);
  };

  const trackSession = (session: http2.Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (stopping) session.close();
  };
  const trackSocket = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // Resets before dispatch have no other listener; a crash here would end the process.
    socket.on("error", (err) => log.debug({ err: err.message }, "connection error"));
  };

  let listener: net.Server;
  if (options.tls) {
    const { certFile, keyFile, caFile } = options.tls;
    const secure = http2.createSecureServer(
      {
        allowHTTP1: true,
        cert: readFileSync(certFile),
        key: readFileSync(keyFile),
        ...(caFile ? { ca: readFileSync(caFile) } : {}),
        requestCert: !!caFile,
        rejectUnauthorized: !!caFile,
      },
      handle,
    );
    secure.on("session", trackSession);
    secure.on("tlsClientError", (err) => log.debug({ err: err.message }, "TLS handshake failed"));
    listener = secure;
    listener.on("connection", trackSocket);
  } else {
    const h1 = http.createServer(handle);
    const h2 = http2.createServer(handle);
    h2.on("session", trackSession);
    listener = net.createServer((socket) => {
      trackSocket(socket);
      dispatchByPreface(socket, h1, h2);
    });
  }

  const waitIdle = (ms: number) =>
    new Promise<void>((resolve) => {
      if (inflight === 0) return resolve();
      const done = () => {
        clearTimeout(timer);
        idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      idleWaiters.add(done);
    });

  let stopped: Promise<void> | undefined;
  return {
    start() {
      return new Promise((resolve, reject) => {
        listener.once("error", reject);
        listener.listen(options.port, options.host, () => {
          listener.off("error", reject);
          const address = listener.address() as net.AddressInfo;
          const url = baseUrl(options.host, address.port, !!options.tls);
          health.setServing(true);
          log.info({ name: options.name, url }, "rpc server listening");
          resolve({ port: address.port, url });
        });
      });
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        health.setServing(false);
        health.close();
        const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
        streamsShutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
        // GOAWAY: clients open new streams elsewhere; streams in flight finish.
        for (const session of sessions) session.close();
        await waitIdle(drainTimeoutMs);
        if (inflight > 0) {
          log.warn({ inflight }, "calls still running after the drain timeout; aborting them");
          shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
          await waitIdle(1_000);
        }
        // What is left is idle keep-alive connections, or calls that ignored the abort.
        for (const socket of sockets) socket.destroy();
        await closed;
        log.info({ name: options.name }, "rpc server stopped");
      })();
      return stopped;
    },
  };
}
