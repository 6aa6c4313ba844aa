-- One row per encryption key the database holds sealed values under: a known text sealed under
-- that key (or, for `legacy`, a copy of one value sealed before key ids existed). A service
-- refuses to start unless its configured keys open every canary; `synap-admin reseal` drops a
-- canary once no value is stored under its key (see crates/db/src/keyring.rs).
CREATE TABLE encryption_canaries (
    -- The key id (16 hex digits) or 'legacy'.
    key_id      TEXT PRIMARY KEY,
    canary      BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
