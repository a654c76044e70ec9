#!/usr/bin/env -S node --max-semi-space-size=16
import { ConfigError } from "../libs/config/index.ts";
import { adminCommands, UsageError } from "./admin.ts";
import { DataDirLockedError } from "./data-dir-lock.ts";

const usage = `latchkey: API tokens access proxy

  latchkey run <all|token|policy|vault|audit|gateway>   start components
  latchkey migrate                                      apply every schema's migrations
  latchkey admin-key create --role R --tenant T         create an admin key (database access)
  latchkey upstream  create|get|list|delete ...
  latchkey credential create|add-version|get|list|delete ...
  latchkey token     create|get|list|revoke ...
  latchkey policy    put|get ...
  latchkey audit     list|tail ...

Admin commands reach LATCHKEY_URL (default http://127.0.0.1:7000) with LATCHKEY_ADMIN_KEY
(or the key embedded mode wrote to .latchkey/admin-key). See README.md.
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(usage);
    return;
  }
  if (command === "run") {
    const { run } = await import("./run.ts");
    return run(rest[0] ?? "", process.env);
  }
  if (command === "migrate") {
    const { migrateCommand } = await import("./migrate.ts");
    return migrateCommand(process.env);
  }
  if (command === "admin-key") {
    const { adminKeyCommand } = await import("./migrate.ts");
    return adminKeyCommand(rest, process.env);
  }
  const group = command ? adminCommands[command] : undefined;
  const verb = rest[0];
  if (!group || !verb || !group[verb]) throw new UsageError(usage);
  return group[verb](rest.slice(1));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (
    err instanceof UsageError ||
    err instanceof ConfigError ||
    err instanceof DataDirLockedError
  ) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  // Connect errors carry a code and a safe message; print those rather than a stack.
  const e = err as { code?: unknown; rawMessage?: string; message?: string };
  process.stderr.write(`error: ${e.rawMessage ?? e.message ?? String(err)}\n`);
  process.exit(1);
});
