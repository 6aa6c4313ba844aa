//! Re-encrypts every sealed value under the first configured key, bound to its slot: the step of
//! a key rotation after which the old key can be removed (`synap-admin reseal`).
//!
//! Safe while the services run and safe to interrupt: each batch is its own transaction, and a
//! row is rewritten only if it still holds the bytes that were read (compare-and-set), so a value
//! a caller changed meanwhile is never overwritten with stale data. Values already under the
//! first key are skipped, so running it again continues where it stopped.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::GenericClient;

use crate::keyring::{self, SEALED_COLUMNS};
use crate::secret_box::{KeyId, Layout, SecretBox, Slot};
use crate::{DbError, Pool};

/// How often the scan repeats when rows changed under it (their new values may still be under
/// an old key if an old-configured service wrote them).
const MAX_PASSES: u32 = 3;

/// What a run changed and what it left.
#[derive(Debug, Default)]
pub struct Report {
    /// The key everything was resealed under.
    pub sealing_key_id: String,
    /// `table.column` → values rewritten.
    pub resealed: BTreeMap<String, u64>,
    /// Rows whose value changed between read and rewrite, left as the other writer made them.
    pub changed_meanwhile: u64,
    /// Values no configured key opens, each described by its slot and the reason (never the
    /// value).
    pub unreadable: BTreeSet<String>,
    /// Canaries dropped: no value is stored under these keys any more.
    pub dropped: Vec<String>,
    /// `legacy` or key id → values still stored under it.
    pub remaining: BTreeMap<String, u64>,
}

impl Report {
    pub fn total_resealed(&self) -> u64 {
        self.resealed.values().sum()
    }
}

/// A row of a sealed column, by primary key; also where the scan of that column stands.
#[derive(Clone, Debug)]
enum Row {
    /// `subscriptions.basic_auth_password`, by subscription id.
    Password(String),
    /// `subscription_secrets.secret`, by row id.
    SigningSecret(i64),
    /// `subscription_headers.sealed_value`, by row id.
    HeaderValue(i64),
}

struct Sealed {
    row: Row,
    slot: Slot,
    value: Vec<u8>,
}

impl Row {
    /// Where the scan of each column starts: before its first row.
    const STARTS: [fn() -> Row; 3] =
        [|| Row::Password(String::new()), || Row::SigningSecret(0), || Row::HeaderValue(0)];

    fn column(&self) -> String {
        let (table, column) = match self {
            Row::Password(_) => SEALED_COLUMNS[0],
            Row::SigningSecret(_) => SEALED_COLUMNS[1],
            Row::HeaderValue(_) => SEALED_COLUMNS[2],
        };
        format!("{table}.{column}")
    }

    /// The next `limit` rows of this column after this one whose value does not start with
    /// `current` (the sealing key's header), i.e. that need resealing.
    async fn next_batch(
        &self,
        client: &impl GenericClient,
        current: &[u8],
        limit: i64,
    ) -> Result<Vec<Sealed>, DbError> {
        let rows = match self {
            Row::Password(after) => client
                .query(
                    "SELECT id, basic_auth_password FROM subscriptions
                     WHERE id > $1 AND basic_auth_password IS NOT NULL
                       AND substring(basic_auth_password from 1 for octet_length($2::bytea)) <> $2::bytea
                     ORDER BY id LIMIT $3",
                    &[after, &current, &limit],
                )
                .await?
                .iter()
                .map(|row| {
                    let id: String = row.get(0);
                    Sealed {
                        slot: crate::subscriptions::password_slot(&id),
                        row: Row::Password(id),
                        value: row.get(1),
                    }
                })
                .collect(),
            Row::SigningSecret(after) => {
                let (table, column) = SEALED_COLUMNS[1];
                by_row_id(
                    client,
                    table,
                    column,
                    *after,
                    current,
                    limit,
                    crate::secrets::slot,
                    Row::SigningSecret,
                )
                .await?
            }
            Row::HeaderValue(after) => {
                let (table, column) = SEALED_COLUMNS[2];
                by_row_id(
                    client,
                    table,
                    column,
                    *after,
                    current,
                    limit,
                    crate::custom_headers::slot,
                    Row::HeaderValue,
                )
                .await?
            }
        };
        Ok(rows)
    }
}

impl Sealed {
    /// Replaces the value read with `new`, only if the row still holds it; true when it did.
    async fn compare_and_set(&self, client: &impl GenericClient, new: &[u8]) -> Result<bool, DbError> {
        let n = match &self.row {
            Row::Password(id) => {
                client
                    .execute(
                        "UPDATE subscriptions SET basic_auth_password = $3
                         WHERE id = $1 AND basic_auth_password = $2",
                        &[id, &self.value, &new],
                    )
                    .await?
            }
            Row::SigningSecret(id) => {
                client
                    .execute(
                        "UPDATE subscription_secrets SET secret = $3 WHERE id = $1 AND secret = $2",
                        &[id, &self.value, &new],
                    )
                    .await?
            }
            Row::HeaderValue(id) => client
                .execute(
                    "UPDATE subscription_headers SET sealed_value = $3 WHERE id = $1 AND sealed_value = $2",
                    &[id, &self.value, &new],
                )
                .await?,
        };
        Ok(n == 1)
    }
}

/// Reseals every value not yet under the first key, `batch_size` rows per transaction, then
/// drops the canaries of keys no value is stored under any more.
pub async fn run(pool: &Pool, secrets: &SecretBox, batch_size: usize) -> Result<Report, DbError> {
    let current = secrets.sealing_key_id().header();
    let mut report = Report { sealing_key_id: secrets.sealing_key_id().to_string(), ..Report::default() };
    for _ in 0..MAX_PASSES {
        let before = report.changed_meanwhile;
        for start in Row::STARTS {
            reseal_column(pool, secrets, start(), &current, batch_size.max(1) as i64, &mut report).await?;
        }
        if report.changed_meanwhile == before {
            break;
        }
    }
    for key_id in keyring::canary_ids(pool).await? {
        let layout = if key_id == keyring::LEGACY {
            Layout::Legacy
        } else {
            match KeyId::parse(&key_id) {
                Some(id) if id == secrets.sealing_key_id() => continue,
                Some(id) => Layout::Keyed(id),
                None => continue,
            }
        };
        if keyring::drop_if_unused(pool, secrets, layout).await? == 0 {
            tracing::info!(key_id, "no value is sealed under this key any more; dropped its canary");
            report.dropped.push(key_id);
        }
    }
    report.remaining = not_under(pool, &current).await?;
    Ok(report)
}

async fn reseal_column(
    pool: &Pool,
    secrets: &SecretBox,
    mut cursor: Row,
    current: &[u8],
    limit: i64,
    report: &mut Report,
) -> Result<(), DbError> {
    loop {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let rows = cursor.next_batch(&tx, current, limit).await?;
        let Some(last) = rows.last() else { break };
        cursor = last.row.clone();
        // Values are about to be written under the sealing key: its canary must exist.
        keyring::touch(&tx, secrets).await?;
        let mut resealed = 0;
        for row in &rows {
            let plain = match secrets.open(&row.value, &row.slot) {
                Ok(plain) => plain,
                Err(error) => {
                    report.unreadable.insert(error.to_string());
                    continue;
                }
            };
            if row.compare_and_set(&tx, &secrets.seal(&plain, &row.slot)).await? {
                resealed += 1;
            } else {
                report.changed_meanwhile += 1;
            }
        }
        tx.commit().await?;
        *report.resealed.entry(cursor.column()).or_default() += resealed;
        tracing::info!(column = cursor.column(), resealed, "resealed a batch");
    }
    Ok(())
}

/// Values not under the sealing key, per `legacy` / key id (or `unknown` for a value in no
/// layout this version knows).
async fn not_under(pool: &Pool, current: &[u8]) -> Result<BTreeMap<String, u64>, DbError> {
    let client = pool.get().await?;
    let mut remaining = BTreeMap::new();
    for (table, column) in SEALED_COLUMNS {
        let rows = client
            .query(
                &format!(
                    "SELECT substring({column} from 1 for octet_length($1::bytea)), count(*) FROM {table}
                     WHERE {column} IS NOT NULL AND substring({column} from 1 for octet_length($1::bytea)) <> $1::bytea
                     GROUP BY 1"
                ),
                &[&current],
            )
            .await?;
        for row in rows {
            let header: Vec<u8> = row.get(0);
            let name = match header.first() {
                Some(1) => keyring::LEGACY.to_owned(),
                _ => KeyId::from_header(&header).map_or("unknown".to_owned(), |id| id.to_string()),
            };
            *remaining.entry(name).or_default() += row.get::<_, i64>(1) as u64;
        }
    }
    Ok(remaining)
}

/// The next `limit` rows after `after` of a column kept in rows of their own (an `i64` id and a
/// `subscription_id`) whose value is set and does not start with `current`: signing secrets and
/// secret header values, which seal the same way (bound to subscription and row id).
#[allow(clippy::too_many_arguments)]
async fn by_row_id(
    client: &impl GenericClient,
    table: &str,
    column: &str,
    after: i64,
    current: &[u8],
    limit: i64,
    slot: fn(&str, i64) -> Slot,
    row: fn(i64) -> Row,
) -> Result<Vec<Sealed>, DbError> {
    let query = format!(
        "SELECT id, subscription_id, {column} FROM {table}
         WHERE id > $1 AND {column} IS NOT NULL
           AND substring({column} from 1 for octet_length($2::bytea)) <> $2::bytea
         ORDER BY id LIMIT $3"
    );
    Ok(client
        .query(&query, &[&after, &current, &limit])
        .await?
        .iter()
        .map(|r| {
            let (id, subscription): (i64, String) = (r.get(0), r.get(1));
            Sealed { slot: slot(&subscription, id), row: row(id), value: r.get(2) }
        })
        .collect())
}
