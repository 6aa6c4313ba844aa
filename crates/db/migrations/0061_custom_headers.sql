-- Extra request headers a subscription sends with every delivery (issue 14): at most 20 per
-- subscription, names unique case-insensitively, in the order the caller gave them. A value
-- marked secret is sealed (`sealed_value`, bound to this table, column, subscription and row id)
-- and never returned by the API; any other value is stored as given (`value`).
CREATE TABLE subscription_headers (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    value            TEXT,
    sealed_value     BYTEA,
    -- Exactly one of the two holds the value.
    CHECK ((value IS NULL) <> (sealed_value IS NULL)),
    UNIQUE (subscription_id, position)
);
CREATE UNIQUE INDEX subscription_headers_by_name ON subscription_headers (subscription_id, lower(name));
