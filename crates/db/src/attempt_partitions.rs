//! Keeps the attempt log bounded. `delivery_attempts` is partitioned by RANGE on `finished_at`
//! (migration 40); [`maintain`] creates the partitions of the coming `partitions_ahead` widths
//! before rows arrive for them and drops partitions that lie wholly before the retention cutoff
//! with `DROP TABLE`: expired attempts are never deleted row by row, so pruning costs the same
//! whatever the traffic and leaves no dead tuples for vacuum.
//!
//! A row outside every partition (a clock far off, a record re-driven after its partition was
//! dropped) lands in the DEFAULT partition instead of failing its batch. Creating a partition
//! moves the default's rows of its range into it (so the new range never conflicts with the
//! default), and when the default holds an expired row it is swapped for an empty one and dropped
//! whole, its unexpired rows re-inserted. The default holds strays only, so both stay small.
//!
//! One replica does this at a time: the run holds a transaction-level advisory lock and a
//! replica that cannot take it skips its turn. When there is work, the run locks the table
//! exclusively for the milliseconds its DDL takes; it gives up after `LOCK_TIMEOUT` rather than
//! queue writers behind a long reader (their rows wait meanwhile: see the sender's attempt log),
//! and the next run tries again.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{DbError, Pool};

/// The `[attempts]` configuration section: how long the attempt log keeps rows.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttemptsConfig {
    /// Days an attempt row is kept (test sends included). A row goes with its partition: it is
    /// kept at least this long and at most one `partition_seconds` longer.
    pub retention_days: u32,
    /// When above 0, the retention in seconds instead of `retention_days` (for tests that
    /// compress time).
    pub retention_seconds: u64,
    /// Width of one partition (a day by default). At most `MAX_PARTITIONS` fit in the retention.
    pub partition_seconds: u64,
    /// Partitions created ahead of the current one, so that writers never wait for one.
    pub partitions_ahead: u32,
    /// How often each sender replica runs the maintenance (one at a time, under an advisory
    /// lock). 0 turns it off in the sender: then run `synap-admin attempts maintain` on a
    /// schedule (a CronJob) instead.
    pub maintain_every_seconds: u64,
}

impl Default for AttemptsConfig {
    fn default() -> Self {
        Self {
            retention_days: 30,
            retention_seconds: 0,
            partition_seconds: 86_400,
            partitions_ahead: 3,
            maintain_every_seconds: 300,
        }
    }
}

/// Most partitions the retention may span: every query without a time filter visits each.
pub const MAX_PARTITIONS: u64 = 1_000;

impl AttemptsConfig {
    pub fn retention(&self) -> Duration {
        match self.retention_seconds {
            0 => Duration::from_secs(u64::from(self.retention_days) * 86_400),
            s => Duration::from_secs(s),
        }
    }

    /// Checks the section; the error names the key at fault.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.retention().is_zero() {
            return Err(("attempts.retention_days", "must be above 0".into()));
        }
        if self.partition_seconds == 0 {
            return Err(("attempts.partition_seconds", "must be above 0".into()));
        }
        let spanned = self.retention().as_secs().div_ceil(self.partition_seconds);
        if spanned > MAX_PARTITIONS {
            return Err((
                "attempts.partition_seconds",
                format!(
                    "the retention would span {spanned} partitions, at most {MAX_PARTITIONS}; widen them"
                ),
            ));
        }
        if self.partitions_ahead == 0 {
            return Err(("attempts.partitions_ahead", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// One partition of the attempt log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// Inclusive lower bound of `finished_at`.
    pub from: DateTime<Utc>,
    /// Exclusive upper bound.
    pub to: DateTime<Utc>,
    /// Table, indexes and TOAST, in bytes.
    pub bytes: i64,
}

/// What one maintenance run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maintained {
    pub created: Vec<String>,
    pub dropped: Vec<String>,
    /// Rows moved from the default partition into a partition created for them.
    pub moved_from_default: u64,
    /// Expired rows dropped with the default partition they sat in.
    pub expired_from_default: u64,
}

/// Arbitrary constant naming the lock (the migrations' is `...0001`).
const LOCK_KEY: i64 = 0x5359_4e41_5000_0040;
/// How long a run waits for a lock on the attempt log before giving up until its next turn.
const LOCK_TIMEOUT: &str = "2s";
const DEFAULT_PARTITION: &str = "delivery_attempts_default";

/// The partitions by range (the default partition is not listed), oldest first.
pub async fn partitions(pool: &Pool) -> Result<Vec<Partition>, DbError> {
    let client = pool.get().await?;
    list(&client, true).await
}

/// Bytes of the whole attempt log, every partition's table, indexes and TOAST included.
pub async fn total_bytes(pool: &Pool) -> Result<i64, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint FROM pg_inherits
             WHERE inhparent = 'delivery_attempts'::regclass",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// `sized`: with each partition's size (which opens, and so locks, every partition).
async fn list(
    client: &impl deadpool_postgres::GenericClient,
    sized: bool,
) -> Result<Vec<Partition>, DbError> {
    // The bound expression reads `FOR VALUES FROM ('…') TO ('…')`, its times printed with their
    // offset, so casting them back is exact whatever the session's time zone. A partition dropped
    // meanwhile has no size (NULL).
    let rows = client
        .query(
            "SELECT c.relname::text, m[1]::timestamptz, m[2]::timestamptz,
                    CASE WHEN $1 THEN coalesce(pg_total_relation_size(c.oid), 0) ELSE 0 END
             FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                             'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') m
             WHERE i.inhparent = 'delivery_attempts'::regclass AND m IS NOT NULL
             ORDER BY 2",
            &[&sized],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Partition { name: r.get(0), from: r.get(1), to: r.get(2), bytes: r.get(3) })
        .collect())
}

/// Creates the partitions due, drops the expired ones and clears expired strays out of the
/// default partition. `None` when another replica is doing it right now.
pub async fn maintain(pool: &Pool, config: &AttemptsConfig) -> Result<Option<Maintained>, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let locked: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&LOCK_KEY]).await?.get(0);
    if !locked {
        return Ok(None);
    }
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")).await?;
    // The database's clock, the same for every replica.
    let now: DateTime<Utc> = tx.query_one("SELECT now()", &[]).await?.get(0);
    let retention = chrono::Duration::from_std(config.retention())
        .map_err(|_| DbError::Config("attempts.retention_seconds is out of range".into()))?;
    let cutoff = now - retention;
    let existing = list(&tx, false).await?;
    let due = due(&existing, now, cutoff, config.partition_seconds, config.partitions_ahead);
    let expired: Vec<&Partition> = existing.iter().filter(|p| p.to <= cutoff).collect();
    // Every lock below is taken table first, partitions after, as PostgreSQL's own DDL on the
    // table takes them (an operator's `ALTER TABLE delivery_attempts ADD CONSTRAINT`, a
    // migration). Reading the default partition before holding the table would take them the
    // other way round and deadlock with such DDL; `ONLY` keeps this lock off the partitions.
    tx.batch_execute("LOCK TABLE ONLY delivery_attempts IN ACCESS SHARE MODE").await?;
    let stale: bool = tx
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE finished_at < $1)"),
            &[&cutoff],
        )
        .await?
        .get(0);
    let mut done = Maintained::default();
    if due.is_empty() && expired.is_empty() && !stale {
        return Ok(Some(done));
    }
    // The strongest lock any step below needs, taken first: a step that took a partition's lock
    // and then waited for the table's would deadlock with a reader holding the table and waiting
    // for that partition. Held for milliseconds (the tables created are empty, drops are whole);
    // the wait for it is bounded by the lock timeout.
    tx.batch_execute("LOCK TABLE delivery_attempts IN ACCESS EXCLUSIVE MODE").await?;

    for (from, to) in due {
        let name = name_of(from);
        tx.batch_execute(&format!(
            "CREATE TABLE {name} (LIKE delivery_attempts
                 INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        ))
        .await?;
        // Strays of this range wait in the default partition; attaching would fail over them.
        done.moved_from_default += tx
            .execute(
                &format!(
                    "WITH moved AS (DELETE FROM {DEFAULT_PARTITION}
                                    WHERE finished_at >= $1 AND finished_at < $2 RETURNING *)
                     INSERT INTO {name} SELECT * FROM moved"
                ),
                &[&from, &to],
            )
            .await?;
        tx.batch_execute(&format!(
            "ALTER TABLE delivery_attempts ATTACH PARTITION {name}
                 FOR VALUES FROM ('{}') TO ('{}')",
            literal(from),
            literal(to)
        ))
        .await?;
        done.created.push(name);
    }

    for partition in expired {
        tx.batch_execute(&format!("DROP TABLE {}", partition.name)).await?;
        done.dropped.push(partition.name.clone());
    }
    if stale {
        done.expired_from_default = swap_default(&tx, cutoff).await?;
    }
    tx.commit().await?;
    Ok(Some(done))
}

/// Replaces the default partition with an empty one, puts its unexpired rows back and drops it
/// whole. Returns the number of expired rows dropped.
async fn swap_default(tx: &tokio_postgres::Transaction<'_>, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
    const OLD: &str = "delivery_attempts_default_expired";
    tx.batch_execute(&format!(
        "ALTER TABLE delivery_attempts DETACH PARTITION {DEFAULT_PARTITION};
         ALTER TABLE {DEFAULT_PARTITION} RENAME TO {OLD};
         CREATE TABLE {DEFAULT_PARTITION} PARTITION OF delivery_attempts DEFAULT;"
    ))
    .await?;
    let total: i64 = tx.query_one(&format!("SELECT count(*) FROM {OLD}"), &[]).await?.get(0);
    let kept = tx
        .execute(
            &format!("INSERT INTO delivery_attempts SELECT * FROM {OLD} WHERE finished_at >= $1"),
            &[&cutoff],
        )
        .await?;
    tx.batch_execute(&format!("DROP TABLE {OLD}")).await?;
    Ok((total as u64).saturating_sub(kept))
}

/// The ranges to create: contiguous from the newest partition's end (or from the current period
/// when there is none, or from the cutoff when the newest lies before it) until `ahead` periods
/// after the current one are covered. Boundaries fall on multiples of `width` since the epoch
/// (UTC midnight for days), so a change of width only changes ranges not yet created.
fn due(
    existing: &[Partition],
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
    width: u64,
    ahead: u32,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let width = width.max(1) as i64;
    let floor = |t: DateTime<Utc>| -> DateTime<Utc> {
        let s = t.timestamp();
        Utc.timestamp_opt(s - s.rem_euclid(width), 0).single().unwrap_or(t)
    };
    let step = chrono::Duration::seconds(width);
    let end = floor(now) + step * (i32::try_from(ahead).unwrap_or(i32::MAX) + 1);
    let mut from = match existing.iter().map(|p| p.to).max() {
        None => floor(now),
        Some(newest) => newest.max(floor(cutoff)),
    };
    let mut ranges = Vec::new();
    while from < end {
        let to = floor(from) + step;
        ranges.push((from, to));
        from = to;
    }
    ranges
}

/// Partitions are named after their lower bound (UTC), as migration 40 names its daily ones.
fn name_of(from: DateTime<Utc>) -> String {
    format!("delivery_attempts_p{}", from.format("%Y%m%dt%H%M%S"))
}

fn literal(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// Runs [`maintain`] now and every `maintain_every_seconds` until `shutdown`; a failed run is
/// logged and tried again at the next turn (a missed turn only delays pruning: partitions are
/// created `partitions_ahead` periods early, and the default partition takes rows meanwhile).
pub async fn keep(pool: Pool, config: AttemptsConfig, shutdown: CancellationToken) {
    if config.maintain_every_seconds == 0 {
        return;
    }
    let every = Duration::from_secs(config.maintain_every_seconds);
    loop {
        match maintain(&pool, &config).await {
            Ok(Some(done)) if done != Maintained::default() => tracing::info!(
                created = ?done.created,
                dropped = ?done.dropped,
                moved_from_default = done.moved_from_default,
                expired_from_default = done.expired_from_default,
                "attempt log partitions maintained"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "attempt log maintenance failed; trying again next turn"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn part(from: &str, to: &str) -> Partition {
        Partition { name: name_of(at(from)), from: at(from), to: at(to), bytes: 0 }
    }

    #[test]
    fn a_fresh_log_gets_the_current_day_and_those_ahead() {
        let now = at("2026-11-29T14:35:10Z");
        let ranges = due(&[], now, now - chrono::Duration::days(30), 86_400, 3);
        assert_eq!(ranges.len(), 4);
        assert_eq!(ranges[0], (at("2026-11-29T00:00:00Z"), at("2026-11-30T00:00:00Z")));
        assert_eq!(ranges[3].1, at("2026-12-03T00:00:00Z"));
        assert_eq!(name_of(ranges[0].0), "delivery_attempts_p20261129t000000");
    }

    #[test]
    fn ranges_continue_from_the_newest_partition_and_nothing_is_due_when_covered() {
        let now = at("2026-11-29T14:35:10Z");
        let cutoff = now - chrono::Duration::days(30);
        let existing = [part("2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z")];
        let ranges = due(&existing, now, cutoff, 86_400, 3);
        assert_eq!(ranges.first().unwrap().0, at("2026-11-30T00:00:00Z"));
        assert_eq!(ranges.len(), 3);
        let covered = [part("2026-11-29T00:00:00Z", "2026-12-03T00:00:00Z")];
        assert!(due(&covered, now, cutoff, 86_400, 3).is_empty());
    }

    #[test]
    fn a_narrower_width_starts_where_the_daily_partitions_end() {
        let now = at("2026-11-29T14:35:10Z");
        let existing = [part("2026-11-29T00:00:00Z", "2026-11-29T14:35:05Z")];
        let ranges = due(&existing, now, now - chrono::Duration::seconds(6), 2, 2);
        assert_eq!(ranges[0], (at("2026-11-29T14:35:05Z"), at("2026-11-29T14:35:06Z")));
        assert_eq!(ranges.last().unwrap().1, at("2026-11-29T14:35:16Z"));
        assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0), "contiguous");
    }

    #[test]
    fn after_a_long_pause_creation_starts_at_the_cutoff_not_at_the_old_end() {
        let now = at("2026-11-29T14:35:10Z");
        let existing = [part("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")];
        let ranges = due(&existing, now, now - chrono::Duration::days(30), 86_400, 3);
        assert_eq!(ranges[0].0, at("2026-10-30T00:00:00Z"));
        assert_eq!(ranges.len(), 30 + 4);
    }

    #[test]
    fn the_configuration_names_the_key_at_fault() {
        assert!(AttemptsConfig::default().validate().is_ok());
        assert_eq!(AttemptsConfig::default().retention(), Duration::from_secs(30 * 86_400));
        let narrow = AttemptsConfig { partition_seconds: 60, ..Default::default() };
        assert_eq!(narrow.validate().unwrap_err().0, "attempts.partition_seconds");
        let none = AttemptsConfig { retention_days: 0, ..Default::default() };
        assert_eq!(none.validate().unwrap_err().0, "attempts.retention_days");
        let fast = AttemptsConfig { retention_seconds: 6, partition_seconds: 2, ..Default::default() };
        assert_eq!(fast.retention(), Duration::from_secs(6));
        assert!(fast.validate().is_ok());
    }
}
