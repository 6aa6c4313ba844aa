-- Delivery guarantees (issue 4): per-subscription delivery options, the state behind automatic
-- disabling, and what the attempt log needs for idempotent batched writes and for resending.

-- Per-subscription delivery options. NULL means the deployment's default.
ALTER TABLE subscriptions
    -- Strict FIFO: one request in flight; a failing head blocks only this subscription.
    ADD COLUMN ordered              BOOLEAN NOT NULL DEFAULT FALSE,
    -- Requests in flight at once (sender.max_in_flight_per_subscription when NULL).
    ADD COLUMN max_in_flight        INTEGER CHECK (max_in_flight > 0),
    -- Requests per second (unlimited when NULL).
    ADD COLUMN rate_limit_per_sec   INTEGER CHECK (rate_limit_per_sec > 0),
    -- Request timeout, at most 30 s (sender.request_timeout_ms when NULL).
    ADD COLUMN timeout_ms           INTEGER CHECK (timeout_ms > 0 AND timeout_ms <= 30000),
    -- Start of the current run of failed attempts; NULL after any success, and after the
    -- sender disabled the subscription (so that a resumed one gets a full window again).
    -- The sender records why in `disabled_reason` (migration 10): gone or failing.
    ADD COLUMN failing_since        TIMESTAMPTZ;

-- Each attempt has a stable id, so writing the same log record twice (after a crash between
-- the insert and the Kafka commit) stores it once.
ALTER TABLE delivery_attempts
    ADD COLUMN attempt_id        TEXT,
    -- Where the delivery record (with the event body) sits in Kafka: resend and recover read
    -- it back from there while the topic retains it.
    ADD COLUMN source_topic      TEXT,
    ADD COLUMN source_partition  INTEGER,
    ADD COLUMN source_offset     BIGINT;
CREATE UNIQUE INDEX delivery_attempts_attempt_id ON delivery_attempts (attempt_id);
CREATE INDEX delivery_attempts_by_outcome ON delivery_attempts (subscription_id, outcome, finished_at);

COMMENT ON COLUMN delivery_attempts.outcome IS
    'delivered; retrying (failed, another attempt is scheduled); failed (final: schedule exhausted, '
    'subscription gone or disabled, or a test send that did not succeed)';
