//! Portals: a Synap customer, its plan and its custom features.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::{DbError, Pool};

pub use synap_contract::Plan;

#[derive(Clone, Debug)]
pub struct Portal {
    pub id: String,
    pub plan: Plan,
    pub features: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Portal {
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    fn from_row(row: &Row) -> Result<Self, DbError> {
        let plan: String = row.get("plan");
        Ok(Portal {
            id: row.get("id"),
            plan: Plan::parse(&plan).ok_or_else(|| DbError::Corrupt(format!("unknown plan {plan:?}")))?,
            features: row.get("features"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        })
    }
}

/// Creates the portal or replaces its plan and features.
pub async fn upsert(pool: &Pool, id: &str, plan: Plan, features: &[String]) -> Result<Portal, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "INSERT INTO portals (id, plan, features) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE
                SET plan = EXCLUDED.plan, features = EXCLUDED.features, updated_at = now()
             RETURNING id, plan, features, created_at, updated_at",
            &[&id, &plan.as_str(), &features],
        )
        .await?;
    Portal::from_row(&row)
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<Portal>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt("SELECT id, plan, features, created_at, updated_at FROM portals WHERE id = $1", &[&id])
        .await?;
    row.as_ref().map(Portal::from_row).transpose()
}

/// One page of portals in id order, after `after`, and the last id when another page follows.
pub async fn list(
    pool: &Pool,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<Portal>, Option<String>), DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, plan, features, created_at, updated_at FROM portals
             WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
            // One more than asked tells whether another page follows.
            &[&after, &(limit as i64 + 1)],
        )
        .await?;
    let mut page = rows.iter().map(Portal::from_row).collect::<Result<Vec<_>, _>>()?;
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|p| p.id.clone())
    } else {
        None
    };
    Ok((page, next))
}
