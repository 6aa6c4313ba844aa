//! Where a subscription's deliveries go and how, cached until PostgreSQL announces a change to
//! the subscription or its secrets ([`synap_db::changes`]), or a signing secret in it expires.
//! While PostgreSQL is unreachable the last values read keep being used, so an outage delays
//! only subscriptions the sender has not seen yet.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use synap_db::delivery_state::DeliveryOptions;
use synap_db::{Change, ChangeFeed, DbError, DeliveryTarget, Freshness, Pool, SecretBox, Stamp};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A subscription's target and delivery options.
#[derive(Clone, Debug)]
pub struct Target {
    pub target: DeliveryTarget,
    pub options: DeliveryOptions,
    /// The URL, parsed once per cache load rather than on every attempt; `Err` holds why it
    /// does not parse (stored URLs were checked at creation, so only a damaged row lands here).
    pub parsed: Result<url::Url, String>,
    /// The endpoint of the URL, as circuits name it ([`synap_db::circuits::endpoint`]).
    pub endpoint: String,
    /// The circuit breaker's key: the portal's circuit for the endpoint ([`crate::breaker::key`]).
    pub circuit: String,
    /// The signing keys made ready to sign, current first.
    pub signers: Vec<crate::sign::Signer>,
    /// The request headers that do not change from one attempt to the next
    /// ([`crate::attempt::fixed_headers`]).
    pub fixed_headers: reqwest::header::HeaderMap,
}

impl Target {
    /// Built once per cache load, so that no delivery parses its URL, builds its circuit key,
    /// decodes a signing secret or encodes its credentials.
    pub fn new(target: DeliveryTarget, options: DeliveryOptions) -> Self {
        let parsed = url::Url::parse(&target.url).map_err(|e| e.to_string());
        let endpoint = synap_db::circuits::endpoint(&target.url);
        let circuit = crate::breaker::key(&target.portal_id, &endpoint);
        let signers = target.signing_keys.iter().map(crate::sign::Signer::new).collect();
        let fixed_headers = crate::attempt::fixed_headers(&target);
        Self { target, options, parsed, endpoint, circuit, signers, fixed_headers }
    }
}

impl Deref for Target {
    type Target = DeliveryTarget;
    fn deref(&self) -> &DeliveryTarget {
        &self.target
    }
}

type Entry = Arc<Option<Target>>;

/// A cache entry, when its read began, and when a signing secret in it expires (the one change
/// no write announces: a rotated-out secret simply stops being valid).
#[derive(Clone)]
struct Cached {
    stamp: Stamp,
    secret_expires: Option<Instant>,
    entry: Entry,
}

#[derive(Clone)]
pub struct TargetCache {
    pool: Pool,
    secrets: SecretBox,
    fresh: Cache<String, Cached>,
    last_known: Cache<String, Entry>,
    freshness: Arc<Freshness>,
}

impl TargetCache {
    /// A cache that follows `changes` until `shutdown`; `ttl` is the safety net should a
    /// notification ever be lost.
    pub fn new(
        pool: Pool,
        secrets: SecretBox,
        ttl: Duration,
        changes: &ChangeFeed,
        shutdown: &CancellationToken,
    ) -> Self {
        let fresh: Cache<String, Cached> = Cache::builder().time_to_live(ttl).max_capacity(100_000).build();
        let freshness = Arc::new(Freshness::new(changes.clone()));
        let (follower, entries) = (freshness.clone(), fresh.clone());
        changes.follow(shutdown.clone(), move |change| match change {
            Change::Subscription(subscription_id) => follower.changed(&subscription_id),
            // The sender caches nothing per portal.
            Change::Portal(_) => {}
            Change::Unknown => {
                follower.changed_all();
                entries.invalidate_all();
            }
        });
        Self {
            pool,
            secrets,
            fresh,
            last_known: Cache::builder()
                .time_to_idle(Duration::from_secs(24 * 3600))
                .max_capacity(100_000)
                .build(),
            freshness,
        }
    }

    fn is_current(&self, subscription_id: &str, cached: &Cached) -> bool {
        self.freshness.is_current(subscription_id, &cached.stamp)
            && cached.secret_expires.is_none_or(|at| Instant::now() < at)
    }

    /// The subscription's target; `None` when it was deleted.
    pub async fn get(&self, subscription_id: &str) -> Result<Entry, Arc<DbError>> {
        // A hit (nearly every delivery) builds no loader: that clones the pool and the key.
        if let Some(hit) = self.fresh.get(subscription_id).await {
            if self.is_current(subscription_id, &hit) {
                return Ok(hit.entry);
            }
            self.fresh.invalidate(subscription_id).await;
        }
        match self.read(subscription_id).await {
            Ok(read) if self.is_current(subscription_id, &read) => Ok(read.entry),
            // A change committed while it was being read: read once more; that read began after
            // the change, so it holds it.
            Ok(_) => {
                self.fresh.invalidate(subscription_id).await;
                Ok(self.read(subscription_id).await?.entry)
            }
            Err(error) => Err(error),
        }
    }

    /// Reads through the cache (concurrent reads of one subscription share one query); while
    /// PostgreSQL fails, the last target read stands in.
    async fn read(&self, subscription_id: &str) -> Result<Cached, Arc<DbError>> {
        let (pool, secrets, id) = (self.pool.clone(), self.secrets.clone(), subscription_id.to_owned());
        let stamp = self.freshness.stamp();
        let read = self
            .fresh
            .entry_by_ref(subscription_id)
            .or_try_insert_with(async move {
                let Some(state) = synap_db::subscriptions::sending_state(&pool, &secrets, &id).await? else {
                    return Ok(Cached { stamp, secret_expires: None, entry: Arc::new(None) });
                };
                let secret_expires = state
                    .secret_expires
                    .map(|at| Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or_default());
                let entry = Arc::new(Some(Target::new(state.target, state.options)));
                Ok::<_, DbError>(Cached { stamp, secret_expires, entry })
            })
            .await;
        match read {
            Ok(entry) if entry.is_fresh() => {
                let cached = entry.into_value();
                self.last_known.insert(subscription_id.to_owned(), cached.entry.clone()).await;
                Ok(cached)
            }
            Ok(entry) => Ok(entry.into_value()),
            Err(error) => match self.last_known.get(subscription_id).await {
                Some(entry) => {
                    tracing::debug!(subscription_id, %error, "database unavailable; using the last known target");
                    // Stamped now, not stored: the next delivery tries the database again.
                    Ok(Cached { stamp: self.freshness.stamp(), secret_expires: None, entry })
                }
                None => Err(error),
            },
        }
    }
}
