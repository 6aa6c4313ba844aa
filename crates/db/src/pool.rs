//! The connection pool.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use serde::{Deserialize, Serialize};
use tokio_postgres::NoTls;

use crate::DbError;

pub type Pool = deadpool_postgres::Pool;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// libpq-style URL, e.g. `postgres://synap:synap@127.0.0.1:5432/synap`.
    pub url: String,
    /// Most connections this process opens.
    pub pool_size: usize,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: "postgres://synap:synap@127.0.0.1:5432/synap".into(), pool_size: 8 }
    }
}

/// Builds the pool. Connections open lazily, so this succeeds while the database is down.
pub fn connect(config: &DatabaseConfig) -> Result<Pool, DbError> {
    let pg = tokio_postgres::Config::from_str(&config.url).map_err(|e| DbError::Config(e.to_string()))?;
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

/// Whether the database answers, for readiness checks.
pub async fn check_reachable(pool: Pool) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client.simple_query("SELECT 1").await.map_err(|e| e.to_string())?;
    Ok(())
}
