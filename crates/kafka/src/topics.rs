//! Topic names. Every stage derives them from the same prefix, so they can never disagree.

use synap_contract::EventType;

#[derive(Clone, Debug)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// Where platform services produce events.
    pub fn inbound(&self) -> String {
        format!("{}inbound", self.prefix)
    }

    /// Inbound records that break the contract, with the reason in a header.
    pub fn inbound_dead_letter(&self) -> String {
        format!("{}inbound.dlq", self.prefix)
    }

    /// Validated events of one type.
    pub fn event(&self, ty: EventType) -> String {
        format!("{}events.{}", self.prefix, ty.code())
    }

    /// Maps an event topic back to its type.
    pub fn event_type_of(&self, topic: &str) -> Option<EventType> {
        let code = topic.strip_prefix(&self.prefix)?.strip_prefix("events.")?;
        EventType::from_code(code)
    }

    /// Events the router can never route (undecodable, or data the database refuses), with the
    /// reason in a header.
    pub fn events_dead_letter(&self) -> String {
        format!("{}events.dlq", self.prefix)
    }

    pub fn all_events(&self) -> Vec<String> {
        EventType::ALL.iter().map(|ty| self.event(*ty)).collect()
    }

    /// One record per (event, subscription) to deliver.
    pub fn deliveries(&self) -> String {
        format!("{}deliveries", self.prefix)
    }

    /// Deliveries that reached a final failure, with the reason in a header.
    pub fn deliveries_dead_letter(&self) -> String {
        format!("{}deliveries.dlq", self.prefix)
    }

    /// A delay tier: deliveries waiting there for their next attempt, each until its due time.
    /// `label` names the tier's delay (`5s`, `5m`, `2h`).
    pub fn retry_tier(&self, label: &str) -> String {
        format!("{}retry.{label}", self.prefix)
    }

    /// The attempt log on its way to PostgreSQL: the sender writes here on its hot path and
    /// stores the records in batches, so a database outage delays the log and loses nothing.
    pub fn attempts(&self) -> String {
        format!("{}attempts", self.prefix)
    }

    /// Events for the operator: deliveries that failed for good, subscriptions disabled.
    pub fn operator_events(&self) -> String {
        format!("{}operator.events", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_topics_round_trip() {
        let topics = Topics::new("synap.");
        for ty in EventType::ALL {
            assert_eq!(topics.event_type_of(&topics.event(ty)), Some(ty));
        }
        assert_eq!(topics.event(EventType::AttemptSubmitted), "synap.events.attempt.submitted");
        assert_eq!(topics.event_type_of("synap.inbound"), None);
        assert_eq!(topics.event_type_of("other.events.attempt.submitted"), None);
    }
}
