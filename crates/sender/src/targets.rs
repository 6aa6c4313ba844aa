//! Where a subscription's deliveries go, read through a short-lived cache.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use synap_db::{DbError, DeliveryTarget, Pool, SecretBox};

#[derive(Clone)]
pub struct TargetCache {
    pool: Pool,
    secrets: SecretBox,
    cache: Cache<String, Arc<Option<DeliveryTarget>>>,
}

impl TargetCache {
    pub fn new(pool: Pool, secrets: SecretBox, ttl: Duration) -> Self {
        Self { pool, secrets, cache: Cache::builder().time_to_live(ttl).max_capacity(100_000).build() }
    }

    /// The subscription's target; `None` when it was deleted.
    pub async fn get(&self, subscription_id: &str) -> Result<Arc<Option<DeliveryTarget>>, Arc<DbError>> {
        let (pool, secrets, id) = (self.pool.clone(), self.secrets.clone(), subscription_id.to_owned());
        self.cache
            .try_get_with(subscription_id.to_owned(), async move {
                synap_db::subscriptions::delivery_target(&pool, &secrets, &id).await.map(Arc::new)
            })
            .await
    }
}
