//! The plan rule of EVENTS.md §1, in one place: webhooks need Pro or higher, and `store.purchase`
//! also needs the portal's custom `store` feature. The router applies it to every event; control
//! applies it when a subscription is created, resumed or test-sent, and describes it in the
//! event-type catalogue.

use crate::EventType;

/// A Synap plan, ordered from lowest to highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Plan {
    Free,
    Starter,
    Pro,
    Enterprise,
}

/// The lowest plan that receives webhooks.
pub const MINIMUM_PLAN: Plan = Plan::Pro;

/// The custom feature that unlocks `store.purchase`.
pub const STORE_FEATURE: &str = "store";

impl Plan {
    pub const ALL: [Plan; 4] = [Plan::Free, Plan::Starter, Plan::Pro, Plan::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    pub fn parse(s: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Webhooks are a Pro feature.
    pub fn has_webhooks(self) -> bool {
        self >= MINIMUM_PLAN
    }
}

/// Why a portal may not receive an event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanRefusal {
    /// The portal's plan is below Pro.
    BelowPro(Plan),
    /// The type needs a custom feature the portal lacks.
    FeatureMissing { ty: EventType, feature: &'static str },
}

impl std::fmt::Display for PlanRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanRefusal::BelowPro(plan) => {
                write!(f, "portal is on the {} plan; webhooks need Pro or higher", plan.as_str())
            }
            PlanRefusal::FeatureMissing { ty, feature } => {
                write!(f, "{ty} needs the portal's `{feature}` feature")
            }
        }
    }
}

/// The custom features a portal needs, on top of its plan, to receive `ty`.
pub fn required_features(ty: EventType) -> &'static [&'static str] {
    if ty == EventType::StorePurchase { &[STORE_FEATURE] } else { &[] }
}

/// The rule for `ty` in words, for the event-type catalogue.
pub fn rule_text(ty: EventType) -> &'static str {
    if required_features(ty).is_empty() {
        "Pro or higher"
    } else {
        "Pro or higher, and the portal's `store` feature"
    }
}

/// Whether a portal on `plan` with `features` may receive webhooks at all.
pub fn may_use_webhooks(plan: Plan) -> Result<(), PlanRefusal> {
    if plan.has_webhooks() { Ok(()) } else { Err(PlanRefusal::BelowPro(plan)) }
}

/// Whether a portal on `plan` with `features` may receive events of type `ty`.
pub fn may_receive(plan: Plan, features: &[String], ty: EventType) -> Result<(), PlanRefusal> {
    may_use_webhooks(plan)?;
    match required_features(ty).iter().find(|needed| !features.iter().any(|f| f == *needed)) {
        Some(feature) => Err(PlanRefusal::FeatureMissing { ty, feature }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pro_and_higher_receive_and_store_purchase_needs_the_feature() {
        let none: Vec<String> = vec![];
        let store = vec![STORE_FEATURE.to_owned()];
        for plan in Plan::ALL {
            for ty in EventType::ALL {
                let got = may_receive(plan, &none, ty);
                match (plan >= Plan::Pro, ty) {
                    (false, _) => assert_eq!(got, Err(PlanRefusal::BelowPro(plan))),
                    (true, EventType::StorePurchase) => {
                        assert_eq!(got, Err(PlanRefusal::FeatureMissing { ty, feature: STORE_FEATURE }))
                    }
                    (true, _) => assert_eq!(got, Ok(())),
                }
                assert_eq!(may_receive(plan, &store, ty).is_ok(), plan >= Plan::Pro);
            }
            assert_eq!(Plan::parse(plan.as_str()), Some(plan));
        }
        assert_eq!(Plan::parse("Pro"), None);
    }
}
