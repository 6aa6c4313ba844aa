//! Which subscriptions an event goes to: the portal's enabled subscriptions for its type,
//! subject to the plan rules of EVENTS.md §1.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use synap_contract::{EventType, PlanRefusal};
use synap_db::{Plan, Pool, Route};

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

/// Routing state per portal, read through a short-lived cache.
#[derive(Clone)]
pub struct RouteCache {
    pool: Pool,
    cache: Cache<String, Arc<PortalRoutes>>,
}

impl RouteCache {
    pub fn new(pool: Pool, ttl: Duration, capacity: u64) -> Self {
        Self { pool, cache: Cache::builder().time_to_live(ttl).max_capacity(capacity).build() }
    }

    pub async fn get(&self, portal_id: &str) -> Result<Arc<PortalRoutes>, Arc<synap_db::DbError>> {
        let pool = self.pool.clone();
        let id = portal_id.to_owned();
        self.cache
            .try_get_with(portal_id.to_owned(), async move {
                let Some(portal) = synap_db::portals::get(&pool, &id).await? else {
                    return Ok(Arc::new(PortalRoutes::default()));
                };
                let routes = synap_db::subscriptions::enabled_routes(&pool, &id).await?;
                Ok(Arc::new(PortalRoutes { plan: Some(portal.plan), features: portal.features, routes }))
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
