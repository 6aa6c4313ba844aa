-- Idempotent create: a client request id is unique per portal.
ALTER TABLE subscriptions ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX subscriptions_request_id ON subscriptions (portal_id, request_id)
    WHERE request_id IS NOT NULL;

-- Why the system (not a caller) turned a subscription off, e.g. the endpoint answered 410 Gone.
-- NULL while enabled, and when a caller paused it.
ALTER TABLE subscriptions ADD COLUMN disabled_reason TEXT;

-- Pagination across every portal orders by (created_at, id).
CREATE INDEX subscriptions_by_creation ON subscriptions (created_at DESC, id DESC);

-- Portal API keys: bearer tokens scoped to one portal. Only the SHA-256 of a token is stored;
-- the tokens carry 256 random bits, so a fast hash is enough (nothing to brute-force).
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    portal_id     TEXT NOT NULL REFERENCES portals (id) ON DELETE CASCADE,
    name          TEXT NOT NULL DEFAULT '',
    token_hash    BYTEA NOT NULL UNIQUE,
    -- The first characters of the token, to recognise it in listings.
    token_prefix  TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_by_portal ON api_keys (portal_id, created_at DESC);
