import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../libs/config/index.ts";
import { gatewaySettings, loadConfig } from "./config.ts";
import { defaultGatewaySettings } from "./gateway.ts";

test("defaults match the gateway's own defaults", () => {
  const settings = gatewaySettings(loadConfig({}));
  assert.deepEqual(settings, defaultGatewaySettings);
  const env = loadConfig({});
  assert.equal(env.LATCHKEY_TOKEN_URL, "http://127.0.0.1:7001");
  assert.equal(env.LATCHKEY_POLICY_URL, "http://127.0.0.1:7002");
  assert.equal(env.LATCHKEY_VAULT_URL, "http://127.0.0.1:7003");
});

test("an OTLP exporter turns full spans on", () => {
  assert.equal(
    gatewaySettings(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318" })).tracing,
    "spans",
  );
  assert.equal(gatewaySettings(loadConfig({ OTEL_TRACES_EXPORTER: "none" })).tracing, "ids");
});

test("invalid values fail fast, naming every variable", () => {
  assert.throws(
    () => loadConfig({ LATCHKEY_GATEWAY_PORT: "99999", LATCHKEY_GATEWAY_MAX_HEADER_BYTES: "0" }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes("LATCHKEY_GATEWAY_PORT") &&
      err.message.includes("LATCHKEY_GATEWAY_MAX_HEADER_BYTES"),
  );
});
