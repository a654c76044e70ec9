-- Admin keys: only a SHA-256 of each key is stored. Keys carry 256 random bits, so a fast
-- hash is enough (no password-style stretching needed) and lookups stay one index probe.
CREATE TABLE auth.admin_keys (
  id text PRIMARY KEY,
  key_hash bytea NOT NULL UNIQUE,
  role text NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'reader')),
  tenants text[] NOT NULL,
  display_name text NOT NULL DEFAULT '',
  create_time timestamptz NOT NULL DEFAULT now(),
  revoke_time timestamptz
);
