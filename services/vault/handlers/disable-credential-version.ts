import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { invalidArgument, notFound } from "../../../libs/errors/index.ts";
import { ChangeAction } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type DisableCredentialVersionRequest,
  type DisableCredentialVersionResponse,
  DisableCredentialVersionResponseSchema,
} from "../../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { parseName } from "../../../libs/names/index.ts";
import { collection, toCredentialMessage } from "../credential-message.ts";
import type { VaultDeps } from "../deps.ts";
import { recordCredentialChange } from "../events.ts";
import * as store from "../store.ts";

/**
 * DisableCredentialVersion: a disabled version never resolves again. If it was current, the
 * newest enabled version takes over; disabling the last enabled one is allowed (the kill
 * switch for a leaked secret) and leaves the credential unresolvable until a new version
 * is added. Disabling a disabled version changes nothing.
 */
export function disableCredentialVersion(deps: VaultDeps) {
  return async (
    req: DisableCredentialVersionRequest,
    ctx: HandlerContext,
  ): Promise<DisableCredentialVersionResponse> => {
    const { tenant, id } = parseName(req.name, collection);
    const principal = requireAdmin(ctx, tenant, "write");
    if (req.version < 1) throw invalidArgument("version must be 1 or more");
    const now = deps.clock();
    const { credential, changed } = await deps.db.transaction(async (tx) => {
      const row = await store.selectCredential(tx, tenant, id, { forUpdate: true });
      if (!row) throw notFound(`credential ${req.name} not found`);
      const versions = (await store.listVersions(tx, tenant, [id])).get(id) ?? [];
      const target = versions.find((v) => v.version === req.version);
      if (!target) throw notFound(`credential ${req.name} has no version ${req.version}`);
      if (target.state === "disabled") {
        return { credential: toCredentialMessage(row, versions), changed: false };
      }
      await store.disableVersion(tx, tenant, id, req.version);
      const after = versions.map((v) =>
        v.version === req.version ? { ...v, state: "disabled" as const } : v,
      );
      const current =
        row.currentVersion === req.version
          ? Math.max(0, ...after.filter((v) => v.state === "enabled").map((v) => v.version))
          : row.currentVersion;
      const updated = (await store.setCurrentVersion(tx, tenant, id, current, now)) ?? row;
      await recordCredentialChange(tx, {
        tenant,
        id,
        action: ChangeAction.UPDATED,
        actor: actorOf(principal),
        version: current,
        time: now,
      });
      return { credential: toCredentialMessage(updated, after), changed: true };
    });
    if (changed) deps.kickRelay();
    return create(DisableCredentialVersionResponseSchema, { credential });
  };
}
