-- The audit log: one row per gateway request and per admin change, written only by the
-- ingest (INSERT ... ON CONFLICT (id) DO NOTHING) and never updated.
CREATE TABLE audit.events (
  -- Event id (evt_...): time-ordered, so "newest first" is ORDER BY id DESC. COLLATE "C"
  -- makes that byte order on every server, whatever the database's default collation.
  id text COLLATE "C" PRIMARY KEY,
  tenant text NOT NULL,
  -- When the event happened (from the event, not when it was ingested).
  time timestamptz NOT NULL,
  kind text NOT NULL CHECK (kind IN ('gateway_request', 'change')),
  -- W3C trace id, 32 lower-case hex characters; null when the event carried none.
  trace_id text,
  -- Token resource name: the token a gateway request presented, or the token a change was
  -- about; null otherwise.
  token text,
  -- Upstream slug of a gateway request; null for changes.
  upstream text,
  -- latchkey.events.v1.GatewayDecision of a gateway request; null for changes.
  decision integer,
  -- HTTP status sent to the client; null for changes.
  status integer,
  -- The AuditEvent exactly as recorded (protobuf binary), returned as-is by ListEvents.
  event bytea NOT NULL,
  -- When the ingest stored the row, for measuring ingest lag.
  recorded_at timestamptz NOT NULL DEFAULT now()
);

-- ListEvents: a tenant's events newest first, keyset-paginated by id.
CREATE INDEX events_tenant_id ON audit.events (tenant, id DESC);
-- ListEvents filtered by token (gateway requests and changes of one token).
CREATE INDEX events_tenant_token_id ON audit.events (tenant, token, id) WHERE token IS NOT NULL;
-- ListEvents filtered by trace id: every event of one request.
CREATE INDEX events_tenant_trace ON audit.events (tenant, trace_id) WHERE trace_id IS NOT NULL;
-- GetUsage and time-window filters: a tenant's events in [start, end).
CREATE INDEX events_tenant_time ON audit.events (tenant, time);
