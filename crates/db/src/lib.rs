//! PostgreSQL access for Synap Webhooks.

pub mod api_keys;
pub mod attempt_partitions;
pub mod attempts;
pub mod changes;
pub mod circuits;
pub mod custom_headers;
pub mod delivery_state;
pub mod freshness;
pub mod health;
pub mod keyring;
pub mod migrate;
pub mod pool;
pub mod portal_sessions;
pub mod portals;
pub mod reseal;
pub mod secret_box;
pub mod secrets;
pub mod subscriptions;

pub use api_keys::ApiKey;
pub use attempt_partitions::AttemptsConfig;
pub use changes::{Change, ChangeFeed};
pub use freshness::{Freshness, Stamp};
pub use pool::{DatabaseConfig, Pool, connect, watch_reachable};
pub use portals::{Plan, Portal};
pub use secret_box::{EncryptionConfig, KeyId, SecretBox, Slot};
pub use subscriptions::{BasicAuth, DeliveryTarget, NewSubscription, Route, Subscription};

/// A database failure, sorted by what retrying it can do (see [`synap_runtime::fault`]).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection, or the connection broke: transient.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The server refused the statement for a reason outside the data it was given (a
    /// serialization failure, too many connections, a server shutting down, a table a half-applied
    /// upgrade has not created yet): transient, the same statement succeeds later.
    #[error("database query failed: {0}")]
    Query(String),
    /// The server refused the data itself (SQLSTATE classes 22, data exception, e.g. a NUL in
    /// text, and 23, integrity constraint violation): permanent, the same values fail again.
    #[error("the database refused the data: {0}")]
    Data(String),
    #[error("invalid database configuration `database.url`: {0}")]
    Config(String),
    /// A stored value this code cannot read: permanent.
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    /// A sealed secret the configured keys cannot open: permanent.
    #[error("{0}")]
    Secret(#[from] secret_box::SecretError),
}

impl synap_runtime::Classify for DbError {
    fn fault(&self) -> synap_runtime::Fault {
        use synap_runtime::Fault;
        match self {
            DbError::Unavailable(_) | DbError::Query(_) => Fault::Transient,
            DbError::Data(_) | DbError::Config(_) | DbError::Corrupt(_) | DbError::Secret(_) => {
                Fault::Permanent
            }
        }
    }
}

impl From<tokio_postgres::Error> for DbError {
    /// Keeps the server's message and code: the bare error only says "db error".
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let text = format!("{} ({code})", db.message());
                // SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation).
                if code.starts_with("22") || code.starts_with("23") {
                    DbError::Data(text)
                } else {
                    DbError::Query(text)
                }
            }
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
