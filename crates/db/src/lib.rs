//! PostgreSQL access for Synap Webhooks.

pub mod api_keys;
pub mod migrate;
pub mod pool;
pub mod portals;
pub mod secret_box;
pub mod secrets;
pub mod subscriptions;
pub mod test_sends;

pub use api_keys::ApiKey;
pub use pool::{DatabaseConfig, Pool, connect, watch_reachable};
pub use portals::{Plan, Portal};
pub use secret_box::{EncryptionConfig, SecretBox};
pub use subscriptions::{BasicAuth, DeliveryTarget, NewSubscription, Route, Subscription};

/// A database failure. `Unavailable` is transient (retry); the others are the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(String),
    #[error("invalid database configuration `database.url`: {0}")]
    Config(String),
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Secret(#[from] secret_box::SecretError),
}

impl From<tokio_postgres::Error> for DbError {
    /// Keeps the server's message and code: the bare error only says "db error".
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => DbError::Query(format!("{} ({})", db.message(), db.code().code())),
            None if e.is_closed() => DbError::Unavailable(e.to_string()),
            None => DbError::Query(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}
