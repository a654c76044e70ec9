import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  create,
  type DescMessage,
  fromJson,
  type MessageShape,
  toJsonString,
} from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuditService } from "../libs/gen/latchkey/audit/v1/audit_pb.js";
import { AuditEventSchema } from "../libs/gen/latchkey/events/v1/events_pb.js";
import {
  PolicyService,
  PolicySetSchema,
  PutPolicySetRequestSchema,
  UpstreamSchema,
} from "../libs/gen/latchkey/policy/v1/policy_pb.js";
import { TokenSchema, TokenService } from "../libs/gen/latchkey/token/v1/token_pb.js";
import {
  type InjectionScheme,
  InjectionSchemeSchema,
  type SecretMaterial,
  SecretMaterialSchema,
  VaultService,
} from "../libs/gen/latchkey/vault/v1/vault_pb.js";
import { adminClient } from "./connect.ts";

/** Thrown for a command line that cannot be run; main prints it with the usage. */
export class UsageError extends Error {}

const print = <D extends DescMessage>(schema: D, message: MessageShape<D>) =>
  process.stdout.write(`${toJsonString(schema, message, { prettySpaces: 2 })}\n`);

/** Parses `90s`, `15m`, `24h`, `7d` into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match)
    throw new UsageError(`bad duration ${JSON.stringify(text)}: use e.g. 90s, 15m, 24h, 7d`);
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[match[2] as "ms"];
  return Number(match[1]) * unit;
}

function positional(values: string[], count: number, usage: string): string[] {
  if (values.length !== count) throw new UsageError(`usage: latchkey ${usage}`);
  return values;
}

/**
 * Reads secret material from stdin or a file, never from the command line: arguments
 * show up in `ps` and shell history.
 */
async function readSecret(file: string | undefined): Promise<string> {
  if (file) return readFileSync(file, "utf8").trim();
  if (process.stdin.isTTY) throw new UsageError("pipe the secret on stdin or pass --secret-file");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const secret = Buffer.concat(chunks).toString("utf8").trim();
  if (!secret) throw new UsageError("the secret on stdin is empty");
  return secret;
}

type Handler = (args: string[]) => Promise<void>;

const upstream: Record<string, Handler> = {
  async create(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        origin: { type: "string" },
        "base-path": { type: "string", default: "" },
        credential: { type: "string", default: "" },
        timeout: { type: "string" },
        "display-name": { type: "string", default: "" },
      },
    });
    const [tenant, slug] = positional(
      positionals,
      2,
      "upstream create <tenant> <slug> --origin URL [--credential NAME] [--base-path /v1] [--timeout 30s]",
    );
    if (!values.origin) throw new UsageError("--origin is required");
    const res = await adminClient(PolicyService, "policy").createUpstream({
      parent: `tenants/${tenant}`,
      upstreamId: slug,
      upstream: create(UpstreamSchema, {
        origin: values.origin,
        basePath: values["base-path"],
        credential: values.credential,
        displayName: values["display-name"],
        requestTimeout: values.timeout ? durationFromMs(parseDuration(values.timeout)) : undefined,
      }),
    });
    print(UpstreamSchema, res.upstream ?? create(UpstreamSchema));
  },
  async get(args) {
    const [tenant, slug] = positional(args, 2, "upstream get <tenant> <slug>");
    const res = await adminClient(PolicyService, "policy").getUpstream({
      name: `tenants/${tenant}/upstreams/${slug}`,
    });
    print(UpstreamSchema, res.upstream ?? create(UpstreamSchema));
  },
  async list(args) {
    const [tenant] = positional(args, 1, "upstream list <tenant>");
    const res = await adminClient(PolicyService, "policy").listUpstreams({
      parent: `tenants/${tenant}`,
      pageSize: 1000,
    });
    for (const u of res.upstreams) print(UpstreamSchema, u);
  },
  async delete(args) {
    const [tenant, slug] = positional(args, 2, "upstream delete <tenant> <slug>");
    await adminClient(PolicyService, "policy").deleteUpstream({
      name: `tenants/${tenant}/upstreams/${slug}`,
    });
    process.stdout.write(`deleted tenants/${tenant}/upstreams/${slug}\n`);
  },
};

function material(
  scheme: string,
  secret: string,
  username: string | undefined,
  header: string | undefined,
): SecretMaterial {
  switch (scheme) {
    case "bearer":
    case "query":
      return create(SecretMaterialSchema, { kind: { case: "token", value: secret } });
    case "header":
      if (!header) throw new UsageError("--header NAME is required for the header scheme");
      return create(SecretMaterialSchema, {
        kind: { case: "headers", value: { values: { [header.toLowerCase()]: secret } } },
      });
    case "basic":
      if (!username) throw new UsageError("--username is required for the basic scheme");
      return create(SecretMaterialSchema, {
        kind: { case: "basic", value: { username, password: secret } },
      });
    default:
      throw new UsageError("--scheme must be bearer, header, basic or query");
  }
}

function injection(
  scheme: string,
  header: string | undefined,
  parameter: string | undefined,
): InjectionScheme {
  switch (scheme) {
    case "bearer":
      return create(InjectionSchemeSchema, { kind: { case: "bearer", value: {} } });
    case "header":
      return create(InjectionSchemeSchema, {
        kind: { case: "header", value: { headerNames: [(header ?? "").toLowerCase()] } },
      });
    case "basic":
      return create(InjectionSchemeSchema, { kind: { case: "basic", value: {} } });
    case "query":
      if (!parameter) throw new UsageError("--parameter NAME is required for the query scheme");
      return create(InjectionSchemeSchema, { kind: { case: "query", value: { parameter } } });
    default:
      throw new UsageError("--scheme must be bearer, header, basic or query");
  }
}

const credential: Record<string, Handler> = {
  async create(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        scheme: { type: "string", default: "bearer" },
        origin: { type: "string", multiple: true },
        header: { type: "string" },
        parameter: { type: "string" },
        username: { type: "string" },
        "secret-file": { type: "string" },
        "display-name": { type: "string", default: "" },
      },
    });
    const [tenant, id] = positional(
      positionals,
      2,
      "credential create <tenant> <id> --scheme bearer|header|basic|query --origin URL [--header NAME] [--parameter NAME] [--username U] [--secret-file F | secret on stdin]",
    );
    if (!values.origin?.length)
      throw new UsageError("--origin is required (repeat it for several)");
    const secret = await readSecret(values["secret-file"]);
    const res = await adminClient(VaultService, "vault").createCredential({
      parent: `tenants/${tenant}`,
      credentialId: id,
      credential: {
        displayName: values["display-name"],
        allowedOrigins: values.origin,
        scheme: injection(values.scheme, values.header, values.parameter),
      },
      material: material(values.scheme, secret, values.username, values.header),
    });
    process.stdout.write(
      `${JSON.stringify({ name: res.credential?.name, currentVersion: res.credential?.currentVersion })}\n`,
    );
  },
  async "add-version"(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        scheme: { type: "string", default: "bearer" },
        header: { type: "string" },
        username: { type: "string" },
        "secret-file": { type: "string" },
      },
    });
    const [tenant, id] = positional(
      positionals,
      2,
      "credential add-version <tenant> <id> --scheme S [--secret-file F | stdin]",
    );
    const secret = await readSecret(values["secret-file"]);
    const res = await adminClient(VaultService, "vault").addCredentialVersion({
      name: `tenants/${tenant}/credentials/${id}`,
      material: material(values.scheme, secret, values.username, values.header),
    });
    process.stdout.write(
      `${JSON.stringify({ name: res.credential?.name, currentVersion: res.credential?.currentVersion })}\n`,
    );
  },
  async get(args) {
    const [tenant, id] = positional(args, 2, "credential get <tenant> <id>");
    const res = await adminClient(VaultService, "vault").getCredential({
      name: `tenants/${tenant}/credentials/${id}`,
    });
    process.stdout.write(
      `${JSON.stringify(res.credential ? { name: res.credential.name, allowedOrigins: res.credential.allowedOrigins, currentVersion: res.credential.currentVersion, scheme: res.credential.scheme?.kind.case } : {}, null, 2)}\n`,
    );
  },
  async list(args) {
    const [tenant] = positional(args, 1, "credential list <tenant>");
    const res = await adminClient(VaultService, "vault").listCredentials({
      parent: `tenants/${tenant}`,
      pageSize: 1000,
    });
    for (const c of res.credentials) {
      process.stdout.write(
        `${JSON.stringify({ name: c.name, scheme: c.scheme?.kind.case, allowedOrigins: c.allowedOrigins, currentVersion: c.currentVersion })}\n`,
      );
    }
  },
  async delete(args) {
    const [tenant, id] = positional(args, 2, "credential delete <tenant> <id>");
    await adminClient(VaultService, "vault").deleteCredential({
      name: `tenants/${tenant}/credentials/${id}`,
    });
    process.stdout.write(`deleted tenants/${tenant}/credentials/${id}\n`);
  },
};

const token: Record<string, Handler> = {
  async create(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        "display-name": { type: "string", default: "" },
        subject: { type: "string", default: "" },
        upstream: { type: "string", multiple: true },
        attribute: { type: "string", multiple: true },
        ttl: { type: "string" },
        "request-id": { type: "string", default: "" },
      },
    });
    const [tenant] = positional(
      positionals,
      1,
      "token create <tenant> [--subject S] [--upstream SLUG]... [--attribute k=v]... [--ttl 24h]",
    );
    const attributes: Record<string, string> = {};
    for (const pair of values.attribute ?? []) {
      const at = pair.indexOf("=");
      if (at < 1) throw new UsageError(`--attribute wants key=value, got ${JSON.stringify(pair)}`);
      attributes[pair.slice(0, at)] = pair.slice(at + 1);
    }
    const res = await adminClient(TokenService, "token").createToken({
      parent: `tenants/${tenant}`,
      token: {
        displayName: values["display-name"],
        subject: values.subject,
        allowedUpstreams: values.upstream ?? [],
        attributes,
      },
      ttl: values.ttl ? durationFromMs(parseDuration(values.ttl)) : undefined,
      requestId: values["request-id"],
    });
    // The secret is printed once, on its own line first, so scripts can `head -1` it.
    process.stdout.write(
      `${res.secret}\n${JSON.stringify({ name: res.token?.name, displayPrefix: res.token?.displayPrefix })}\n`,
    );
  },
  async get(args) {
    const [name] = positional(args, 1, "token get <tenants/T/tokens/ID>");
    const res = await adminClient(TokenService, "token").getToken({ name });
    print(TokenSchema, res.token ?? create(TokenSchema));
  },
  async list(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { all: { type: "boolean", default: false } },
    });
    const [tenant] = positional(positionals, 1, "token list <tenant> [--all]");
    const res = await adminClient(TokenService, "token").listTokens({
      parent: `tenants/${tenant}`,
      pageSize: 1000,
      showRevoked: values.all,
    });
    for (const t of res.tokens) print(TokenSchema, t);
  },
  async revoke(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { reason: { type: "string", default: "" } },
    });
    const [name] = positional(positionals, 1, "token revoke <tenants/T/tokens/ID> [--reason TEXT]");
    await adminClient(TokenService, "token").revokeToken({ name, reason: values.reason });
    process.stdout.write(`revoked ${name}\n`);
  },
};

const policy: Record<string, Handler> = {
  async put(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { file: { type: "string" } },
    });
    const [tenant] = positional(positionals, 1, "policy put <tenant> --file rules.json");
    if (!values.file) throw new UsageError('--file is required: a JSON file {"rules": [...]}');
    const request = fromJson(
      PutPolicySetRequestSchema,
      JSON.parse(readFileSync(values.file, "utf8")),
    );
    request.parent = `tenants/${tenant}`;
    const res = await adminClient(PolicyService, "policy").putPolicySet(request);
    print(PolicySetSchema, res.policySet ?? create(PolicySetSchema));
  },
  async get(args) {
    const [tenant] = positional(args, 1, "policy get <tenant>");
    const res = await adminClient(PolicyService, "policy").getPolicySet({
      name: `tenants/${tenant}/policySet`,
    });
    print(PolicySetSchema, res.policySet ?? create(PolicySetSchema));
  },
};

const audit: Record<string, Handler> = {
  async list(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        token: { type: "string" },
        upstream: { type: "string" },
        limit: { type: "string", default: "20" },
        since: { type: "string" },
      },
    });
    const [tenant] = positional(
      positionals,
      1,
      "audit list <tenant> [--token NAME] [--upstream SLUG] [--since 1h] [--limit N]",
    );
    const res = await adminClient(AuditService, "audit").listEvents({
      parent: `tenants/${tenant}`,
      pageSize: Number(values.limit),
      filter: {
        token: values.token ?? "",
        upstream: values.upstream ?? "",
        startTime: values.since
          ? timestampFromDate(new Date(Date.now() - parseDuration(values.since)))
          : undefined,
      },
    });
    for (const e of res.events) process.stdout.write(`${toJsonString(AuditEventSchema, e)}\n`);
  },
  async tail(args) {
    const [tenant] = positional(args, 1, "audit tail <tenant>");
    const stream = adminClient(AuditService, "audit").streamEvents({ parent: `tenants/${tenant}` });
    for await (const msg of stream) {
      if (msg.event) process.stdout.write(`${toJsonString(AuditEventSchema, msg.event)}\n`);
    }
  },
};

/** Admin command groups: `latchkey <group> <verb> ...`. */
export const adminCommands: Record<string, Record<string, Handler>> = {
  upstream,
  credential,
  token,
  policy,
  audit,
};
