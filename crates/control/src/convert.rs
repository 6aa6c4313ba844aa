//! Database rows to API messages.

use chrono::{DateTime, Utc};
use synap_proto::control::v1 as api;

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

pub fn plan_to_api(plan: synap_db::Plan) -> api::Plan {
    match plan {
        synap_db::Plan::Free => api::Plan::Free,
        synap_db::Plan::Starter => api::Plan::Starter,
        synap_db::Plan::Pro => api::Plan::Pro,
        synap_db::Plan::Enterprise => api::Plan::Enterprise,
    }
}

pub fn plan_from_api(plan: api::Plan) -> Option<synap_db::Plan> {
    Some(match plan {
        api::Plan::Unspecified => return None,
        api::Plan::Free => synap_db::Plan::Free,
        api::Plan::Starter => synap_db::Plan::Starter,
        api::Plan::Pro => synap_db::Plan::Pro,
        api::Plan::Enterprise => synap_db::Plan::Enterprise,
    })
}

pub fn portal(p: synap_db::Portal) -> api::Portal {
    api::Portal {
        id: p.id,
        plan: plan_to_api(p.plan) as i32,
        features: p.features,
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}

/// A subscription as the API shows it, with what anyone may see of its signing (scheme and
/// public keys) and its extra headers (secret values withheld).
pub fn subscription(
    s: synap_db::Subscription,
    signing: synap_db::secrets::PublicSigning,
    headers: Vec<synap_db::custom_headers::ShownHeader>,
) -> api::Subscription {
    let state = state_to_api(s.state());
    api::Subscription {
        id: s.id,
        portal_id: s.portal_id,
        url: s.url,
        event_types: s.event_types,
        description: s.description,
        enabled: s.enabled,
        basic_auth_username: s.basic_auth_username,
        created_at: Some(timestamp(s.created_at)),
        updated_at: Some(timestamp(s.updated_at)),
        state: state as i32,
        disabled_reason: s.disabled_reason.unwrap_or_default(),
        ordered: s.options.ordered,
        max_in_flight: s.options.max_in_flight,
        rate_limit_per_sec: s.options.rate_limit_per_sec,
        timeout_ms: s.options.timeout_ms,
        omit_traceparent: s.options.omit_traceparent,
        filter: s.filter.unwrap_or_default(),
        signature_scheme: scheme_to_api(signing.scheme) as i32,
        signing_public_keys: signing
            .public_keys
            .into_iter()
            .map(|k| api::SigningPublicKey { public_key: k.key, expires_at: k.expires_at.map(timestamp) })
            .collect(),
        headers: headers
            .into_iter()
            .map(|h| api::CustomHeader {
                name: h.name,
                secret: h.value.is_none(),
                value: h.value.unwrap_or_default(),
            })
            .collect(),
    }
}

pub fn scheme_to_api(scheme: synap_db::secrets::Scheme) -> api::SignatureScheme {
    match scheme {
        synap_db::secrets::Scheme::V1 => api::SignatureScheme::V1,
        synap_db::secrets::Scheme::V1a => api::SignatureScheme::V1a,
    }
}

pub fn state_to_api(state: synap_db::subscriptions::State) -> api::SubscriptionState {
    match state {
        synap_db::subscriptions::State::Active => api::SubscriptionState::Active,
        synap_db::subscriptions::State::Paused => api::SubscriptionState::Paused,
        synap_db::subscriptions::State::Disabled => api::SubscriptionState::Disabled,
    }
}

pub fn state_from_api(state: api::SubscriptionState) -> Option<synap_db::subscriptions::State> {
    Some(match state {
        api::SubscriptionState::Unspecified => return None,
        api::SubscriptionState::Active => synap_db::subscriptions::State::Active,
        api::SubscriptionState::Paused => synap_db::subscriptions::State::Paused,
        api::SubscriptionState::Disabled => synap_db::subscriptions::State::Disabled,
    })
}

pub fn api_key(k: synap_db::ApiKey) -> api::ApiKey {
    api::ApiKey {
        id: k.id,
        portal_id: k.portal_id,
        name: k.name,
        token_prefix: k.token_prefix,
        created_at: Some(timestamp(k.created_at)),
        revoked_at: k.revoked_at.map(timestamp),
        last_used_at: k.last_used_at.map(timestamp),
    }
}
