//! The event-type catalogue: the thirteen types of EVENTS.md §1 with their plan rule.

use synap_contract::{EventType, plan};
use synap_proto::control::v1 as api;

pub fn list() -> api::ListEventTypesResponse {
    api::ListEventTypesResponse { event_types: EventType::ALL.into_iter().map(describe).collect() }
}

fn describe(ty: EventType) -> api::EventType {
    api::EventType {
        code: ty.code().to_owned(),
        description: ty.description().to_owned(),
        minimum_plan: crate::convert::plan_to_api(synap_contract::plan::MINIMUM_PLAN) as i32,
        required_features: plan::required_features(ty).iter().map(|f| f.to_string()).collect(),
        plan_rule: plan::rule_text(ty).to_owned(),
        example_body: ty.example_body().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_all_thirteen_with_valid_examples() {
        let types = list().event_types;
        assert_eq!(types.len(), 13);
        for t in &types {
            let ty = EventType::from_code(&t.code).unwrap();
            let body: serde_json::Value = serde_json::from_str(&t.example_body).unwrap();
            assert!(synap_contract::validate_body(ty, &body).is_ok(), "{}", t.code);
        }
        let store = types.iter().find(|t| t.code == "store.purchase").unwrap();
        assert_eq!(store.required_features, ["store"]);
    }
}
