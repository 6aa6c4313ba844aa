//! PostgreSQL access for Synap Webhooks.

pub mod migrate;
pub mod pool;
pub mod portals;
pub mod secret_box;
pub mod secrets;
pub mod subscriptions;

pub use pool::{DatabaseConfig, Pool, connect};
pub use portals::{Plan, Portal};
pub use secret_box::{EncryptionConfig, SecretBox};
pub use subscriptions::{BasicAuth, DeliveryTarget, NewSubscription, Route, Subscription};

/// A database failure. `Unavailable` is transient (retry); the others are the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("invalid database configuration `database.url`: {0}")]
    Config(String),
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Secret(#[from] secret_box::SecretError),
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}
