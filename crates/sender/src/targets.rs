//! Where a subscription's deliveries go and how, cached until PostgreSQL announces a change to
//! the subscription or its secrets ([`synap_db::changes`]), or a signing secret in it expires.
//! While PostgreSQL is unreachable the last values read keep being used, so an outage delays
//! only subscriptions the sender has not seen yet.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use reqwest::header::{HeaderName, HeaderValue};
use synap_db::custom_headers::CustomHeader;
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
    /// The signing keys made ready to sign, current first. The opened keys themselves are not
    /// kept ([`Target::new`] takes them out of `target`): one copy of key material, not two.
    pub signers: Vec<crate::sign::Signer>,
    /// The request headers that do not change from one attempt to the next
    /// ([`crate::attempt::fixed_headers`]).
    pub fixed_headers: Box<[(HeaderName, HeaderValue)]>,
}

impl Target {
    /// Built once per cache load, so that no delivery parses its URL, builds its circuit key,
    /// decodes a signing secret or encodes its credentials.
    pub fn new(mut target: DeliveryTarget, options: DeliveryOptions) -> Self {
        let parsed = url::Url::parse(&target.url).map_err(|e| e.to_string());
        let endpoint = synap_db::circuits::endpoint(&target.url);
        let circuit = crate::breaker::key(&target.portal_id, &endpoint);
        let signers = std::mem::take(&mut target.signing_keys).iter().map(crate::sign::Signer::new).collect();
        let fixed_headers = crate::attempt::fixed_headers(&target);
        Self { target, options, parsed, endpoint, circuit, signers, fixed_headers }
    }

    /// About how many bytes the target holds: the struct, its text, signers and headers, counted
    /// from their lengths. What the cache weighs it by ([`weight`]).
    pub fn size(&self) -> usize {
        let t = &self.target;
        let text = t.subscription_id.len()
            + t.portal_id.len()
            + t.url.len()
            + t.basic_auth.as_ref().map_or(0, |auth| auth.username.len() + auth.password.len())
            + self.parsed.as_ref().map_or_else(String::len, |url| url.as_str().len())
            + self.endpoint.len()
            + self.circuit.len();
        let custom: usize =
            t.headers.iter().map(|h| size_of::<CustomHeader>() + h.name.len() + h.value.len()).sum();
        let fixed: usize = self
            .fixed_headers
            .iter()
            .map(|(name, value)| size_of::<(HeaderName, HeaderValue)>() + name.as_str().len() + value.len())
            .sum();
        size_of::<Self>() + text + custom + fixed + self.signers.len() * size_of::<crate::sign::Signer>()
    }
}

impl Deref for Target {
    type Target = DeliveryTarget;
    fn deref(&self) -> &DeliveryTarget {
        &self.target
    }
}

type Entry = Arc<Option<Target>>;

/// What a cache entry costs beyond its target: the key's copy, the entry's `Arc` and stamps, and
/// the cache's own bookkeeping (a heap profile counted about 240 bytes of it per entry).
const ENTRY_OVERHEAD: usize = 256;

/// An entry's weight in bytes, by which both caches are bounded.
fn weight(subscription_id: &str, entry: &Entry) -> u32 {
    let target = entry.as_ref().as_ref().map_or(0, Target::size);
    u32::try_from(ENTRY_OVERHEAD + subscription_id.len() + target).unwrap_or(u32::MAX)
}

/// A cache of at most `budget` bytes of entries, as [`weight`] counts them.
fn bounded<V: Clone + Send + Sync + 'static>(
    budget: u64,
    entry: fn(&V) -> &Entry,
) -> moka::future::CacheBuilder<String, V, Cache<String, V>> {
    Cache::builder().weigher(move |id: &String, value: &V| weight(id, entry(value))).max_capacity(budget)
}

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
    /// notification ever be lost. Each of its two maps holds at most `budget` bytes of targets
    /// ([`weight`]); they share their entries, so together they rarely hold more.
    pub fn new(
        pool: Pool,
        secrets: SecretBox,
        ttl: Duration,
        budget: u64,
        changes: &ChangeFeed,
        shutdown: &CancellationToken,
    ) -> Self {
        let fresh = bounded(budget, |cached: &Cached| &cached.entry).time_to_live(ttl).build();
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
            last_known: bounded(budget, |entry: &Entry| entry)
                .time_to_idle(Duration::from_secs(24 * 3600))
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

#[cfg(test)]
mod tests {
    use super::*;
    use synap_db::secrets::SigningKey;

    fn target(url: &str, headers: Vec<CustomHeader>) -> Target {
        let target = DeliveryTarget {
            subscription_id: "sub_0123456789abcdefghijklmn".into(),
            portal_id: "portal_0123456789abcdefghij".into(),
            url: url.into(),
            enabled: true,
            basic_auth: None,
            signing_keys: vec![SigningKey::V1("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into())],
            headers,
        };
        Target::new(target, DeliveryOptions::default())
    }

    #[test]
    fn a_target_weighs_what_it_holds() {
        let bare = target("https://example.com/hook", vec![]);
        let long_url = format!("https://example.com/{}", "a".repeat(2000));
        let value = "v".repeat(500);
        let headers = (0..3)
            .map(|i| CustomHeader { name: format!("x-h{i}"), value: value.clone(), secret: false })
            .collect();
        let large = target(&long_url, headers);
        // The URL is held twice (as text and parsed), each header's value twice (as read and
        // as the request will carry it).
        assert!(large.size() >= bare.size() + 2 * 2000 + 2 * 3 * 500, "{} vs {}", large.size(), bare.size());
        assert!(bare.size() > size_of::<Target>(), "text and signer count too");
        let deleted: Entry = Arc::new(None);
        assert_eq!(
            weight("sub_1", &deleted) as usize,
            ENTRY_OVERHEAD + 5,
            "a deleted subscription costs its key"
        );
    }

    #[tokio::test]
    async fn the_caches_hold_no_more_than_their_budget() {
        const BUDGET: u64 = 64 * 1024;
        let cache: Cache<String, Entry> = bounded(BUDGET, |entry: &Entry| entry).build();
        let one: Entry = Arc::new(Some(target("https://example.com/hook", vec![])));
        let each = u64::from(weight("sub_0000", &one));
        for i in 0..1_000 {
            cache.insert(format!("sub_{i:04}"), one.clone()).await;
        }
        cache.run_pending_tasks().await;
        assert!(cache.weighted_size() <= BUDGET, "{} bytes over {BUDGET}", cache.weighted_size());
        // Bounded, not emptied: it holds about as many as fit.
        let held = cache.entry_count();
        assert!(held < 1_000 && held >= BUDGET / each / 2, "{held} entries of {each} bytes");

        // A target larger than the whole budget is still read and used, only not kept.
        let huge = format!("https://example.com/{}", "a".repeat(BUDGET as usize));
        let read = cache
            .entry_by_ref("sub_huge")
            .or_try_insert_with(async {
                Ok::<_, std::convert::Infallible>(Arc::new(Some(target(&huge, vec![]))))
            })
            .await
            .unwrap();
        assert!(read.value().as_ref().as_ref().is_some_and(|t| t.url == huge));
        cache.run_pending_tasks().await;
        assert!(cache.get("sub_huge").await.is_none(), "not kept");
        assert!(cache.weighted_size() <= BUDGET);
    }
}
