//! Which subscriptions an event goes to: the portal's enabled subscriptions for its type,
//! subject to the plan rules of EVENTS.md §1.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use synap_contract::{EventType, PlanRefusal};
use synap_db::{Change, ChangeFeed, Freshness, Plan, Pool, Route, Stamp};
use tokio_util::sync::CancellationToken;

/// A portal's routing state as of one database read.
#[derive(Debug, Default)]
pub struct PortalRoutes {
    /// `None` when the portal does not exist.
    pub plan: Option<Plan>,
    pub features: Vec<String>,
    pub routes: Vec<Route>,
}

/// Why an event matched no subscription, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    UnknownPortal,
    /// The plan rule (EVENTS.md §1) refuses the type to this portal.
    Plan(PlanRefusal),
}

impl PortalRoutes {
    /// The subscriptions that receive an event of type `ty`, or why there are none by rule.
    pub fn matches(&self, ty: EventType) -> Result<Vec<&str>, Skip> {
        let plan = self.plan.ok_or(Skip::UnknownPortal)?;
        synap_contract::plan::may_receive(plan, &self.features, ty).map_err(Skip::Plan)?;
        Ok(self
            .routes
            .iter()
            .filter(|r| r.event_types.iter().any(|t| t == ty.code()))
            .map(|r| r.subscription_id.as_str())
            .collect())
    }
}

/// Routing state per portal, cached until a change to the portal or one of its subscriptions
/// is announced ([`synap_db::changes`]); the TTL is only a safety net.
#[derive(Clone)]
pub struct RouteCache {
    pool: Pool,
    cache: Cache<String, Cached>,
    freshness: Arc<Freshness>,
}

/// A cache entry and when its read began.
#[derive(Clone)]
struct Cached {
    stamp: Stamp,
    routes: Arc<PortalRoutes>,
}

impl RouteCache {
    /// A cache that follows `changes` until `shutdown`.
    pub fn new(
        pool: Pool,
        ttl: Duration,
        capacity: u64,
        changes: &ChangeFeed,
        shutdown: &CancellationToken,
    ) -> Self {
        let cache: Cache<String, Cached> = Cache::builder().time_to_live(ttl).max_capacity(capacity).build();
        let freshness = Arc::new(Freshness::new(changes.clone()));
        let (follower, entries) = (freshness.clone(), cache.clone());
        changes.follow(shutdown.clone(), move |change| match change {
            Change::Portal(portal_id) => follower.changed(&portal_id),
            // A subscription's change names its portal too (migration 80).
            Change::Subscription(_) => {}
            Change::Unknown => {
                follower.changed_all();
                entries.invalidate_all();
            }
        });
        Self { pool, cache, freshness }
    }

    pub async fn get(&self, portal_id: &str) -> Result<Arc<PortalRoutes>, Arc<synap_db::DbError>> {
        // A hit (nearly every event) builds no loader.
        if let Some(hit) = self.cache.get(portal_id).await {
            if self.freshness.is_current(portal_id, &hit.stamp) {
                return Ok(hit.routes);
            }
            self.cache.invalidate(portal_id).await;
        }
        let read = self.read(portal_id).await?;
        if self.freshness.is_current(portal_id, &read.stamp) {
            return Ok(read.routes);
        }
        // A change committed while it was being read: read once more; that read began after the
        // change, so it holds it (a further change marks the entry again for the next event).
        self.cache.invalidate(portal_id).await;
        Ok(self.read(portal_id).await?.routes)
    }

    /// Reads through the cache: concurrent reads of one portal share one query.
    async fn read(&self, portal_id: &str) -> Result<Cached, Arc<synap_db::DbError>> {
        let pool = self.pool.clone();
        let id = portal_id.to_owned();
        let stamp = self.freshness.stamp();
        self.cache
            .try_get_with(portal_id.to_owned(), async move {
                let routes = match synap_db::portals::get(&pool, &id).await? {
                    None => PortalRoutes::default(),
                    Some(portal) => {
                        let routes = synap_db::subscriptions::enabled_routes(&pool, &id).await?;
                        PortalRoutes { plan: Some(portal.plan), features: portal.features, routes }
                    }
                };
                Ok(Cached { stamp, routes: Arc::new(routes) })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal(plan: Plan, features: &[&str]) -> PortalRoutes {
        PortalRoutes {
            plan: Some(plan),
            features: features.iter().map(|f| f.to_string()).collect(),
            routes: vec![
                Route {
                    subscription_id: "a".into(),
                    event_types: vec!["attempt.completed".into(), "store.purchase".into()],
                },
                Route { subscription_id: "b".into(), event_types: vec!["user.updated".into()] },
            ],
        }
    }

    #[test]
    fn matches_by_type() {
        let p = portal(Plan::Pro, &[]);
        assert_eq!(p.matches(EventType::AttemptCompleted), Ok(vec!["a"]));
        assert_eq!(p.matches(EventType::UserUpdated), Ok(vec!["b"]));
        assert_eq!(p.matches(EventType::InviteSent), Ok(vec![]));
    }

    #[test]
    fn plan_rules() {
        assert!(matches!(
            portal(Plan::Starter, &[]).matches(EventType::AttemptCompleted),
            Err(Skip::Plan(PlanRefusal::BelowPro(Plan::Starter)))
        ));
        assert!(matches!(
            portal(Plan::Pro, &[]).matches(EventType::StorePurchase),
            Err(Skip::Plan(PlanRefusal::FeatureMissing { .. }))
        ));
        assert_eq!(portal(Plan::Enterprise, &["store"]).matches(EventType::StorePurchase), Ok(vec!["a"]));
        assert_eq!(PortalRoutes::default().matches(EventType::UserUpdated), Err(Skip::UnknownPortal));
    }
}
