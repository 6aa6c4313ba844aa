//! Subscriptions: an endpoint of a portal and the event types it receives.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::secret_box::Slot;
use crate::{DbError, Pool, SecretBox};

/// Where a subscription's basic-auth password is sealed: bound to the subscription's row.
pub fn password_slot(subscription_id: &str) -> Slot {
    Slot::new("subscriptions", "basic_auth_password", subscription_id)
}

/// A subscription as the API shows it: the basic-auth password never leaves the database layer
/// except sealed, or opened for the sender in [`DeliveryTarget`].
#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: String,
    pub portal_id: String,
    pub url: String,
    /// Exact codes and wildcards (`user.*`, `*`), as the caller wrote them.
    pub event_types: Vec<String>,
    /// The CEL filter (crates/filter); `None`: every event of its types.
    pub filter: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub basic_auth_username: Option<String>,
    /// Why the system turned it off; `None` while enabled or when a caller paused it.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// How the sender delivers to it.
    pub options: crate::delivery_state::DeliveryOptions,
}

/// Whether a subscription receives events, and who turned it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    /// Turned off by a caller.
    Paused,
    /// Turned off by the system (see `disabled_reason`).
    Disabled,
}

const COLUMNS: &str = "id, portal_id, url, event_types, filter, description, enabled, \
                       basic_auth_username, disabled_reason, created_at, updated_at, \
                       ordered, max_in_flight, rate_limit_per_sec, timeout_ms, omit_traceparent";

impl Subscription {
    fn from_row(row: &Row) -> Self {
        Subscription {
            id: row.get("id"),
            portal_id: row.get("portal_id"),
            url: row.get("url"),
            event_types: row.get("event_types"),
            filter: row.get("filter"),
            description: row.get("description"),
            enabled: row.get("enabled"),
            basic_auth_username: row.get("basic_auth_username"),
            disabled_reason: row.get("disabled_reason"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
            options: crate::delivery_state::DeliveryOptions::from_row(row),
        }
    }

    pub fn state(&self) -> State {
        match (self.enabled, &self.disabled_reason) {
            (true, _) => State::Active,
            (false, None) => State::Paused,
            (false, Some(_)) => State::Disabled,
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
    pub filter: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub basic_auth: Option<BasicAuth>,
    /// The client's idempotency key, unique per portal.
    pub request_id: Option<String>,
    /// How its deliveries are signed.
    pub signature_scheme: crate::secrets::Scheme,
    /// Extra request headers, already checked ([`crate::custom_headers::check`]).
    pub headers: Vec<crate::custom_headers::CustomHeader>,
}

/// The result of [`create`].
#[derive(Debug)]
pub enum Creation {
    /// Created now, or a replay within the window: the subscription and its current secret.
    Created(Box<Created>),
    /// The request id was first used longer ago than the replay window: nothing is created and
    /// the signing secret is not returned again (it was shown once, to the first call, and a
    /// replay long after is more likely a stolen or reused request than a retry).
    Expired { subscription_id: String, created_at: DateTime<Utc> },
}

/// A subscription and its signing secret in plain text, as a create returns them.
#[derive(Debug)]
pub struct Created {
    pub subscription: Subscription,
    /// The current v1 signing secret, in plain text; `None` when the subscription signs with v1a
    /// (its `whsk_` key never leaves Synap; the customer verifies with the public key).
    pub signing_secret: Option<String>,
    /// True when the request id was used before: nothing was created.
    pub replayed: bool,
}

/// Creates the subscription with a fresh signing secret, returned in plain text. When the
/// portal already used `new.request_id` less than `replay_window` ago, returns that subscription
/// (and its current secret) instead, also when two such calls race; when longer ago,
/// [`Creation::Expired`]. The request id stays on its subscription (bounded by the subscriptions,
/// not by traffic), so a late replay never creates a second one.
pub async fn create(
    pool: &Pool,
    secrets: &SecretBox,
    new: &NewSubscription,
    replay_window: chrono::Duration,
) -> Result<Creation, DbError> {
    let id = format!("sub_{}", uuid::Uuid::now_v7().simple());
    let username = new.basic_auth.as_ref().map(|a| a.username.as_str());
    let sealed = new.basic_auth.as_ref().map(|a| secrets.seal(a.password.as_bytes(), &password_slot(&id)));
    let mut client = pool.get().await?;
    // The signing secret's insert below touches the sealing key's canary in this transaction.
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            &format!(
                "INSERT INTO subscriptions
                    (id, portal_id, url, event_types, description, enabled,
                     basic_auth_username, basic_auth_password, request_id, filter)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (portal_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
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
                &new.request_id,
                &new.filter,
            ],
        )
        .await?;
    let Some(row) = row else {
        // The request id was used before (possibly by a call that committed a moment ago).
        drop(tx);
        drop(client);
        let request_id = new.request_id.as_deref().unwrap_or_default();
        return replay(pool, secrets, &new.portal_id, request_id, replay_window).await;
    };
    let key = crate::secrets::generate_key(new.signature_scheme);
    crate::secrets::insert(&tx, secrets, &id, &key).await?;
    if !new.headers.is_empty() {
        crate::custom_headers::replace(&tx, secrets, &id, &new.headers).await?;
    }
    tx.commit().await?;
    let signing_secret = (key.scheme == crate::secrets::Scheme::V1).then_some(key.secret);
    let created = Created { subscription: Subscription::from_row(&row), signing_secret, replayed: false };
    Ok(Creation::Created(Box::new(created)))
}

async fn replay(
    pool: &Pool,
    secrets: &SecretBox,
    portal_id: &str,
    request_id: &str,
    replay_window: chrono::Duration,
) -> Result<Creation, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            &format!("SELECT {COLUMNS} FROM subscriptions WHERE portal_id = $1 AND request_id = $2"),
            &[&portal_id, &request_id],
        )
        .await?;
    drop(client);
    let subscription = Subscription::from_row(&row);
    if subscription.created_at < Utc::now() - replay_window {
        return Ok(Creation::Expired {
            subscription_id: subscription.id,
            created_at: subscription.created_at,
        });
    }
    let current =
        crate::secrets::valid(pool, secrets, &subscription.id).await?.into_iter().next().ok_or_else(
            || DbError::Corrupt(format!("subscription {} has no signing secret", subscription.id)),
        )?;
    let signing_secret = match current {
        crate::secrets::SigningKey::V1(secret) => Some(secret),
        crate::secrets::SigningKey::V1a(_) => None,
    };
    Ok(Creation::Created(Box::new(Created { subscription, signing_secret, replayed: true })))
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<Subscription>, DbError> {
    let client = pool.get().await?;
    let row = client.query_opt(&format!("SELECT {COLUMNS} FROM subscriptions WHERE id = $1"), &[&id]).await?;
    Ok(row.as_ref().map(Subscription::from_row))
}

/// Where a page of [`list`] starts: after this (created_at, id) in newest-first order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// Which subscriptions [`list`] returns.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `None`: every portal.
    pub portal_id: Option<String>,
    /// An exact code: the subscriptions that receive it (listing it, its group's wildcard or
    /// `*`). A wildcard: the subscriptions that list that wildcard.
    pub event_type: Option<String>,
    pub state: Option<State>,
}

/// One page of subscriptions, newest first, and the cursor of the next page when there is one.
pub async fn list(
    pool: &Pool,
    filter: &Filter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<(Vec<Subscription>, Option<Cursor>), DbError> {
    let (enabled, system_disabled) = match filter.state {
        None => (None, None),
        Some(State::Active) => (Some(true), None),
        Some(State::Paused) => (Some(false), Some(false)),
        Some(State::Disabled) => (Some(false), Some(true)),
    };
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM subscriptions
                 WHERE ($1::text IS NULL OR portal_id = $1)
                   AND ($2::text IS NULL OR $2 = ANY (event_types)
                        OR (strpos($2, '*') = 0
                            AND (split_part($2, '.', 1) || '.*' = ANY (event_types) OR '*' = ANY (event_types))))
                   AND ($3::bool IS NULL OR enabled = $3)
                   AND ($4::bool IS NULL OR (disabled_reason IS NOT NULL) = $4)
                   AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
                 ORDER BY created_at DESC, id DESC
                 LIMIT $7"
            ),
            &[
                &filter.portal_id,
                &filter.event_type,
                &enabled,
                &system_disabled,
                &after.map(|c| c.created_at),
                &after.map(|c| c.id.as_str()).unwrap_or_default(),
                // One more than asked tells whether another page follows.
                &(limit as i64 + 1),
            ],
        )
        .await?;
    let mut page: Vec<Subscription> = rows.iter().map(Subscription::from_row).collect();
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|s| Cursor { created_at: s.created_at, id: s.id.clone() })
    } else {
        None
    };
    Ok((page, next))
}

/// A partial update: `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `Some(None)` removes the filter.
    pub filter: Option<Option<String>>,
    pub description: Option<String>,
    /// `Some(None)` removes basic auth.
    pub basic_auth: Option<Option<BasicAuth>>,
    /// `Some(true)` also clears a system `disabled_reason`.
    pub enabled: Option<bool>,
    /// Replaces every extra request header (`Some(vec![])` removes them); already checked.
    pub headers: Option<Vec<crate::custom_headers::CustomHeader>>,
}

/// Applies `changes`; `None` when the subscription does not exist.
pub async fn update(
    pool: &Pool,
    secrets: &SecretBox,
    id: &str,
    changes: &Changes,
) -> Result<Option<Subscription>, DbError> {
    let set_auth = changes.basic_auth.is_some();
    let auth = changes.basic_auth.as_ref().and_then(Option::as_ref);
    let username = auth.map(|a| a.username.as_str());
    let sealed = auth.map(|a| secrets.seal(a.password.as_bytes(), &password_slot(id)));
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if sealed.is_some() {
        crate::keyring::touch(&tx, secrets).await?;
    }
    let row = tx
        .query_opt(
            &format!(
                "UPDATE subscriptions SET
                    url = COALESCE($2, url),
                    event_types = COALESCE($3, event_types),
                    description = COALESCE($4, description),
                    basic_auth_username = CASE WHEN $5 THEN $6 ELSE basic_auth_username END,
                    basic_auth_password = CASE WHEN $5 THEN $7 ELSE basic_auth_password END,
                    enabled = COALESCE($8, enabled),
                    disabled_reason = CASE WHEN $8 IS NULL THEN disabled_reason ELSE NULL END,
                    filter = CASE WHEN $9 THEN $10 ELSE filter END,
                    updated_at = now()
                 WHERE id = $1
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &changes.url,
                &changes.event_types,
                &changes.description,
                &set_auth,
                &username,
                &sealed,
                &changes.enabled,
                &changes.filter.is_some(),
                &changes.filter.as_ref().and_then(Option::as_deref),
            ],
        )
        .await?;
    if let (Some(headers), Some(_)) = (&changes.headers, &row) {
        crate::custom_headers::replace(&tx, secrets, id, headers).await?;
    }
    tx.commit().await?;
    Ok(row.as_ref().map(Subscription::from_row))
}

/// Turns a subscription off on the system's behalf (e.g. its endpoint answered 410 Gone),
/// recording why; a caller's resume turns it on again. False when it does not exist.
pub async fn disable(pool: &Pool, id: &str, reason: &str) -> Result<bool, DbError> {
    let client = pool.get().await?;
    let n = client
        .execute(
            "UPDATE subscriptions SET enabled = FALSE, disabled_reason = $2, updated_at = now() WHERE id = $1",
            &[&id, &reason],
        )
        .await?;
    Ok(n > 0)
}

/// Deletes the subscription and its secrets; false when it did not exist.
pub async fn delete(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let client = pool.get().await?;
    Ok(client.execute("DELETE FROM subscriptions WHERE id = $1", &[&id]).await? > 0)
}

/// What the router needs of one enabled subscription.
#[derive(Clone, Debug)]
pub struct Route {
    pub subscription_id: String,
    /// Exact codes and wildcards (`user.*`, `*`): see `synap_contract::pattern`.
    pub event_types: Vec<String>,
    /// The filter, compiled when the routes are read (once per distinct text per process);
    /// `None`: every event of its types. A stored text that does not compile (control checks
    /// every filter it stores, so only a hand-written row or a release with other limits can
    /// hold one) is kept as its refusal: the router delivers nothing through it, and says why.
    pub filter: Option<Result<Arc<synap_filter::Filter>, synap_filter::Invalid>>,
}

/// A portal's enabled subscriptions, for routing.
pub async fn enabled_routes(pool: &Pool, portal_id: &str) -> Result<Vec<Route>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, event_types, filter FROM subscriptions WHERE portal_id = $1 AND enabled",
            &[&portal_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Route {
            subscription_id: row.get(0),
            event_types: row.get(1),
            filter: row.get::<_, Option<String>>(2).map(|text| synap_filter::compiled(&text)),
        })
        .collect())
}

/// What the sender needs to deliver to one subscription, with its secrets opened.
#[derive(Clone, Debug)]
pub struct DeliveryTarget {
    pub subscription_id: String,
    pub portal_id: String,
    pub url: String,
    pub enabled: bool,
    pub basic_auth: Option<BasicAuth>,
    /// Valid signing keys, current first.
    pub signing_keys: Vec<crate::secrets::SigningKey>,
    /// Extra request headers, secret values opened.
    pub headers: Vec<crate::custom_headers::CustomHeader>,
}

/// Everything the sender reads about a subscription before its first delivery: the target, its
/// delivery options, and when the next of its signing secrets expires (a cache of the target
/// must not outlive it).
#[derive(Clone, Debug)]
pub struct SendingState {
    pub target: DeliveryTarget,
    pub options: crate::delivery_state::DeliveryOptions,
    pub secret_expires: Option<DateTime<Utc>>,
}

/// Reads a subscription's [`SendingState`] in one round trip: three prepared statements
/// pipelined on one connection (with 10,000 subscriptions a sender makes thousands of these
/// first reads, which as five queries each cost PostgreSQL and the sender more than the
/// deliveries themselves). `None` when the subscription does not exist.
pub async fn sending_state(
    pool: &Pool,
    secrets: &SecretBox,
    id: &str,
) -> Result<Option<SendingState>, DbError> {
    const SUBSCRIPTION: &str = "SELECT id, portal_id, url, enabled, basic_auth_username, basic_auth_password,
                ordered, max_in_flight, rate_limit_per_sec, timeout_ms, omit_traceparent,
                (SELECT min(expires_at) FROM subscription_secrets
                 WHERE subscription_id = $1 AND expires_at > now()) AS secret_expires
         FROM subscriptions WHERE id = $1";
    let client = pool.get().await?;
    let (subscription, keys, headers) = tokio::try_join!(
        client.prepare_cached(SUBSCRIPTION),
        client.prepare_cached(crate::secrets::VALID_SQL),
        client.prepare_cached(crate::custom_headers::OPENED_SQL),
    )?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
    let (row, keys, headers) = tokio::try_join!(
        client.query_opt(&subscription, &params),
        client.query(&keys, &params),
        client.query(&headers, &params),
    )?;
    drop(client);
    let Some(row) = row else { return Ok(None) };
    let username: Option<String> = row.get("basic_auth_username");
    let sealed: Option<Vec<u8>> = row.get("basic_auth_password");
    let basic_auth = match (username, sealed) {
        (Some(username), Some(sealed)) => {
            let password = String::from_utf8(secrets.open(&sealed, &password_slot(id))?)
                .map_err(|_| DbError::Corrupt("basic-auth password is not UTF-8".into()))?;
            Some(BasicAuth { username, password })
        }
        (Some(username), None) => Some(BasicAuth { username, password: String::new() }),
        _ => None,
    };
    let target = DeliveryTarget {
        subscription_id: row.get("id"),
        portal_id: row.get("portal_id"),
        url: row.get("url"),
        enabled: row.get("enabled"),
        basic_auth,
        signing_keys: crate::secrets::opened_keys(&keys, secrets, id)?,
        headers: crate::custom_headers::opened_rows(&headers, secrets, id)?,
    };
    Ok(Some(SendingState {
        target,
        options: crate::delivery_state::DeliveryOptions::from_row(&row),
        secret_expires: row.get("secret_expires"),
    }))
}
