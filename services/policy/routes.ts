import type { ConnectRouter } from "@connectrpc/connect";
import { PolicyService } from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import type { PolicyServiceDeps } from "./deps.ts";
import { batchEvaluate } from "./handlers/batch-evaluate.ts";
import { createUpstream } from "./handlers/create-upstream.ts";
import { deleteUpstream } from "./handlers/delete-upstream.ts";
import { evaluate } from "./handlers/evaluate.ts";
import { getBundle } from "./handlers/get-bundle.ts";
import { getPolicySet } from "./handlers/get-policy-set.ts";
import { getUpstream } from "./handlers/get-upstream.ts";
import { listPolicySetVersions } from "./handlers/list-policy-set-versions.ts";
import { listUpstreams } from "./handlers/list-upstreams.ts";
import { putPolicySet } from "./handlers/put-policy-set.ts";
import { updateUpstream } from "./handlers/update-upstream.ts";

/**
 * Registers PolicyService. Handlers throw DomainError; the libs/rpc interceptor maps it to a
 * Connect code.
 */
export function createPolicyRoutes(deps: PolicyServiceDeps): (router: ConnectRouter) => void {
  return (router) => {
    router.service(PolicyService, {
      createUpstream: (req, ctx) => createUpstream(deps, req, ctx),
      getUpstream: (req, ctx) => getUpstream(deps, req, ctx),
      listUpstreams: (req, ctx) => listUpstreams(deps, req, ctx),
      updateUpstream: (req, ctx) => updateUpstream(deps, req, ctx),
      deleteUpstream: (req, ctx) => deleteUpstream(deps, req, ctx),
      putPolicySet: (req, ctx) => putPolicySet(deps, req, ctx),
      getPolicySet: (req, ctx) => getPolicySet(deps, req, ctx),
      listPolicySetVersions: (req, ctx) => listPolicySetVersions(deps, req, ctx),
      evaluate: (req, ctx) => evaluate(deps, req, ctx),
      batchEvaluate: (req, ctx) => batchEvaluate(deps, req, ctx),
      getBundle: (req, ctx) => getBundle(deps, req, ctx),
    });
  };
}
