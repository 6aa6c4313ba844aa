-- Bounded storage (issue 11): the attempt log becomes a table partitioned by RANGE on
-- `finished_at`, so that expired attempts are dropped a partition at a time (never deleted row by
-- row). `synap_db::attempt_partitions::maintain` creates partitions ahead of time and drops
-- expired ones; this migration only moves the existing rows over.
--
-- A unique index of a partitioned table must include the partition key, so `attempt_id` alone is
-- no longer unique: `(attempt_id, finished_at)` is. A log record written twice (directly and
-- through the attempts topic, or after a crash) carries the same `finished_at`, so it is still
-- stored once. Ids stay unique: every partition takes them from the one sequence.
--
-- Runs in the migration transaction: the old table is locked while its rows are copied, so
-- writers wait (their rows wait in the attempts topic meanwhile; nothing is lost).

LOCK TABLE delivery_attempts IN ACCESS EXCLUSIVE MODE;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_unpartitioned;

-- LIKE keeps every column in order, with its defaults (the id sequence), NOT NULLs, CHECK
-- constraints (migration 22) and comments, including columns later migrations may have added.
CREATE TABLE delivery_attempts (
    LIKE delivery_attempts_unpartitioned
        INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS INCLUDING STORAGE
) PARTITION BY RANGE (finished_at);
ALTER SEQUENCE delivery_attempts_id_seq OWNED BY delivery_attempts.id;

-- A row outside every partition (a clock far off, a record re-driven after its partition was
-- dropped) lands here rather than failing its batch; maintenance moves it into its partition
-- when that is created, and drops the partition's expired rows whole.
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;

-- One partition per UTC day that has rows (the default width; maintenance continues from the
-- last one with the configured width). Named after their lower bound, as maintenance names them.
DO $$
DECLARE
    day timestamptz;
BEGIN
    FOR day IN
        SELECT DISTINCT date_trunc('day', finished_at, 'UTC') FROM delivery_attempts_unpartitioned
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF delivery_attempts FOR VALUES FROM (%L) TO (%L)',
            'delivery_attempts_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS'),
            day, day + interval '1 day');
    END LOOP;
END $$;

INSERT INTO delivery_attempts SELECT * FROM delivery_attempts_unpartitioned;
DROP TABLE delivery_attempts_unpartitioned;

-- The indexes of migrations 2 and 20, with the partition key where uniqueness needs it. Built
-- after the copy (faster than maintaining them row by row); every partition gets its own.
ALTER TABLE delivery_attempts ADD PRIMARY KEY (id, finished_at);
CREATE UNIQUE INDEX delivery_attempts_attempt_id ON delivery_attempts (attempt_id, finished_at);
CREATE INDEX delivery_attempts_by_subscription ON delivery_attempts (subscription_id, finished_at DESC);
CREATE INDEX delivery_attempts_by_portal ON delivery_attempts (portal_id, finished_at DESC);
CREATE INDEX delivery_attempts_by_event ON delivery_attempts (event_id, subscription_id);
CREATE INDEX delivery_attempts_by_outcome ON delivery_attempts (subscription_id, outcome, finished_at);

COMMENT ON TABLE delivery_attempts IS
    'The attempt log, partitioned by finished_at; expired partitions are dropped whole '
    '(attempts.retention_days). delivery_attempts_default holds rows outside every partition.';
