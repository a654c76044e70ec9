import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { actorOf, requireAdmin } from "../../../libs/auth/principal.ts";
import { DomainError, invalidArgument } from "../../../libs/errors/index.ts";
import { ChangeAction, ResourceType } from "../../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type PutPolicySetRequest,
  type PutPolicySetResponse,
  PutPolicySetResponseSchema,
} from "../../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { parseParent } from "../../../libs/names/index.ts";
import { enqueueChange } from "../../../libs/outbox/index.ts";
import { checkRules } from "../../../libs/policy-engine/index.ts";
import type { PolicyServiceDeps } from "../deps.ts";
import { policySetName, rulesToJson, toPolicySetMessage } from "../policy-message.ts";
import { currentPolicyVersion, insertPolicySet, type PolicySetRow } from "../store.ts";

/** Attempts when concurrent writers without expected_version race for the next version. */
const maxAttempts = 5;

/**
 * PutPolicySet: validates every rule (conditions parsed and type-checked) and writes the
 * next version with a change event in one transaction. Every problem of every rule is
 * returned at once as InvalidArgument. With expected_version set, the write happens only
 * if the current version is that one (Aborted otherwise).
 */
export async function putPolicySet(
  deps: PolicyServiceDeps,
  req: PutPolicySetRequest,
  ctx: HandlerContext,
): Promise<PutPolicySetResponse> {
  const tenant = parseParent(req.parent);
  const principal = requireAdmin(ctx, tenant, "write");
  if (req.expectedVersion < 0n) throw invalidArgument("expected_version must not be negative");
  const problems = checkRules(req.rules);
  if (problems.length > 0) {
    throw invalidArgument(
      `invalid policy set (${problems.length} problems): ${problems.join("; ")}`,
    );
  }
  const rules = rulesToJson(req.rules);
  const author = actorOf(principal);
  const expected = Number(req.expectedVersion);

  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const written = await deps.db.transaction(async (tx): Promise<PolicySetRow | undefined> => {
      const current = await currentPolicyVersion(tx, tenant);
      if (expected !== 0 && current !== expected) {
        throw new DomainError(
          "aborted",
          `policy set is at version ${current}, not the expected ${expected}`,
        );
      }
      const row = await insertPolicySet(tx, {
        tenant,
        version: current + 1,
        rules,
        author,
        createTime: deps.clock(),
      });
      // No row: another writer committed this version first (the insert waited for it).
      if (!row) return undefined;
      await enqueueChange(tx, "policy", {
        tenant,
        resource: policySetName(tenant),
        resourceType: ResourceType.POLICY_SET,
        action: row.version === 1 ? ChangeAction.CREATED : ChangeAction.UPDATED,
        actor: author,
        version: row.version,
      });
      return row;
    });
    if (written) {
      deps.kickRelay();
      deps.log.info(
        {
          name: policySetName(tenant),
          version: written.version,
          rules: rules.length,
          actor: author,
        },
        "policy set written",
      );
      return create(PutPolicySetResponseSchema, { policySet: toPolicySetMessage(tenant, written) });
    }
    if (expected !== 0) {
      throw new DomainError(
        "aborted",
        `policy set changed concurrently; expected version ${expected}`,
      );
    }
  }
  throw new DomainError("aborted", "policy set is being changed concurrently; retry");
}
