import { createClient } from "@connectrpc/connect";
import { openBus } from "../libs/bus/index.ts";
import { ConfigError } from "../libs/config/index.ts";
import { PolicyService } from "../libs/gen/latchkey/policy/v1/policy_pb.js";
import { TokenService } from "../libs/gen/latchkey/token/v1/token_pb.js";
import { VaultService } from "../libs/gen/latchkey/vault/v1/vault_pb.js";
import { componentLogger, type Logger } from "../libs/log/index.ts";
import { createClientTransport } from "../libs/rpc/index.ts";
import * as gatewayConfig from "../services/gateway/config.ts";
import { createGateway, type Gateway } from "../services/gateway/gateway.ts";
import type { Stopper } from "./run.ts";

/** Starts the gateway on the given RPC clients and bus (`run gateway` and `run all`). */
export async function startGateway(
  env: NodeJS.ProcessEnv,
  log: Logger,
  stoppers: Stopper[],
  clients: Pick<
    Parameters<typeof createGateway>[0],
    "tokenClient" | "policyClient" | "vaultClient"
  >,
  bus: Awaited<ReturnType<typeof openBus>>,
): Promise<Gateway & { url: string }> {
  const config = gatewayConfig.loadConfig(env);
  const gateway = createGateway({
    ...clients,
    bus,
    log: componentLogger(log, "gateway"),
    config: gatewayConfig.gatewaySettings(config),
  });
  const { url } = await gateway.start();
  stoppers.push(() => gateway.stop());
  log.info({ kind: "gateway", url }, "listening");
  return { ...gateway, url };
}

/** The gateway as its own process, calling the services over the network. */
export async function runGatewayOnly(
  env: NodeJS.ProcessEnv,
  log: Logger,
  stoppers: Stopper[],
): Promise<void> {
  const config = gatewayConfig.loadConfig(env);
  if (!config.LATCHKEY_GATEWAY_KEY) {
    throw new ConfigError([
      "LATCHKEY_GATEWAY_KEY: required by `latchkey run gateway` (the same value on every service)",
    ]);
  }
  const bus = await openBus({
    url: config.LATCHKEY_NATS_URL,
    namespace: config.LATCHKEY_NATS_NAMESPACE,
    name: "latchkey-gateway",
  });
  stoppers.push(() => bus.close());
  const transport = (baseUrl: string) => {
    const t = createClientTransport({ baseUrl, credential: config.LATCHKEY_GATEWAY_KEY });
    stoppers.push(async () => t.close());
    return t;
  };
  await startGateway(
    env,
    log,
    stoppers,
    {
      tokenClient: createClient(TokenService, transport(config.LATCHKEY_TOKEN_URL)),
      policyClient: createClient(PolicyService, transport(config.LATCHKEY_POLICY_URL)),
      vaultClient: createClient(VaultService, transport(config.LATCHKEY_VAULT_URL)),
    },
    bus,
  );
}
