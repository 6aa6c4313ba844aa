//! An event as a filter sees it: `data` (the body, JSON mapped to CEL values), `type`,
//! `portalId` and `occurredAt` (a timestamp). Built once per event and shared by every filter
//! evaluated on it: converting the body is the per-event cost, evaluating a filter the
//! per-subscription one.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::{Context, Value};
use chrono::{DateTime, Utc};
use synap_contract::EventType;

/// What a filter reads of one event.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    pub ty: EventType,
    pub portal_id: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub data: &'a serde_json::Value,
}

/// The variables of one event, ready for [`Filter::matches`](crate::Filter::matches).
pub struct Bindings {
    context: Context<'static, 'static>,
}

impl Bindings {
    pub fn new(event: &Event<'_>) -> Bindings {
        let mut context = Context::with_env(crate::ENV.clone());
        context.add_variable_from_value("data", json(event.data));
        context.add_variable_from_value("type", Value::String(Arc::new(event.ty.code().to_owned())));
        context.add_variable_from_value("portalId", Value::String(Arc::new(event.portal_id.to_owned())));
        context.add_variable_from_value("occurredAt", Value::Timestamp(event.occurred_at.fixed_offset()));
        Bindings { context }
    }

    pub(crate) fn context(&self) -> &Context<'static, 'static> {
        &self.context
    }
}

/// JSON to CEL as CEL's own JSON mapping (`google.protobuf.Value`) does it: every number is a
/// double, so `data.totalUsers == 3` and `data.attempt.scoreFrac < 0.5` both hold whatever way
/// the producer wrote the number (CEL compares int and double by value).
fn json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => Value::List(Arc::new(items.iter().map(json).collect())),
        serde_json::Value::Object(fields) => {
            let map: HashMap<Key, Value> =
                fields.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), json(v))).collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}
