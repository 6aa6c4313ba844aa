//! The scenarios of issue 6 and their sizes. Each is bounded in events and in time and stops by
//! itself; a scenario that hits its deadline says so in its result instead of hanging.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use synap_contract::EventType;

use crate::stats::Behaviour;

/// Sizes of every scenario: the full run and the smoke run that CI uses to check the tool.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub broker_records: u64,
    pub broker_partitions: i32,
    /// Seconds of the broker's one-hop latency at each latency scenario's rate, on a fresh
    /// broker with the inbound topic's 6 partitions: three of these hops are the floor under
    /// that scenario.
    pub broker_latency_seconds: f64,
    pub http_seconds: f64,
    pub http_concurrency: usize,
    /// Portals (one subscription each, all event types) of the steady and latency scenarios.
    pub steady_portals: u64,
    pub steady_events: u64,
    /// (events/s, seconds) of each fixed-rate latency scenario.
    pub latency_runs: Vec<(f64, f64)>,
    /// Latency figures leave out events published in the first seconds of a fixed-rate run.
    pub latency_warmup_s: f64,
    /// (endpoints, events, events/s or 0 for all at once) of each fan-out scenario.
    pub fanouts: Vec<(u64, u64, f64)>,
    pub tenant_portals: u64,
    pub subscriptions_per_tenant: u64,
    pub tenant_events: u64,
    /// Portals of the isolation scenario; every tenth answers 500, the next never answers.
    pub isolation_portals: u64,
    pub isolation_events: u64,
    /// Deliveries written to every retry tier before the `backlog` scenario's burst.
    #[serde(default)]
    pub tier_backlog: u64,
    /// Deliveries of each scaling scenario (`scale-per-event-<n>`, `scale-total-<n>`).
    pub scaling_deliveries: u64,
    /// Subscriptions per event of the `scale-per-event-<n>` scenarios.
    pub scaling_per_event: Vec<u64>,
    /// Subscriptions in all of the `scale-total-<n>` scenarios.
    pub scaling_totals: Vec<u64>,
    /// Longest a scenario may take, publishing included.
    pub deadline_s: f64,
}

impl Profile {
    pub fn full() -> Self {
        Self {
            name: "full".into(),
            broker_records: 100_000,
            broker_partitions: 12,
            broker_latency_seconds: 30.0,
            http_seconds: 10.0,
            http_concurrency: 128,
            steady_portals: 50,
            steady_events: 60_000,
            latency_runs: vec![(500.0, 30.0), (1000.0, 30.0)],
            latency_warmup_s: 5.0,
            fanouts: vec![(100, 300, 0.0), (1000, 5, 1.0 / 3.0)],
            tenant_portals: 1000,
            subscriptions_per_tenant: 10,
            tenant_events: 30_000,
            isolation_portals: 50,
            isolation_events: 60_000,
            // ~55 MB per tier at ~2.8 KB a record: more than any consumer reads ahead.
            tier_backlog: 20_000,
            scaling_deliveries: 30_000,
            scaling_per_event: vec![1, 10, 100, 1000],
            scaling_totals: vec![1_000, 10_000, 50_000],
            deadline_s: 150.0,
        }
    }

    /// A few seconds in all: proves every path works and the report is whole, measures nothing.
    pub fn smoke() -> Self {
        Self {
            name: "smoke".into(),
            broker_records: 2_000,
            broker_partitions: 2,
            broker_latency_seconds: 2.0,
            http_seconds: 1.0,
            http_concurrency: 8,
            // As many portals as `isolation`, so that the two compare the same tenants.
            steady_portals: 10,
            steady_events: 300,
            latency_runs: vec![(100.0, 2.0)],
            latency_warmup_s: 0.5,
            fanouts: vec![(20, 5, 0.0)],
            tenant_portals: 20,
            subscriptions_per_tenant: 3,
            tenant_events: 100,
            isolation_portals: 10,
            isolation_events: 200,
            tier_backlog: 50,
            scaling_deliveries: 200,
            scaling_per_event: vec![1, 10],
            scaling_totals: vec![100],
            deadline_s: 30.0,
        }
    }

    /// Every scenario of this profile, in the order they run: the isolation scenario last,
    /// because its endpoints that never answer keep the sender busy after it ends.
    pub fn scenarios(&self) -> Vec<Scenario> {
        let mut all = vec![Scenario::steady(self)];
        for (rate, seconds) in &self.latency_runs {
            all.push(Scenario::latency(self, *rate, *seconds));
        }
        for (endpoints, events, rate) in &self.fanouts {
            all.push(Scenario::fanout(*endpoints, *events, *rate));
        }
        all.push(Scenario::tenants(self));
        all.push(Scenario::backlog(self));
        all.push(Scenario::isolation(self));
        for s in &mut all {
            s.deadline = Duration::from_secs_f64(self.deadline_s);
        }
        all
    }

    /// How cost grows with work (docs/BENCHMARKS.md, "Scaling"): run only when named, since
    /// creating 50,000 subscriptions takes minutes. Each delivers `scaling_deliveries`.
    pub fn scaling_scenarios(&self) -> Vec<Scenario> {
        let mut all: Vec<_> = self.scaling_per_event.iter().map(|n| Scenario::per_event(self, *n)).collect();
        all.extend(self.scaling_totals.iter().map(|n| Scenario::total(self, *n)));
        for s in &mut all {
            s.deadline = Duration::from_secs_f64(self.deadline_s);
        }
        all
    }
}

/// Which endpoints receive which events.
#[derive(Clone, Debug)]
pub enum Layout {
    /// `portals` portals, one subscription each to every type; endpoint `i` behaves as
    /// `behaviour(i)`. Event `seq` belongs to portal `seq % portals` and has type `seq % 13`.
    OnePerPortal { prefix: String, portals: u64, isolation: bool },
    /// `portals` portals (one keeps the prefix as its id), `endpoints` subscriptions each to
    /// `attempt.completed`. Event `seq` goes to portal `seq % portals`.
    FanOut { prefix: String, portals: u64, endpoints: u64 },
    /// `portals` portals with `per_portal` subscriptions each, subscription `j` to type `j`.
    /// Event `seq` goes to portal `seq % portals`, type `(seq / portals) % per_portal`: exactly
    /// one subscription matches, among `per_portal` routes.
    Tenants { prefix: String, portals: u64, per_portal: u64 },
}

impl Layout {
    pub fn portals(&self) -> Vec<String> {
        match self {
            Layout::OnePerPortal { prefix, portals, .. } | Layout::Tenants { prefix, portals, .. } => {
                (0..*portals).map(|i| format!("{prefix}-{i}")).collect()
            }
            Layout::FanOut { prefix, portals: 1, .. } => vec![prefix.clone()],
            Layout::FanOut { prefix, portals, .. } => {
                (0..*portals).map(|i| format!("{prefix}-{i}")).collect()
            }
        }
    }

    /// The behaviour of endpoint `i` of a one-per-portal layout.
    pub fn behaviour(&self, i: u64) -> Behaviour {
        match self {
            Layout::OnePerPortal { isolation: true, .. } => match i % 10 {
                0 => Behaviour::Fail,
                1 => Behaviour::Hang,
                _ => Behaviour::Ok,
            },
            _ => Behaviour::Ok,
        }
    }

    /// Whether event `seq` goes to a portal that answers 2xx in an `isolation` layout of
    /// `portals` portals. `steady` routes events the same way, so asked of it this picks out the
    /// same tenants with no failing neighbours: what isolation's healthy ones are compared with.
    pub fn healthy_in_isolation(portals: u64, seq: u64) -> bool {
        let isolation = Layout::OnePerPortal { prefix: String::new(), portals, isolation: true };
        seq.checked_rem(portals).is_some_and(|portal| isolation.behaviour(portal).delivers())
    }

    /// (portal, type) of event `seq`.
    pub fn route(&self, seq: u64) -> (String, EventType) {
        let all = EventType::ALL;
        match self {
            Layout::OnePerPortal { prefix, portals, .. } => {
                (format!("{prefix}-{}", seq % portals), all[(seq % all.len() as u64) as usize])
            }
            Layout::FanOut { prefix, portals: 1, .. } => (prefix.clone(), EventType::AttemptCompleted),
            Layout::FanOut { prefix, portals, .. } => {
                (format!("{prefix}-{}", seq % portals), EventType::AttemptCompleted)
            }
            Layout::Tenants { prefix, portals, per_portal } => {
                (format!("{prefix}-{}", seq % portals), all[((seq / portals) % per_portal) as usize])
            }
        }
    }

    /// Healthy endpoints that receive event `seq`.
    pub fn healthy_endpoints(&self, seq: u64) -> u64 {
        match self {
            Layout::OnePerPortal { portals, .. } => u64::from(self.behaviour(seq % portals).delivers()),
            Layout::FanOut { endpoints, .. } => *endpoints,
            Layout::Tenants { .. } => 1,
        }
    }
}

/// One scenario: a layout, a load and what it is compared with.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub what: String,
    pub layout: Layout,
    pub events: u64,
    /// Events per second; `None` publishes as fast as the producer takes them (saturation).
    pub rate: Option<f64>,
    /// Latency leaves out events published within this time from the start.
    pub latency_warmup: Duration,
    pub deadline: Duration,
    /// Deliveries written to every retry tier, due in a day, before the measurement.
    pub tier_backlog: u64,
}

impl Scenario {
    fn steady(p: &Profile) -> Self {
        Self {
            name: "steady".into(),
            what: format!(
                "{} events published at once, 1 subscription per event over {} portals, all endpoints healthy: saturation",
                p.steady_events, p.steady_portals
            ),
            layout: Layout::OnePerPortal {
                prefix: "steady".into(),
                portals: p.steady_portals,
                isolation: false,
            },
            events: p.steady_events,
            rate: None,
            latency_warmup: Duration::ZERO,
            deadline: Duration::ZERO,
            tier_backlog: 0,
        }
    }

    fn latency(p: &Profile, rate: f64, seconds: f64) -> Self {
        Self {
            name: Self::latency_name(rate),
            what: format!(
                "{rate} events/s for {seconds} s, the steady layout; latency after {} s of warm-up",
                p.latency_warmup_s
            ),
            layout: Layout::OnePerPortal {
                prefix: "steady".into(),
                portals: p.steady_portals,
                isolation: false,
            },
            events: (rate * seconds) as u64,
            rate: Some(rate),
            latency_warmup: Duration::from_secs_f64(p.latency_warmup_s),
            deadline: Duration::ZERO,
            tier_backlog: 0,
        }
    }

    /// The name of the latency scenario at `rate` events/s.
    pub fn latency_name(rate: f64) -> String {
        format!("latency-{rate}")
    }

    fn fanout(endpoints: u64, events: u64, rate: f64) -> Self {
        let how = if rate > 0.0 { format!("one every {:.1} s", 1.0 / rate) } else { "all at once".into() };
        Self {
            name: format!("fanout-{endpoints}"),
            what: format!("{events} attempt.completed events ({how}) to {endpoints} endpoints of one portal"),
            layout: Layout::FanOut { prefix: format!("fanout{endpoints}"), portals: 1, endpoints },
            events,
            rate: (rate > 0.0).then_some(rate),
            latency_warmup: Duration::ZERO,
            deadline: Duration::ZERO,
            tier_backlog: 0,
        }
    }

    fn tenants(p: &Profile) -> Self {
        Self {
            name: "tenants".into(),
            what: format!(
                "{} events at once over {} portals with {} subscriptions each ({} in all), 1 matching per event",
                p.tenant_events,
                p.tenant_portals,
                p.subscriptions_per_tenant,
                p.tenant_portals * p.subscriptions_per_tenant
            ),
            layout: Layout::Tenants {
                prefix: "tenant".into(),
                portals: p.tenant_portals,
                per_portal: p.subscriptions_per_tenant,
            },
            events: p.tenant_events,
            rate: None,
            latency_warmup: Duration::ZERO,
            deadline: Duration::ZERO,
            tier_backlog: 0,
        }
    }

    /// `n` subscriptions per event, everything at once: 100 subscriptions in all (spread over
    /// `100 / n` portals) up to 100 per event, then one portal with `n`.
    fn per_event(p: &Profile, n: u64) -> Self {
        let portals = (100 / n).max(1);
        let events = (p.scaling_deliveries / n).max(1);
        Self {
            name: format!("scale-per-event-{n}"),
            what: format!(
                "{events} attempt.completed events at once, {n} subscriptions each ({portals} portals × {n})"
            ),
            layout: Layout::FanOut { prefix: format!("per{n}"), portals, endpoints: n },
            events,
            rate: None,
            latency_warmup: Duration::ZERO,
            deadline: Duration::ZERO,
            tier_backlog: 0,
        }
    }

    /// `n` subscriptions in all (`n / 10` portals × 10, as `tenants`), one matching per event,
    /// everything at once.
    fn total(p: &Profile, n: u64) -> Self {
        let portals = (n / 10).max(1);
        Self {
            name: format!("scale-total-{n}"),
            what: format!(
                "{} events at once over {portals} portals × 10 subscriptions ({n} in all), 1 matching per event",
                p.scaling_deliveries
            ),
            layout: Layout::Tenants { prefix: format!("total{n}"), portals, per_portal: 10 },
            events: p.scaling_deliveries,
            rate: None,
            latency_warmup: Duration::ZERO,
            deadline: Duration::ZERO,
            tier_backlog: 0,
        }
    }

    /// The steady burst while every retry tier holds a long outage's backlog: what the sender's
    /// memory comes to when, hours into an outage, every tier has records waiting.
    fn backlog(p: &Profile) -> Self {
        Self {
            name: "backlog".into(),
            what: format!(
                "as steady ({} events at once, {} portals), while every retry tier holds {} deliveries due in a day",
                p.steady_events, p.steady_portals, p.tier_backlog
            ),
            layout: Layout::OnePerPortal {
                prefix: "backlog".into(),
                portals: p.steady_portals,
                isolation: false,
            },
            tier_backlog: p.tier_backlog,
            ..Self::steady(p)
        }
    }

    fn isolation(p: &Profile) -> Self {
        Self {
            name: "isolation".into(),
            what: format!(
                "as steady ({} events at once, {} portals), but 10% of endpoints answer 500 and 10% never answer",
                p.isolation_events, p.isolation_portals
            ),
            layout: Layout::OnePerPortal {
                prefix: "iso".into(),
                portals: p.isolation_portals,
                isolation: true,
            },
            events: p.isolation_events,
            rate: None,
            latency_warmup: Duration::ZERO,
            deadline: Duration::ZERO,
            tier_backlog: 0,
        }
    }

    /// Healthy deliveries the scenario waits for.
    pub fn expected_deliveries(&self) -> u64 {
        (0..self.events).map(|seq| self.layout.healthy_endpoints(seq)).sum()
    }

    /// The portal count this `isolation` scenario shares with `steady`, when the two route
    /// events alike: then its healthy tenants can be picked out of `steady` too
    /// ([`Layout::healthy_in_isolation`]).
    pub fn portals_shared_with(&self, steady: &Scenario) -> Option<u64> {
        match (&self.layout, &steady.layout) {
            (
                Layout::OnePerPortal { portals, isolation: true, .. },
                Layout::OnePerPortal { portals: theirs, isolation: false, .. },
            ) if portals == theirs => Some(*portals),
            _ => None,
        }
    }

    /// Healthy endpoints per event, for the completion figure (the most any event has).
    pub fn endpoints_per_event(&self) -> u64 {
        match &self.layout {
            Layout::FanOut { endpoints, .. } => *endpoints,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_sends_eighty_percent_to_healthy_endpoints() {
        let s = Scenario::isolation(&Profile::full());
        assert_eq!(s.expected_deliveries(), s.events * 8 / 10);
        let behaviours: Vec<_> = (0..10).map(|i| s.layout.behaviour(i)).collect();
        assert_eq!(behaviours.iter().filter(|b| **b == Behaviour::Fail).count(), 1);
        assert_eq!(behaviours.iter().filter(|b| **b == Behaviour::Hang).count(), 1);
    }

    #[test]
    fn steady_holds_the_same_healthy_tenants_as_isolation() {
        for p in [Profile::full(), Profile::smoke()] {
            let (steady, isolation) = (Scenario::steady(&p), Scenario::isolation(&p));
            let portals = isolation.portals_shared_with(&steady).expect("the same portals");
            // Picked out of steady's events, the healthy ones are exactly those isolation
            // delivers, event for event.
            for seq in 0..1_000 {
                assert_eq!(
                    Layout::healthy_in_isolation(portals, seq),
                    isolation.layout.healthy_endpoints(seq) == 1,
                    "{seq}"
                );
                assert_eq!(steady.layout.route(seq).1, isolation.layout.route(seq).1);
            }
        }
        assert!(!Layout::healthy_in_isolation(0, 7));
        let p = Profile::full();
        assert_eq!(Scenario::steady(&p).portals_shared_with(&Scenario::isolation(&p)), None);
    }

    #[test]
    fn tenants_spread_over_every_portal_and_route() {
        let s = Scenario::tenants(&Profile::full());
        let Layout::Tenants { portals, per_portal, .. } = s.layout else { panic!() };
        let routes: std::collections::HashSet<_> =
            (0..portals * per_portal).map(|seq| s.layout.route(seq)).collect();
        assert_eq!(routes.len() as u64, portals * per_portal);
        assert_eq!(Profile::full().tenant_portals * Profile::full().subscriptions_per_tenant, 10_000);
    }

    #[test]
    fn scaling_scenarios_deliver_the_same_work_with_the_stated_shape() {
        let p = Profile::full();
        for s in p.scaling_scenarios() {
            assert_eq!(s.expected_deliveries(), p.scaling_deliveries, "{}", s.name);
            let subscriptions = match &s.layout {
                Layout::FanOut { portals, endpoints, .. } => {
                    assert_eq!(s.layout.portals().len() as u64, *portals);
                    portals * endpoints
                }
                Layout::Tenants { portals, per_portal, .. } => portals * per_portal,
                Layout::OnePerPortal { .. } => panic!("{}", s.name),
            };
            if let Some(n) = s.name.strip_prefix("scale-total-") {
                assert_eq!(subscriptions, n.parse::<u64>().unwrap());
            }
        }
        let per_event: Vec<_> = p.scaling_scenarios().iter().map(|s| s.endpoints_per_event()).collect();
        assert_eq!(per_event, [1, 10, 100, 1000, 1, 1, 1]);
        // Every portal of a multi-portal fan-out gets events.
        let s = Scenario::per_event(&p, 10);
        let portals: std::collections::HashSet<_> = (0..100).map(|seq| s.layout.route(seq).0).collect();
        assert_eq!(portals.len(), 10);
    }

    #[test]
    fn names_are_unique_and_usable_as_tags() {
        for profile in [Profile::full(), Profile::smoke()] {
            let mut all = profile.scenarios();
            all.extend(profile.scaling_scenarios());
            let names: Vec<_> = all.into_iter().map(|s| s.name).collect();
            let unique: std::collections::HashSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len());
            assert!(names.iter().all(|n| !n.contains('_') && !n.contains('/')), "{names:?}");
        }
    }
}
