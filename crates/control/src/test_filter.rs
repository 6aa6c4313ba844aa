//! TestFilter: a filter evaluated on one event, exactly as the router evaluates it, so that a
//! customer can try a filter before saving it. Nothing is written or sent.

use chrono::Utc;
use synap_contract::{EventType, TypePattern};
use synap_filter::{Bindings, Event};
use synap_proto::control::v1 as api;
use tonic::Status;

use crate::auth::Caller;
use crate::errors::invalid;
use crate::service::ControlApi;
use crate::validate;

/// The largest body a test takes: ingest's default `max_body_bytes`, the largest event body a
/// filter sees in a default deployment.
pub const MAX_TEST_BODY: usize = 256 * 1024;

/// The portal id a test event carries when neither a subscription nor a portal key names one:
/// the example bodies' portal.
const EXAMPLE_PORTAL: &str = "prt_7d41e2c9";

impl ControlApi {
    pub(crate) async fn test_filter(
        &self,
        caller: &Caller,
        req: api::TestFilterRequest,
    ) -> Result<api::TestFilterResponse, Status> {
        let sub = match req.subscription_id.as_str() {
            "" => None,
            id => Some(self.subscription(caller, "subscription_id", id).await?),
        };
        let patterns = match (&req.event_types[..], &sub) {
            ([], Some(sub)) => sub.event_types.iter().filter_map(|t| TypePattern::parse(t).ok()).collect(),
            ([], None) => Vec::new(),
            (listed, _) => validate::event_types("event_types", listed)?,
        };
        let ty = match req.event_type.as_str() {
            "" => validate::covered(&patterns)
                .first()
                .copied()
                .ok_or_else(|| invalid("event_type", "must name an event type (or give event_types)"))?,
            code => EventType::from_code(code)
                .ok_or_else(|| invalid("event_type", format!("unknown event type {code:?}")))?,
        };
        let mut types = validate::covered(&patterns);
        if types.is_empty() {
            types.push(ty);
        }
        let source = match (req.filter.as_str(), &sub) {
            ("", Some(sub)) => sub
                .filter
                .clone()
                .ok_or_else(|| invalid("filter", "must not be empty: the subscription has no filter"))?,
            ("", None) => return Err(invalid("filter", "must not be empty")),
            (given, _) => given.to_owned(),
        };
        let filter = validate::filter("filter", &source, &types).await?;
        let data = match req.body.as_str() {
            "" => ty.example_body(),
            body => parse_body(ty, body)?,
        };
        let portal_id = match (&sub, caller) {
            (Some(sub), _) => sub.portal_id.clone(),
            (None, Caller::Portal(own)) => own.clone(),
            (None, _) => EXAMPLE_PORTAL.to_owned(),
        };
        let event = Event { ty, portal_id: &portal_id, occurred_at: Utc::now(), data: &data };
        let (matched, error) = match filter.matches(&Bindings::new(&event)) {
            Ok(matched) => (matched, String::new()),
            Err(e) => (false, e.to_string()),
        };
        Ok(api::TestFilterResponse { matched, error, event_type: ty.code().to_owned() })
    }
}

/// A body as ingest would take it: JSON, an object, within the size bound, in the type's shape.
fn parse_body(ty: EventType, body: &str) -> Result<serde_json::Value, Status> {
    if body.len() > MAX_TEST_BODY {
        return Err(invalid("body", format!("must be at most {MAX_TEST_BODY} bytes")));
    }
    let data: serde_json::Value =
        serde_json::from_str(body).map_err(|e| invalid("body", format!("is not JSON: {e}")))?;
    synap_contract::validate_body(ty, &data)
        .map_err(|e| invalid("body", format!("is not a valid {ty} body: {e}")))?;
    Ok(data)
}
