//! The thirteen event types of EVENTS.md §1 and their wire codes.

use std::fmt;
use std::str::FromStr;

/// One of the platform events a portal can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `attempt.submitted`
    AttemptSubmitted,
    /// `attempt.completed`
    AttemptCompleted,
    /// `attemptOverride.created`
    AttemptOverrideCreated,
    /// `exam.submitted`
    ExamSubmitted,
    /// `exam.completed`
    ExamCompleted,
    /// `user.registered`
    UserRegistered,
    /// `user.updated`
    UserUpdated,
    /// `user.addedToGroup`
    UserAddedToGroup,
    /// `user.registeredForExam`
    UserRegisteredForExam,
    /// `assignment.completed`
    AssignmentCompleted,
    /// `flag.planted`
    FlagPlanted,
    /// `store.purchase`
    StorePurchase,
    /// `invite.sent`
    InviteSent,
}

/// A code that names no event type; codes are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type \"{0}\"")]
pub struct UnknownEventType(pub String);

impl UnknownEventType {
    /// The code that was not recognised.
    #[must_use]
    pub fn code(&self) -> &str {
        &self.0
    }
}

impl EventType {
    /// Every event type, in the table order of EVENTS.md §1.
    pub const ALL: [EventType; 13] = [
        EventType::AttemptSubmitted,
        EventType::AttemptCompleted,
        EventType::AttemptOverrideCreated,
        EventType::ExamSubmitted,
        EventType::ExamCompleted,
        EventType::UserRegistered,
        EventType::UserUpdated,
        EventType::UserAddedToGroup,
        EventType::UserRegisteredForExam,
        EventType::AssignmentCompleted,
        EventType::FlagPlanted,
        EventType::StorePurchase,
        EventType::InviteSent,
    ];

    /// The wire code, exactly as Synap spells it (note the camelCase ones).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            EventType::AttemptSubmitted => "attempt.submitted",
            EventType::AttemptCompleted => "attempt.completed",
            EventType::AttemptOverrideCreated => "attemptOverride.created",
            EventType::ExamSubmitted => "exam.submitted",
            EventType::ExamCompleted => "exam.completed",
            EventType::UserRegistered => "user.registered",
            EventType::UserUpdated => "user.updated",
            EventType::UserAddedToGroup => "user.addedToGroup",
            EventType::UserRegisteredForExam => "user.registeredForExam",
            EventType::AssignmentCompleted => "assignment.completed",
            EventType::FlagPlanted => "flag.planted",
            EventType::StorePurchase => "store.purchase",
            EventType::InviteSent => "invite.sent",
        }
    }

    /// The event type with this exact (case-sensitive) code.
    #[must_use]
    pub fn from_code(code: &str) -> Option<EventType> {
        // `code()` is the single source of truth; 13 comparisons are cheap.
        EventType::ALL.into_iter().find(|ty| ty.code() == code)
    }

    /// When the platform sends this event (the "sent when" column).
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            EventType::AttemptSubmitted => "a user submits any test or exam attempt",
            EventType::AttemptCompleted => "any attempt is completed (submitted and fully marked)",
            EventType::AttemptOverrideCreated => {
                "an attempt's results are overridden, or an override is reverted"
            }
            EventType::ExamSubmitted => "a user submits an exam attempt (exam attempts only)",
            EventType::ExamCompleted => "an exam attempt is completed, marking included",
            EventType::UserRegistered => "a new user account is created",
            EventType::UserUpdated => "a user's account details change",
            EventType::UserAddedToGroup => "a user is added to a user group",
            EventType::UserRegisteredForExam => "a user is registered for an exam",
            EventType::AssignmentCompleted => "an assignment is completed",
            EventType::FlagPlanted => "a flag is planted on a question",
            EventType::StorePurchase => "a user buys in the Synap store",
            EventType::InviteSent => "an invite email is sent",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        EventType::from_code(code).ok_or_else(|| UnknownEventType(code.to_owned()))
    }
}

// Serialised as the wire code, so configs, rows and APIs all spell event types the same way.
impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn all_has_thirteen_distinct_codes_that_round_trip() {
        let codes: HashSet<_> = EventType::ALL.iter().map(|ty| ty.code()).collect();
        assert_eq!(codes.len(), 13);
        for ty in EventType::ALL {
            assert_eq!(EventType::from_code(ty.code()), Some(ty));
            assert_eq!(ty.to_string().parse::<EventType>(), Ok(ty));
            assert!(!ty.description().is_empty());
        }
    }

    #[test]
    fn all_follows_the_contract_table_order() {
        assert_eq!(EventType::ALL[0].code(), "attempt.submitted");
        assert_eq!(EventType::ALL[2].code(), "attemptOverride.created");
        assert_eq!(EventType::ALL[7].code(), "user.addedToGroup");
        assert_eq!(EventType::ALL[8].code(), "user.registeredForExam");
        assert_eq!(EventType::ALL[12].code(), "invite.sent");
    }

    #[test]
    fn codes_are_case_sensitive() {
        assert_eq!(EventType::from_code("user.addedtogroup"), None);
        assert_eq!(EventType::from_code("Attempt.Submitted"), None);
        assert_eq!(EventType::from_code(" attempt.submitted"), None);
        let err = "user.addedtogroup".parse::<EventType>().unwrap_err();
        assert_eq!(err.code(), "user.addedtogroup");
        assert_eq!(err.to_string(), r#"unknown event type "user.addedtogroup""#);
    }

    #[test]
    fn only_store_purchase_needs_the_store_feature() {
        let gated: Vec<_> =
            EventType::ALL.into_iter().filter(|ty| !crate::plan::required_features(*ty).is_empty()).collect();
        assert_eq!(gated, [EventType::StorePurchase]);
    }

    #[test]
    fn serde_uses_the_wire_code() {
        let json = serde_json::to_value(EventType::AttemptOverrideCreated).unwrap();
        assert_eq!(json, "attemptOverride.created");
        let back: EventType = serde_json::from_value(json).unwrap();
        assert_eq!(back, EventType::AttemptOverrideCreated);
        let err = serde_json::from_value::<EventType>("nope".into()).unwrap_err();
        assert!(err.to_string().contains(r#"unknown event type "nope""#));
    }
}
