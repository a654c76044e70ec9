-- Upstreams: the APIs a tenant protects, keyed by the slug clients put first in the path.
CREATE TABLE policy.upstreams (
  tenant text NOT NULL,
  slug text NOT NULL,
  display_name text NOT NULL DEFAULT '',
  -- Normalized `scheme://host[:port]`, never taken from a request.
  origin text NOT NULL,
  base_path text NOT NULL DEFAULT '',
  -- `tenants/{tenant}/credentials/{id}`, or '' to forward without a credential.
  credential text NOT NULL DEFAULT '',
  request_timeout_ms bigint NOT NULL,
  max_request_body_bytes bigint NOT NULL,
  audit_mode text NOT NULL CHECK (audit_mode IN ('async', 'sync')),
  forward_cookies boolean NOT NULL DEFAULT false,
  -- Caller's idempotency key for CreateUpstream.
  request_id text,
  -- Incremented on every write; the etag.
  version bigint NOT NULL DEFAULT 1,
  create_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  PRIMARY KEY (tenant, slug)
);

-- One upstream per (tenant, request_id): a retried CreateUpstream finds the first one.
CREATE UNIQUE INDEX upstreams_request_id_key ON policy.upstreams (tenant, request_id)
  WHERE request_id IS NOT NULL;

-- Every version of every tenant's rule set, kept forever: decisions and audit events name
-- the version they used, so it must stay readable. The current one is the highest version.
CREATE TABLE policy.policy_sets (
  tenant text NOT NULL,
  version bigint NOT NULL CHECK (version > 0),
  -- The rules in the proto JSON form of latchkey.policy.v1.Rule (readable with psql).
  rules jsonb NOT NULL,
  -- Admin key id of the writer.
  author text NOT NULL,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (tenant, version)
);
