//! The event-type catalogue: the thirteen types of EVENTS.md §1 with their plan rule.

use synap_contract::EventType;
use synap_proto::control::v1 as api;

use crate::service::STORE_FEATURE;

pub fn list() -> api::ListEventTypesResponse {
    api::ListEventTypesResponse { event_types: EventType::ALL.into_iter().map(describe).collect() }
}

fn describe(ty: EventType) -> api::EventType {
    let (required_features, plan_rule) = if ty.requires_store_feature() {
        (vec![STORE_FEATURE.to_owned()], "Pro or higher, and the portal's `store` feature")
    } else {
        (vec![], "Pro or higher")
    };
    api::EventType {
        code: ty.code().to_owned(),
        description: ty.description().to_owned(),
        minimum_plan: api::Plan::Pro as i32,
        required_features,
        plan_rule: plan_rule.to_owned(),
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
