CREATE TABLE portals (
    id          TEXT PRIMARY KEY,
    -- free, starter, pro or enterprise; webhooks need pro or higher.
    plan        TEXT NOT NULL,
    -- Custom features, e.g. 'store' (needed for store.purchase).
    features    TEXT[] NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE subscriptions (
    id                   TEXT PRIMARY KEY,
    portal_id            TEXT NOT NULL REFERENCES portals (id),
    url                  TEXT NOT NULL,
    event_types          TEXT[] NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    basic_auth_username  TEXT,
    -- Sealed with the deployment's encryption key (AES-256-GCM); never stored in plain text.
    basic_auth_password  BYTEA,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The router's lookup: a portal's enabled subscriptions.
CREATE INDEX subscriptions_by_portal ON subscriptions (portal_id, created_at DESC);
