-- Signing secrets (Standard Webhooks `whsec_…`), sealed like every other secret. A subscription
-- has one current secret; after a rotation the previous one stays valid until `expires_at`.
CREATE TABLE subscription_secrets (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    secret           BYTEA NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL for the current secret.
    expires_at       TIMESTAMPTZ
);
CREATE INDEX subscription_secrets_by_subscription ON subscription_secrets (subscription_id, created_at DESC);

-- The attempt log: one row per HTTP attempt of a delivery. Never holds request secrets
-- (authorization header, signing secrets).
CREATE TABLE delivery_attempts (
    id                BIGSERIAL PRIMARY KEY,
    event_id          TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    portal_id         TEXT NOT NULL,
    subscription_id   TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    scheduled_at      TIMESTAMPTZ NOT NULL,
    sent_at           TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ NOT NULL,
    -- delivered, failed (will retry), exhausted (final failure), dropped (subscription gone)
    outcome           TEXT NOT NULL,
    -- timeout, connect, dns, tls, http_status, refused (SSRF), other; NULL when delivered
    error_class       TEXT,
    error             TEXT,
    status_code       INTEGER,
    latency_ms        INTEGER NOT NULL,
    response_headers  JSONB,
    -- First 16 KiB of the response body.
    response_body     TEXT,
    -- A test send from the control API rather than a platform event.
    test_send         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX delivery_attempts_by_subscription ON delivery_attempts (subscription_id, finished_at DESC);
CREATE INDEX delivery_attempts_by_portal ON delivery_attempts (portal_id, finished_at DESC);
CREATE INDEX delivery_attempts_by_event ON delivery_attempts (event_id, subscription_id);
