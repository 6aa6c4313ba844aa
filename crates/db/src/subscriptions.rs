//! Subscriptions: an endpoint of a portal and the event types it receives.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::{DbError, Pool, SecretBox};

/// A subscription as the API shows it: the basic-auth password never leaves the database layer
/// except sealed, or opened for the sender in [`DeliveryTarget`].
#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: String,
    pub portal_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub basic_auth_username: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, portal_id, url, event_types, description, enabled, \
                       basic_auth_username, created_at, updated_at";

impl Subscription {
    fn from_row(row: &Row) -> Self {
        Subscription {
            id: row.get("id"),
            portal_id: row.get("portal_id"),
            url: row.get("url"),
            event_types: row.get("event_types"),
            description: row.get("description"),
            enabled: row.get("enabled"),
            basic_auth_username: row.get("basic_auth_username"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        }
    }
}

/// Credentials for HTTP basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct NewSubscription {
    pub portal_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub basic_auth: Option<BasicAuth>,
}

/// Creates the subscription with a fresh signing secret, returned in plain text this once.
pub async fn create(
    pool: &Pool,
    secrets: &SecretBox,
    new: &NewSubscription,
) -> Result<(Subscription, String), DbError> {
    let id = format!("sub_{}", uuid::Uuid::now_v7().simple());
    let username = new.basic_auth.as_ref().map(|a| a.username.as_str());
    let sealed = new.basic_auth.as_ref().map(|a| secrets.seal(a.password.as_bytes()));
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO subscriptions
                    (id, portal_id, url, event_types, description, enabled,
                     basic_auth_username, basic_auth_password)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &new.portal_id,
                &new.url,
                &new.event_types,
                &new.description,
                &new.enabled,
                &username,
                &sealed,
            ],
        )
        .await?;
    let signing_secret = crate::secrets::generate();
    crate::secrets::insert(&tx, secrets, &id, &signing_secret).await?;
    tx.commit().await?;
    Ok((Subscription::from_row(&row), signing_secret))
}

/// A portal's subscriptions, newest first.
pub async fn list_for_portal(pool: &Pool, portal_id: &str) -> Result<Vec<Subscription>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM subscriptions WHERE portal_id = $1
                 ORDER BY created_at DESC, id DESC"
            ),
            &[&portal_id],
        )
        .await?;
    Ok(rows.iter().map(Subscription::from_row).collect())
}

/// What the router needs of one enabled subscription.
#[derive(Clone, Debug)]
pub struct Route {
    pub subscription_id: String,
    pub event_types: Vec<String>,
}

/// A portal's enabled subscriptions, for routing.
pub async fn enabled_routes(pool: &Pool, portal_id: &str) -> Result<Vec<Route>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query("SELECT id, event_types FROM subscriptions WHERE portal_id = $1 AND enabled", &[&portal_id])
        .await?;
    Ok(rows.iter().map(|row| Route { subscription_id: row.get(0), event_types: row.get(1) }).collect())
}

/// What the sender needs to deliver to one subscription, with its secrets opened.
#[derive(Clone, Debug)]
pub struct DeliveryTarget {
    pub subscription_id: String,
    pub portal_id: String,
    pub url: String,
    pub enabled: bool,
    pub basic_auth: Option<BasicAuth>,
    /// Valid signing secrets (`whsec_…`), current first.
    pub signing_secrets: Vec<String>,
}

pub async fn delivery_target(
    pool: &Pool,
    secrets: &SecretBox,
    id: &str,
) -> Result<Option<DeliveryTarget>, DbError> {
    let client = pool.get().await?;
    let Some(row) = client
        .query_opt(
            "SELECT id, portal_id, url, enabled, basic_auth_username, basic_auth_password
             FROM subscriptions WHERE id = $1",
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let username: Option<String> = row.get("basic_auth_username");
    let sealed: Option<Vec<u8>> = row.get("basic_auth_password");
    let basic_auth = match (username, sealed) {
        (Some(username), Some(sealed)) => {
            let password = String::from_utf8(secrets.open(&sealed)?)
                .map_err(|_| DbError::Corrupt("basic-auth password is not UTF-8".into()))?;
            Some(BasicAuth { username, password })
        }
        (Some(username), None) => Some(BasicAuth { username, password: String::new() }),
        _ => None,
    };
    drop(client);
    let signing_secrets = crate::secrets::valid(pool, secrets, id).await?;
    Ok(Some(DeliveryTarget {
        subscription_id: row.get("id"),
        portal_id: row.get("portal_id"),
        url: row.get("url"),
        enabled: row.get("enabled"),
        basic_auth,
        signing_secrets,
    }))
}
