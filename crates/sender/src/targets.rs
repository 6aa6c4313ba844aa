//! Where a subscription's deliveries go and how, read through a short-lived cache. While
//! PostgreSQL is unreachable the last values read keep being used, so an outage delays only
//! subscriptions the sender has not seen yet.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use synap_db::delivery_state::DeliveryOptions;
use synap_db::{DbError, DeliveryTarget, Pool, SecretBox};

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
}

impl Target {
    /// Built once per cache load, so that no delivery parses its URL or builds its circuit key.
    pub fn new(target: DeliveryTarget, options: DeliveryOptions) -> Self {
        let parsed = url::Url::parse(&target.url).map_err(|e| e.to_string());
        let endpoint = synap_db::circuits::endpoint(&target.url);
        let circuit = crate::breaker::key(&target.portal_id, &endpoint);
        Self { target, options, parsed, endpoint, circuit }
    }
}

impl Deref for Target {
    type Target = DeliveryTarget;
    fn deref(&self) -> &DeliveryTarget {
        &self.target
    }
}

type Entry = Arc<Option<Target>>;

#[derive(Clone)]
pub struct TargetCache {
    pool: Pool,
    secrets: SecretBox,
    fresh: Cache<String, Entry>,
    last_known: Cache<String, Entry>,
}

impl TargetCache {
    pub fn new(pool: Pool, secrets: SecretBox, ttl: Duration) -> Self {
        Self {
            pool,
            secrets,
            fresh: Cache::builder().time_to_live(ttl).max_capacity(100_000).build(),
            last_known: Cache::builder()
                .time_to_idle(Duration::from_secs(24 * 3600))
                .max_capacity(100_000)
                .build(),
        }
    }

    /// The subscription's target; `None` when it was deleted.
    pub async fn get(&self, subscription_id: &str) -> Result<Entry, Arc<DbError>> {
        // A hit (nearly every delivery) builds no loader: that clones the pool and the key.
        if let Some(entry) = self.fresh.get(subscription_id).await {
            return Ok(entry);
        }
        let (pool, secrets, id) = (self.pool.clone(), self.secrets.clone(), subscription_id.to_owned());
        let read = self
            .fresh
            .entry_by_ref(subscription_id)
            .or_try_insert_with(async move {
                let Some(target) = synap_db::subscriptions::delivery_target(&pool, &secrets, &id).await?
                else {
                    return Ok(Arc::new(None));
                };
                let options = synap_db::delivery_state::options(&pool, &id).await?.unwrap_or_default();
                Ok::<_, DbError>(Arc::new(Some(Target::new(target, options))))
            })
            .await;
        match read {
            Ok(entry) if entry.is_fresh() => {
                let entry = entry.into_value();
                self.last_known.insert(subscription_id.to_owned(), entry.clone()).await;
                Ok(entry)
            }
            Ok(entry) => Ok(entry.into_value()),
            Err(error) => match self.last_known.get(subscription_id).await {
                Some(entry) => {
                    tracing::debug!(subscription_id, %error, "database unavailable; using the last known target");
                    Ok(entry)
                }
                None => Err(error),
            },
        }
    }
}
