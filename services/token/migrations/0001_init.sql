-- Proxy tokens. The secret itself is never stored: token_secrets holds its keyed hash.
CREATE TABLE token.tokens (
  tenant text NOT NULL,
  id text NOT NULL,
  display_name text NOT NULL DEFAULT '',
  subject text NOT NULL DEFAULT '',
  attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
  allowed_upstreams text[] NOT NULL DEFAULT '{}',
  -- NULL: the token does not expire.
  expire_time timestamptz,
  state text NOT NULL CHECK (state IN ('active', 'revoked')),
  -- First characters of the current secret, for people to tell tokens apart.
  display_prefix text NOT NULL,
  -- Limits enforced by a later release; stored as the proto's JSON form.
  rate_limits jsonb NOT NULL DEFAULT '[]'::jsonb,
  quota jsonb,
  -- Caller's idempotency key for CreateToken.
  request_id text,
  -- Incremented on every write; the etag.
  version bigint NOT NULL DEFAULT 1,
  create_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  revoke_time timestamptz,
  revoke_reason text,
  PRIMARY KEY (tenant, id),
  CHECK ((state = 'revoked') = (revoke_time IS NOT NULL))
);

-- One token per (tenant, request_id): a retried CreateToken finds the first one.
CREATE UNIQUE INDEX tokens_request_id_key ON token.tokens (tenant, request_id)
  WHERE request_id IS NOT NULL;

-- ListTokens filtered by subject, newest first.
CREATE INDEX tokens_subject_idx ON token.tokens (tenant, subject, id);

-- Secrets by keyed hash (HMAC-SHA-256 with the server pepper). A table of its own, not a
-- column of tokens, so rotation fits: RotateToken sets expire_time on the current secret
-- (the end of its grace period) and inserts the new one; VerifyToken stays one lookup by
-- hash whichever secret is presented, and an old secret past its grace can be told apart
-- (VERIFY_FAILURE_ROTATED) from an unknown one.
CREATE TABLE token.token_secrets (
  hash bytea PRIMARY KEY,
  tenant text NOT NULL,
  token_id text NOT NULL,
  display_prefix text NOT NULL,
  create_time timestamptz NOT NULL,
  -- NULL while this is the token's current secret.
  expire_time timestamptz,
  FOREIGN KEY (tenant, token_id) REFERENCES token.tokens (tenant, id)
);

-- At most one current secret per token.
CREATE UNIQUE INDEX token_secrets_current_key ON token.token_secrets (tenant, token_id)
  WHERE expire_time IS NULL;
