-- Vault credentials: metadata here, secret material (encrypted) in credential_versions.
CREATE TABLE vault.credentials (
  tenant text NOT NULL,
  id text NOT NULL,
  display_name text NOT NULL DEFAULT '',
  -- The InjectionScheme in the proto's JSON form: it holds no secret, and operators can read it.
  scheme jsonb NOT NULL,
  -- Normalized origins (`https://host[:port]`) the material may be sent to.
  allowed_origins text[] NOT NULL CHECK (cardinality(allowed_origins) > 0),
  -- The version ResolveCredential returns; 0 when every version is disabled.
  current_version integer NOT NULL CHECK (current_version >= 0),
  -- Caller's idempotency key for CreateCredential.
  request_id text,
  create_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL,
  PRIMARY KEY (tenant, id)
);

-- One credential per (tenant, request_id): a retried CreateCredential finds the first one.
CREATE UNIQUE INDEX credentials_request_id_key ON vault.credentials (tenant, request_id)
  WHERE request_id IS NOT NULL;

-- One row per version of the material, envelope-encrypted (services/vault/envelope.ts): the
-- material under a per-version data key, the data key wrapped by key-encryption key
-- `kek_version`. Both ciphertexts are bound to (tenant, credential_id, version) by their
-- associated data, so bytes copied into another row do not decrypt.
CREATE TABLE vault.credential_versions (
  tenant text NOT NULL,
  credential_id text NOT NULL,
  version integer NOT NULL CHECK (version >= 1),
  state text NOT NULL CHECK (state IN ('enabled', 'disabled')),
  -- AES-256-GCM nonce and ciphertext (with its 16-byte tag) of the SecretMaterial.
  nonce bytea NOT NULL,
  ciphertext bytea NOT NULL,
  -- The data key wrapped by the KEK, and the wrap's nonce (empty for a KMS keeping its own).
  wrapped_key bytea NOT NULL,
  wrapped_nonce bytea NOT NULL,
  kek_version integer NOT NULL,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (tenant, credential_id, version),
  -- Deleting a credential deletes its versions, and with them the only copies of the keys.
  FOREIGN KEY (tenant, credential_id) REFERENCES vault.credentials (tenant, id) ON DELETE CASCADE
);

-- RotateKeyEncryptionKey finds the rows still wrapped by an older KEK.
CREATE INDEX credential_versions_kek_version_idx ON vault.credential_versions (kek_version);
