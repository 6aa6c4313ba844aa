//! What a subscription's `event_types` entry may be: an exact code, a group wildcard (`user.*`:
//! every type whose code starts with `user.`, today's and those added later) or `*` (every
//! type). A group is the part of a code before its first dot, as in EVENTS.md §1.
//!
//! Wildcards are resolved when an event is matched, never stored expanded, so a type added to
//! the contract reaches the subscriptions of its group without an edit to any of them.

use crate::EventType;

/// One entry of a subscription's `event_types`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TypePattern {
    /// One type.
    Exact(EventType),
    /// Every type of a group, e.g. `user.*`; holds the group (`user`).
    Group(&'static str),
    /// `*`: every type.
    All,
}

/// Why an `event_types` entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("unknown event type group {group:?} in {pattern:?}; groups are {known}")]
    UnknownGroup { pattern: String, group: String, known: String },
    #[error("malformed pattern {0:?}: a wildcard is `*` or a group followed by `.*` (e.g. `user.*`)")]
    Malformed(String),
}

/// The groups of the current types, in table order, each once.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for ty in EventType::ALL {
        let group = ty.group();
        if !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

impl EventType {
    /// The part of the code before its first dot: `user` for `user.addedToGroup`.
    #[must_use]
    pub fn group(self) -> &'static str {
        let code = self.code();
        code.split_once('.').map_or(code, |(group, _)| group)
    }
}

impl TypePattern {
    /// Reads one entry: `*`, `<group>.*` or an exact, case-sensitive code.
    pub fn parse(text: &str) -> Result<TypePattern, PatternError> {
        if text == "*" {
            return Ok(TypePattern::All);
        }
        if let Some(ty) = EventType::from_code(text) {
            return Ok(TypePattern::Exact(ty));
        }
        if !text.contains('*') {
            return Err(PatternError::UnknownType(text.to_owned()));
        }
        // The one wildcard form besides `*`: a group, a dot, a star, at the end and only there.
        let Some(group) = text.strip_suffix(".*").filter(|g| !g.is_empty() && !g.contains(['*', '.'])) else {
            return Err(PatternError::Malformed(text.to_owned()));
        };
        match groups().into_iter().find(|g| *g == group) {
            Some(known) => Ok(TypePattern::Group(known)),
            None => Err(PatternError::UnknownGroup {
                pattern: text.to_owned(),
                group: group.to_owned(),
                known: groups().join(", "),
            }),
        }
    }

    /// Whether an event of type `ty` is one this entry asks for.
    #[must_use]
    pub fn covers(self, ty: EventType) -> bool {
        match self {
            TypePattern::Exact(exact) => exact == ty,
            TypePattern::Group(group) => ty.group() == group,
            TypePattern::All => true,
        }
    }

    /// The current types this entry covers, in table order.
    #[must_use]
    pub fn types(self) -> Vec<EventType> {
        EventType::ALL.into_iter().filter(|ty| self.covers(*ty)).collect()
    }

    /// Whether this entry is a wildcard (covers types not named in it).
    #[must_use]
    pub fn is_wildcard(self) -> bool {
        !matches!(self, TypePattern::Exact(_))
    }

    /// The entry as stored and shown: the code, `group.*` or `*`.
    #[must_use]
    pub fn text(self) -> String {
        match self {
            TypePattern::Exact(ty) => ty.code().to_owned(),
            TypePattern::Group(group) => format!("{group}.*"),
            TypePattern::All => "*".to_owned(),
        }
    }
}

/// Whether stored entries (as written by control) cover `ty`. An entry that does not parse (a
/// row written by hand, or by a later release with a pattern this one does not know) covers
/// nothing: it never widens what a subscription receives.
///
/// The router calls this for every subscription of a portal on every event, so it compares
/// without parsing or allocating: an entry covers `ty` when it is its code, `*`, or its group
/// followed by `.*`, which is exactly what [`TypePattern::parse`] accepts and covers.
pub fn any_covers(entries: &[String], ty: EventType) -> bool {
    entries
        .iter()
        .any(|e| e == ty.code() || e == "*" || e.strip_suffix(".*").is_some_and(|group| group == ty.group()))
}

/// The current types stored entries cover, in table order, each once.
pub fn covered_types(entries: &[String]) -> Vec<EventType> {
    EventType::ALL.into_iter().filter(|ty| any_covers(entries, *ty)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_group_and_all() {
        assert_eq!(TypePattern::parse("user.updated"), Ok(TypePattern::Exact(EventType::UserUpdated)));
        assert_eq!(TypePattern::parse("user.*"), Ok(TypePattern::Group("user")));
        assert_eq!(TypePattern::parse("attemptOverride.*"), Ok(TypePattern::Group("attemptOverride")));
        assert_eq!(TypePattern::parse("*"), Ok(TypePattern::All));
        let user = TypePattern::Group("user").types();
        assert_eq!(
            user,
            [
                EventType::UserRegistered,
                EventType::UserUpdated,
                EventType::UserAddedToGroup,
                EventType::UserRegisteredForExam
            ]
        );
        // `attempt.*` is not `attemptOverride.*`: groups compare whole.
        assert_eq!(
            TypePattern::Group("attempt").types(),
            [EventType::AttemptSubmitted, EventType::AttemptCompleted]
        );
        assert_eq!(TypePattern::All.types().len(), 13);
        for p in ["user.updated", "user.*", "*"] {
            assert_eq!(TypePattern::parse(p).unwrap().text(), p);
        }
    }

    #[test]
    fn malformed_and_unknown_are_refused() {
        for bad in ["us*", "user.**", "*.x", "**", "user*", ".*", "user.*.*", "*user", "user.a*", "*.*"] {
            assert!(
                matches!(TypePattern::parse(bad), Err(PatternError::Malformed(_))),
                "{bad}: {:?}",
                TypePattern::parse(bad)
            );
        }
        assert!(matches!(TypePattern::parse("foo.*"), Err(PatternError::UnknownGroup { .. })));
        assert!(matches!(TypePattern::parse("User.*"), Err(PatternError::UnknownGroup { .. })));
        assert_eq!(TypePattern::parse("user.Updated"), Err(PatternError::UnknownType("user.Updated".into())));
        assert_eq!(TypePattern::parse(""), Err(PatternError::UnknownType(String::new())));
        let message = TypePattern::parse("foo.*").unwrap_err().to_string();
        assert!(message.contains("\"foo\"") && message.contains("user, assignment"), "{message}");
    }

    #[test]
    fn the_fast_check_agrees_with_parsing() {
        let entries = [
            "*",
            "user.*",
            "attempt.*",
            "attemptOverride.*",
            "store.*",
            "us*",
            "user.**",
            "*.*",
            "*.x",
            ".*",
            "user.updated",
            "User.*",
            "foo.*",
            "user",
            "",
            "user.*.*",
        ];
        for entry in entries {
            for ty in EventType::ALL {
                let parsed = TypePattern::parse(entry).is_ok_and(|p| p.covers(ty));
                assert_eq!(any_covers(&[entry.to_owned()], ty), parsed, "{entry} {ty}");
            }
        }
    }

    #[test]
    fn stored_entries() {
        let entries = vec!["user.*".to_owned(), "store.purchase".to_owned(), "garbage*".to_owned()];
        assert!(any_covers(&entries, EventType::UserAddedToGroup));
        assert!(any_covers(&entries, EventType::StorePurchase));
        assert!(!any_covers(&entries, EventType::AttemptCompleted));
        assert_eq!(covered_types(&["*".to_owned()]).len(), 13);
        assert!(covered_types(&["nope.*".to_owned()]).is_empty());
    }
}
