//! Which subscriptions an event goes to: the portal's enabled subscriptions whose types (exact
//! codes or wildcards) cover its type and whose filter matches it, subject to the plan rules of
//! EVENTS.md §1.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use synap_contract::{EventType, PlanRefusal};
use synap_db::{Change, ChangeFeed, Freshness, Plan, Pool, Route, Stamp};
use tokio_util::sync::CancellationToken;

use crate::filtering::{self, EventView};

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
    /// The subscriptions that receive `event` (of type `ty`), or why there are none by rule.
    pub fn matches(&self, ty: EventType, event: &EventView<'_>) -> Result<Vec<&str>, Skip> {
        let plan = self.plan.ok_or(Skip::UnknownPortal)?;
        synap_contract::plan::may_receive(plan, &self.features, ty).map_err(Skip::Plan)?;
        Ok(self
            .routes
            .iter()
            .filter(|r| synap_contract::pattern::any_covers(&r.event_types, ty))
            .filter(|r| filtering::admits(r, event))
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
    use synap_proto::pipeline::v1::Event;

    fn route(id: &str, types: &[&str], filter: Option<&str>) -> Route {
        Route {
            subscription_id: id.into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            filter: filter.map(synap_filter::compiled),
        }
    }

    fn portal(plan: Plan, features: &[&str]) -> PortalRoutes {
        PortalRoutes {
            plan: Some(plan),
            features: features.iter().map(|f| f.to_string()).collect(),
            routes: vec![
                route("a", &["attempt.completed", "store.purchase"], None),
                route("b", &["user.updated"], None),
            ],
        }
    }

    fn event(ty: EventType, data: serde_json::Value) -> Event {
        Event {
            id: "evt_1".into(),
            r#type: ty.code().into(),
            portal_id: "acme".into(),
            occurred_at_ms: 1_795_000_000_000,
            ingested_at_ms: 0,
            data: data.to_string().into_bytes().into(),
        }
    }

    /// `matches` for an event of `ty` with its example body.
    fn matching(p: &PortalRoutes, ty: EventType) -> Result<Vec<&str>, Skip> {
        let e = event(ty, ty.example_body());
        p.matches(ty, &EventView::new(&e, ty)).map(|v| v.into_iter().collect())
    }

    #[test]
    fn matches_by_type() {
        let p = portal(Plan::Pro, &[]);
        assert_eq!(matching(&p, EventType::AttemptCompleted), Ok(vec!["a"]));
        assert_eq!(matching(&p, EventType::UserUpdated), Ok(vec!["b"]));
        assert_eq!(matching(&p, EventType::InviteSent), Ok(vec![]));
    }

    #[test]
    fn plan_rules() {
        assert!(matches!(
            matching(&portal(Plan::Starter, &[]), EventType::AttemptCompleted),
            Err(Skip::Plan(PlanRefusal::BelowPro(Plan::Starter)))
        ));
        assert!(matches!(
            matching(&portal(Plan::Pro, &[]), EventType::StorePurchase),
            Err(Skip::Plan(PlanRefusal::FeatureMissing { .. }))
        ));
        assert_eq!(matching(&portal(Plan::Enterprise, &["store"]), EventType::StorePurchase), Ok(vec!["a"]));
        assert_eq!(matching(&PortalRoutes::default(), EventType::UserUpdated), Err(Skip::UnknownPortal));
    }

    #[test]
    fn wildcards_cover_their_group_and_plan_rules_still_apply() {
        let mut p = portal(Plan::Pro, &[]);
        p.routes = vec![route("users", &["user.*"], None), route("all", &["*"], None)];
        assert_eq!(matching(&p, EventType::UserRegistered), Ok(vec!["users", "all"]));
        assert_eq!(matching(&p, EventType::UserAddedToGroup), Ok(vec!["users", "all"]));
        assert_eq!(matching(&p, EventType::AttemptCompleted), Ok(vec!["all"]));
        assert!(matches!(matching(&p, EventType::StorePurchase), Err(Skip::Plan(_))));
        p.features = vec!["store".into()];
        assert_eq!(matching(&p, EventType::StorePurchase), Ok(vec!["all"]));
    }

    #[test]
    fn filters_decide_per_event_and_failures_are_no_match() {
        let mut p = portal(Plan::Pro, &[]);
        p.routes = vec![
            route("low", &["exam.completed"], Some("data.attempt.scoreFrac < 0.5")),
            route("high", &["exam.completed"], Some("data.attempt.scoreFrac >= 0.5")),
            route("portal", &["exam.completed"], Some(r#"portalId == "acme" && type == "exam.completed""#)),
            route("broken", &["exam.completed"], Some("data.exam.id > 5")),
            route("stored-garbage", &["exam.completed"], Some("data.exam.id ==")),
            route("plain", &["exam.completed"], None),
        ];
        let ty = EventType::ExamCompleted;
        let mut body = ty.example_body();
        body["attempt"]["scoreFrac"] = serde_json::json!(0.25);
        let e = event(ty, body);
        assert_eq!(p.matches(ty, &EventView::new(&e, ty)), Ok(vec!["low", "portal", "plain"]));
        // A body without the field: the filters that read it do not match, the others do.
        let e = event(ty, serde_json::json!({ "exam": { "id": "x" } }));
        assert_eq!(p.matches(ty, &EventView::new(&e, ty)), Ok(vec!["portal", "plain"]));
        // Not JSON at all: only unfiltered subscriptions.
        let mut e = event(ty, serde_json::json!({}));
        e.data = b"not json".to_vec().into();
        assert_eq!(p.matches(ty, &EventView::new(&e, ty)), Ok(vec!["plain"]));
    }
}
