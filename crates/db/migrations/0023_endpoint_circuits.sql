-- Circuit breaker transitions (issue 10): the sender keeps one circuit per portal and endpoint
-- (scheme, host, port and path of the URL; `synap_db::circuits::endpoint`) in memory, and records
-- here when one opens or closes, so that the control API and the portal can show "circuit open
-- since …" for a subscription. Written best effort, off the delivery path: a missed write only
-- leaves an older state shown. With several sender replicas each keeps its own circuits; the
-- latest transition any of them recorded is shown.
CREATE TABLE endpoint_circuits (
    portal_id   TEXT NOT NULL,
    endpoint    TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    -- When the circuit opened; NULL once it is closed.
    opened_at   TIMESTAMPTZ,
    -- When the sender saw the transition (opened or closed).
    changed_at  TIMESTAMPTZ NOT NULL,
    -- The failure that opened it (`http_503`, `timeout`, …); NULL once it is closed.
    reason      TEXT,
    PRIMARY KEY (portal_id, endpoint)
);

COMMENT ON TABLE endpoint_circuits IS
    'Latest circuit breaker transition per portal and endpoint URL (without query), as the sender saw it';
