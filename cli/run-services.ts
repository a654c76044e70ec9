import { join, resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import { authMigrations, createAdminKeyStore, createAuthenticator } from "../libs/auth/index.ts";
import { openBus } from "../libs/bus/index.ts";
import { ConfigError, commonEnv, loadEnv, port, storageEnv } from "../libs/config/index.ts";
import { type Db, type MigrateOptions, migrate, openDb } from "../libs/db/index.ts";
import { PolicyService } from "../libs/gen/latchkey/policy/v1/policy_pb.js";
import { TokenService } from "../libs/gen/latchkey/token/v1/token_pb.js";
import { VaultService } from "../libs/gen/latchkey/vault/v1/vault_pb.js";
import { componentLogger, type Logger } from "../libs/log/index.ts";
import {
  type Component,
  createInProcessTransport,
  createRpcServer,
  type TlsFiles,
} from "../libs/rpc/index.ts";
import * as audit from "../services/audit/component.ts";
import * as auditConfig from "../services/audit/config.ts";
import * as policy from "../services/policy/component.ts";
import * as policyConfig from "../services/policy/config.ts";
import * as token from "../services/token/component.ts";
import * as tokenConfig from "../services/token/config.ts";
import * as vault from "../services/vault/component.ts";
import * as vaultConfig from "../services/vault/config.ts";
import { createLocalKeyring } from "../services/vault/keyring.ts";
import { lockDataDir } from "./data-dir-lock.ts";
import { loadEmbeddedSecrets } from "./embedded-secrets.ts";
import type { Stopper } from "./run.ts";
import { startGateway } from "./run-gateway.ts";

export type ServiceName = "token" | "policy" | "vault" | "audit";

/** Every schema in the order `latchkey migrate` applies them. */
export const allMigrations: readonly MigrateOptions[] = [
  authMigrations,
  token.migrations,
  policy.migrations,
  vault.migrations,
  audit.migrations,
];

function tlsOf(env: {
  LATCHKEY_TLS_CERT_FILE?: string;
  LATCHKEY_TLS_KEY_FILE?: string;
  LATCHKEY_TLS_CA_FILE?: string;
}): TlsFiles | undefined {
  if (!env.LATCHKEY_TLS_CERT_FILE || !env.LATCHKEY_TLS_KEY_FILE) return undefined;
  return {
    certFile: env.LATCHKEY_TLS_CERT_FILE,
    keyFile: env.LATCHKEY_TLS_KEY_FILE,
    caFile: env.LATCHKEY_TLS_CA_FILE,
  };
}

/**
 * Opens the database: PostgreSQL when a URL is set, else PGlite under the data directory,
 * which this process then locks (see data-dir-lock.ts) until it stops.
 */
export async function openStorage(
  env: { LATCHKEY_DATABASE_URL?: string; LATCHKEY_DATA_DIR: string },
  stoppers: Stopper[],
): Promise<Db> {
  if (env.LATCHKEY_DATABASE_URL) return openDb({ url: env.LATCHKEY_DATABASE_URL });
  const dataDir = resolve(env.LATCHKEY_DATA_DIR);
  const release = lockDataDir(dataDir);
  stoppers.push(async () => release());
  return openDb({ dataDir: join(dataDir, "pg") });
}

/** Builds one service component from its dependencies and parsed environment. */
function createComponent(
  name: ServiceName,
  deps: { db: Db; bus: Awaited<ReturnType<typeof openBus>>; log: Logger },
  env: NodeJS.ProcessEnv,
  secrets: { tokenPepper?: string; vaultKek?: string } = {},
): Component {
  const log = componentLogger(deps.log, name);
  switch (name) {
    case "token": {
      const config = tokenConfig.loadConfig(env);
      const pepper = config.LATCHKEY_TOKEN_PEPPER ?? secrets.tokenPepper;
      if (!pepper) throw new ConfigError(["LATCHKEY_TOKEN_PEPPER: required"]);
      return token.createTokenComponent({ ...deps, log, pepper });
    }
    case "policy": {
      const config = policyConfig.loadConfig(env);
      return policy.createPolicyComponent({
        ...deps,
        log,
        bundleTtlMs: config.LATCHKEY_POLICY_BUNDLE_TTL_MS,
      });
    }
    case "vault": {
      const config = vaultConfig.loadConfig(env);
      const keys =
        vaultConfig.keyringFromConfig(config) ??
        (secrets.vaultKek
          ? createLocalKeyring({ version: 1, key: Buffer.from(secrets.vaultKek, "base64") })
          : undefined);
      if (!keys) throw new ConfigError(["LATCHKEY_VAULT_KEK: required (base64 of 32 bytes)"]);
      return vault.createVaultComponent({
        ...deps,
        log,
        keys,
        leaseMs: config.LATCHKEY_VAULT_LEASE_SECONDS * 1000,
      });
    }
    case "audit": {
      const config = auditConfig.loadConfig(env);
      return audit.createAuditComponent({
        ...deps,
        log,
        batchSize: config.LATCHKEY_AUDIT_BATCH_SIZE,
        consumers: config.LATCHKEY_AUDIT_CONSUMERS,
        lingerMs: config.LATCHKEY_AUDIT_BATCH_LINGER_MS,
        streamBuffer: config.LATCHKEY_AUDIT_STREAM_BUFFER,
      });
    }
  }
}

const servicePortVariable: Record<ServiceName, string> = {
  token: "LATCHKEY_TOKEN_PORT",
  policy: "LATCHKEY_POLICY_PORT",
  vault: "LATCHKEY_VAULT_PORT",
  audit: "LATCHKEY_AUDIT_PORT",
};
const servicePorts: Record<ServiceName, number> = {
  token: 7001,
  policy: 7002,
  vault: 7003,
  audit: 7004,
};

/**
 * Starts RPC components on one server: one component for `latchkey run <service>`, all four
 * for `latchkey run all`. Returns what the gateway needs to ride the same routes in-process.
 */
async function startServices(
  names: ServiceName[],
  env: NodeJS.ProcessEnv,
  log: Logger,
  stoppers: Stopper[],
  options: {
    port: number;
    gatewayKey?: string;
    bootstrapKey?: string;
    secrets?: { tokenPepper?: string; vaultKek?: string };
  },
) {
  const config = loadEnv({ ...commonEnv, ...storageEnv }, env);
  const db = await openStorage(config, stoppers);
  stoppers.push(() => db.close());
  const bus = await openBus({
    url: config.LATCHKEY_NATS_URL,
    namespace: config.LATCHKEY_NATS_NAMESPACE,
    name: `latchkey-${names.join("-")}`,
  });
  stoppers.push(() => bus.close());
  if (config.LATCHKEY_MIGRATE_ON_START) {
    for (const migration of allMigrations.filter(
      (m) => m.schema === "auth" || names.includes(m.schema as ServiceName),
    )) {
      await migrate(db, migration);
    }
  }
  const adminKeys = createAdminKeyStore(db);
  const bootstrapKey = options.bootstrapKey ?? config.LATCHKEY_ADMIN_KEY;
  if (bootstrapKey) await adminKeys.bootstrap(bootstrapKey);
  const gatewayKey = options.gatewayKey ?? config.LATCHKEY_GATEWAY_KEY;
  if (!gatewayKey && names.some((name) => name !== "audit")) {
    // Not fatal (admin calls still work), but every gateway call would be refused.
    log.warn("LATCHKEY_GATEWAY_KEY is not set: gateways cannot call this service");
  }
  const authenticate = createAuthenticator({ adminKeys, gatewayKey });
  const components = names.map((name) =>
    createComponent(name, { db, bus, log }, env, options.secrets),
  );
  const routes = (router: Parameters<Component["routes"]>[0]) => {
    for (const component of components) component.routes(router);
  };
  for (const component of components) {
    await component.start();
    stoppers.push(() => component.stop());
  }
  const server = createRpcServer({
    name: names.length === 1 ? (names[0] as string) : "all",
    routes,
    services: components.flatMap((c) => c.services),
    host: config.LATCHKEY_HOST,
    port: options.port,
    tls: tlsOf(config),
    authenticate,
    log,
  });
  const { url } = await server.start();
  stoppers.push(() => server.stop());
  log.info({ kind: "rpc", url, services: names }, "listening");
  return { url, routes, authenticate, bus };
}

/** `latchkey run <service>`: one service on its own RPC port. */
export async function runService(
  name: ServiceName,
  env: NodeJS.ProcessEnv,
  log: Logger,
  stoppers: Stopper[],
): Promise<void> {
  const config = loadEnv({ [servicePortVariable[name]]: port(servicePorts[name]) }, env);
  await startServices([name], env, log, stoppers, {
    port: config[servicePortVariable[name]] as number,
  });
}

/**
 * Everything in one process: the four services on one RPC port, the gateway calling them
 * in-process (same interceptors, no network hop), PGlite and the in-process bus unless a
 * database or NATS URL is configured, secrets generated once and kept in the data dir.
 */
export async function runAll(
  env: NodeJS.ProcessEnv,
  log: Logger,
  stoppers: Stopper[],
): Promise<void> {
  const config = loadEnv(
    {
      ...storageEnv,
      /** The RPC port of `latchkey run all`, serving all four services. */
      LATCHKEY_RPC_PORT: port(7000),
    },
    env,
  );
  const dataDir = resolve(config.LATCHKEY_DATA_DIR);
  const release = lockDataDir(dataDir);
  stoppers.push(async () => release());
  const secrets = loadEmbeddedSecrets(dataDir, {
    adminKey: config.LATCHKEY_ADMIN_KEY,
    tokenPepper: loadEnv(tokenConfig.tokenEnv, env).LATCHKEY_TOKEN_PEPPER,
    vaultKek: vaultConfig.loadConfig(env).LATCHKEY_VAULT_KEK?.toString("base64"),
    gatewayKey: loadEnv(commonEnv, env).LATCHKEY_GATEWAY_KEY,
  });
  const services = await startServices(["token", "policy", "vault", "audit"], env, log, stoppers, {
    port: config.LATCHKEY_RPC_PORT,
    gatewayKey: secrets.gatewayKey,
    bootstrapKey: secrets.adminKey,
    secrets,
  });
  const transport = createInProcessTransport({
    routes: services.routes,
    authenticate: services.authenticate,
    log,
    credential: secrets.gatewayKey,
  });
  const gateway = await startGateway(
    env,
    log,
    stoppers,
    {
      tokenClient: createClient(TokenService, transport),
      policyClient: createClient(PolicyService, transport),
      vaultClient: createClient(VaultService, transport),
    },
    services.bus,
  );
  const keyLine = secrets.adminKeyCreated
    ? `  admin key (shown once, also saved in ${join(dataDir, "admin-key")}):\n    ${secrets.adminKey}`
    : `  admin key: in ${join(dataDir, "admin-key")}`;
  process.stderr.write(
    [
      "",
      "Latchkey is running (embedded: everything in one process).",
      `  gateway: ${gateway.url}`,
      `  admin API (Connect, gRPC, gRPC-Web): ${services.url}`,
      keyLine,
      `  data: ${config.LATCHKEY_DATABASE_URL ? "PostgreSQL" : join(dataDir, "pg")}, events: ${config.LATCHKEY_NATS_URL ? "NATS" : "in-process bus"}`,
      "Next: follow the 5-minute walkthrough in README.md (npm run latchkey -- upstream create ...).",
      "",
    ].join("\n"),
  );
}
