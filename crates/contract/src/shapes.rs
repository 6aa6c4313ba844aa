//! The documented body shape of every event type (EVENTS.md §2), written once as static data.
//!
//! Where the contract names a field without a type, ids, names, titles, urls, emails, free text
//! and timestamps are strings, durations, scores and counts are numbers, and only the truly open
//! ones are `Any`. Field groups (`&[Field]`) exist where one piece comes in several variants.

use crate::EventType;
use crate::shape::{BodyError, Field, Shape, opt, req, validate};
use Shape::{Any, AnyObject, Array, Bool, Number, Object, ObjectOf, String as Str};
use serde_json::Value;

/// Validates a body against the documented shape of its type.
///
/// Only presence and JSON types are checked; unknown fields are always accepted.
///
/// # Errors
///
/// The first mismatch found: [`BodyError::NotAnObject`] for a body that is not an object,
/// [`BodyError::Missing`] for an absent required field, [`BodyError::WrongType`] for a field
/// of the wrong JSON type.
pub fn validate_body(ty: EventType, body: &Value) -> Result<(), BodyError> {
    validate(shape_of(ty), body)
}

fn shape_of(ty: EventType) -> &'static Shape {
    match ty {
        EventType::AttemptSubmitted => &ATTEMPT_SUBMITTED,
        EventType::AttemptCompleted => &ATTEMPT_COMPLETED,
        EventType::AttemptOverrideCreated => &ATTEMPT_OVERRIDE_CREATED,
        EventType::ExamSubmitted => &EXAM_SUBMITTED,
        EventType::ExamCompleted => &EXAM_COMPLETED,
        EventType::UserRegistered => &USER_REGISTERED,
        EventType::UserUpdated => &USER_UPDATED,
        EventType::UserAddedToGroup => &USER_ADDED_TO_GROUP,
        EventType::UserRegisteredForExam => &USER_REGISTERED_FOR_EXAM,
        EventType::AssignmentCompleted => &ASSIGNMENT_COMPLETED,
        EventType::FlagPlanted => &FLAG_PLANTED,
        EventType::StorePurchase => &STORE_PURCHASE,
        EventType::InviteSent => &INVITE_SENT,
    }
}

// ---- Shared pieces -------------------------------------------------------------------------

const STRINGS: Shape = Array(&Str);

const USER_REF: Shape = Object(&[
    req("id", Str),
    req("name", Str),
    req("email", Str),
    // Keys are defined per portal, values are any JSON.
    req("customAttributes", AnyObject),
]);
const PORTAL: Shape = Object(&[req("id", Str)]);
const META: Shape = Object(&[req("timestamp", Str), opt("eventName", Str)]);
/// `meta (eventName = the code)`: for these events the contract promises the name is there.
const NAMED_META: Shape = Object(&[req("timestamp", Str), req("eventName", Str)]);

/// `user, portal, meta`: the opening of most events.
const HEADER: &[Field] = &[req("user", USER_REF), req("portal", PORTAL), req("meta", META)];

const MARKS: Shape = Object(&[
    opt("points", Number),
    opt("maxPoints", Number),
    opt("credits", Number),
    opt("penalties", Number),
]);
const TAGS: Shape = Object(&[
    req("nonFacetTags", STRINGS),
    req("skill", STRINGS),
    req("difficulty", STRINGS),
    req("subtopic", STRINGS),
    req("topic", STRINGS),
    req("subject", STRINGS),
    req("module", STRINGS),
    req("exam", STRINGS),
]);
const SECTION: Shape = Object(&[
    req("sectionId", Str),
    req("responseIds", STRINGS),
    req("isOpen", Bool),
    req("isUnlocked", Bool),
    req("isCompleted", Bool),
    req("totalQuestionsCompleted", Number),
    req("totalQuestionsSkipped", Number),
    req("marks", MARKS),
    req("timeStarted", Str),
    req("timeCompleted", Str),
    req("timeSpentInMs", Number),
    req("score", Number),
    req("scoreFrac", Number),
    req("totalCorrect", Number),
]);
const TEST: Shape = Object(&[req("id", Str), req("title", Str)]);
const CERTIFICATE: Shape = Object(&[req("url", Str), req("certificatePdfPath", Str)]);
/// `{ id?, name? }`: the exam's user group, either part may be missing.
const GROUP_REF: Shape = Object(&[opt("id", Str), opt("name", Str)]);
/// `{ objectId, name }`: moderators, user groups, assignment groups.
const NAMED_OBJECT: Shape = Object(&[req("objectId", Str), req("name", Str)]);

// ---- Attempt: one piece, three variants ------------------------------------------------------

const STATE_COMMON: &[Field] = &[
    req("responseQuestionMap", Array(&STRINGS)),
    req("isRevoked", Bool),
    req("isStarted", Bool),
    req("timeStarted", Str),
    req("timeCompleted", Str),
    req("timeSpentInMs", Number),
];
const SECTIONS: Shape = Object(&[req("items", Array(&SECTION))]);
const RESULTS: Shape = Object(&[req("status", Str), opt("markingStatus", Str), opt("pendingMarks", Number)]);
const STATE_DETAIL: &[Field] = &[opt("sections", SECTIONS), req("results", RESULTS)];
const STATE: Shape = ObjectOf(&[STATE_COMMON, STATE_DETAIL]);
/// attempt.completed: "`attempt.state.results` is just `{ status }` and `sections` is absent",
/// so neither `sections` nor the marking fields are documented (hence not checked) there.
const COMPLETED_STATE: Shape = ObjectOf(&[STATE_COMMON, &[req("results", Object(&[req("status", Str)]))]]);
const DEFERRED: Shape = Object(&[req("locked", Bool)]);
const EXAM_COMPLETED_STATE: Shape = ObjectOf(&[STATE_COMMON, STATE_DETAIL, &[opt("deferred", DEFERRED)]]);

/// Everything in `Attempt` but its `state`, which is what varies between events.
const ATTEMPT_COMMON: &[Field] = &[
    req("id", Str),
    req("isExam", Bool),
    req("score", Number),
    req("scoreFrac", Number),
    req("totalAnsweredCorrectly", Number),
    req("marks", MARKS),
    req("totalQuestions", Number),
    opt("tags", TAGS),
    req("totalAnswered", Number),
    req("timeStarted", Str),
    req("timeCompleted", Str),
    req("timeSpentInMs", Number),
];
const ATTEMPT: Shape = ObjectOf(&[ATTEMPT_COMMON, &[req("state", STATE)]]);
const COMPLETED_ATTEMPT: Shape = ObjectOf(&[ATTEMPT_COMMON, &[req("state", COMPLETED_STATE)]]);
const GRADE: Shape = Object(&[req("label", Str), req("minScore", Number), req("isPass", Bool)]);
const GRADE_CRITERIA: Shape = Object(&[req("grades", Array(&GRADE))]);
const EXAM_COMPLETED_ATTEMPT: Shape = ObjectOf(&[
    ATTEMPT_COMMON,
    &[req("state", EXAM_COMPLETED_STATE), opt("grade", GRADE), opt("gradeCriteria", GRADE_CRITERIA)],
]);

/// The attempt's id and timing, repeated at the top of attempt and exam events.
const ATTEMPT_SUMMARY: &[Field] =
    &[req("id", Str), req("timeStarted", Str), req("timeCompleted", Str), req("timeSpentInMs", Number)];

// ---- Attempt and exam events -----------------------------------------------------------------

/// Decision: the page is cut off; the rest mirrors exam.submitted without `exam`.
const ATTEMPT_SUBMITTED: Shape =
    ObjectOf(&[HEADER, &[req("attempt", ATTEMPT), req("test", TEST)], ATTEMPT_SUMMARY]);
const ATTEMPT_COMPLETED: Shape = ObjectOf(&[
    HEADER,
    &[
        opt("certificate", CERTIFICATE),
        req("attempt", COMPLETED_ATTEMPT),
        req("test", TEST),
        req("score", Number),
        req("scoreFrac", Number),
    ],
    ATTEMPT_SUMMARY,
]);
const OVERRIDE_POINTS: Shape =
    Object(&[req("oldValue", Number), req("newValue", Number), req("isOriginal", Bool)]);
const ATTEMPT_OVERRIDE_CREATED: Shape = Object(&[
    req("user", USER_REF),
    req("portal", PORTAL),
    req("meta", NAMED_META),
    req("actionType", Str),
    req("credits", Number),
    req("penalties", Number),
    req("score", Number),
    req("points", OVERRIDE_POINTS),
    req("exam", Object(&[req("id", Str)])),
    req("attempt", Object(&[req("id", Str), req("user", USER_REF)])),
]);

const EXAM_COMMON: &[Field] =
    &[req("id", Str), req("name", Str), req("resitCount", Number), req("sourceTests", STRINGS)];
/// `{ id, marks }[]`: the contract does not say what `marks` holds.
const SECTION_GRADES: Shape = Array(&SECTION_GRADE);
const SECTION_GRADE: Shape = Object(&[req("id", Str), req("marks", Any)]);
const EXAM_SUBMITTED: Shape = ObjectOf(&[
    HEADER,
    &[
        req("attempt", ATTEMPT),
        req("test", TEST),
        req(
            "exam",
            ObjectOf(&[EXAM_COMMON, &[req("sectionGrades", SECTION_GRADES), req("userGroup", GROUP_REF)]]),
        ),
    ],
    ATTEMPT_SUMMARY,
]);
/// As exam.submitted, with grading on the attempt, `sectionGrades` optional and the user group
/// moved from `exam` to the top level.
const EXAM_COMPLETED: Shape = ObjectOf(&[
    HEADER,
    &[
        req("attempt", EXAM_COMPLETED_ATTEMPT),
        req("test", TEST),
        req("exam", ObjectOf(&[EXAM_COMMON, &[opt("sectionGrades", SECTION_GRADES)]])),
        opt("certificate", CERTIFICATE),
        req("userGroup", GROUP_REF),
    ],
    ATTEMPT_SUMMARY,
]);

// ---- User events -----------------------------------------------------------------------------

/// The flat account fields of user.registered and user.updated (which carry no portal or meta).
const USER_ACCOUNT: &[Field] = &[
    req("objectId", Str),
    req("name", Str),
    req("email", Str),
    req("usergroups", STRINGS),
    req("timeRegistered", Str),
    req("customAttributes", AnyObject),
];
const USER_REGISTERED: Shape = ObjectOf(&[
    USER_ACCOUNT,
    &[opt("subPortalId", Str), opt("preferences", AnyObject), opt("previousValues", AnyObject)],
]);
const PREVIOUS_VALUES: Shape = Object(&[
    opt("name", Str),
    opt("email", Str),
    opt("preferences", Object(&[req("locale", Str)])),
    opt("customAttributes", AnyObject),
]);
const USER_UPDATED: Shape = ObjectOf(&[USER_ACCOUNT, &[req("previousValues", PREVIOUS_VALUES)]]);
/// The group's fields at the top level, the user nested.
const USER_ADDED_TO_GROUP: Shape = Object(&[
    req("portal", PORTAL),
    req("meta", META),
    req("objectId", Str),
    req("name", Str),
    req("totalUsers", Number),
    req("description", Str),
    req("isDefaultGroup", Bool),
    // Undocumented type: an enum-like string in practice, but not promised.
    req("userType", Any),
    req("moderators", Array(&NAMED_OBJECT)),
    req("dateAdded", Str),
    req("user", USER_REF),
]);
const EXAM_SCHEDULE: Shape = Object(&[req("openDate", Str), req("closeDate", Str)]);
/// Decision: `userGroup` is a sibling of `exam`.
const USER_REGISTERED_FOR_EXAM: Shape = ObjectOf(&[
    HEADER,
    &[
        req(
            "exam",
            Object(&[
                req("objectId", Str),
                req("url", Str),
                req("name", Str),
                req("schedule", EXAM_SCHEDULE),
            ]),
        ),
        req("userGroup", NAMED_OBJECT),
    ],
]);

// ---- Other events ----------------------------------------------------------------------------

const ASSIGNMENT_COMPLETED: Shape = ObjectOf(&[
    HEADER,
    &[
        req("assignment", Object(&[req("objectId", Str), req("name", Str), req("status", Str)])),
        req("assignmentGroup", NAMED_OBJECT),
    ],
]);
/// No meta.
const FLAG_PLANTED: Shape = Object(&[
    req("portal", PORTAL),
    req("objectId", Str),
    req("planter", USER_REF),
    req("comment", Str),
    req("createdAt", Str),
    req("question", Object(&[req("objectId", Str), req("stem", Str), req("url", Str)])),
    req("test", Object(&[req("objectId", Str), req("title", Str)])),
]);
const UNLOCK_ACTION: Shape = Object(&[req("type", Str), req("targetId", Str)]);
/// No meta, and a user without `customAttributes`.
const STORE_PURCHASE: Shape = Object(&[
    req("user", Object(&[req("id", Str), req("name", Str), req("email", Str)])),
    req("portal", PORTAL),
    req("objectId", Str),
    req("title", Str),
    req("unlockActions", Array(&UNLOCK_ACTION)),
    req("purchaseMethod", Str),
    req("shortDescription", Str),
    req("purchasedAt", Str),
]);
const INVITE: Shape = Object(&[
    req("objectId", Str),
    req("expiryDate", Str),
    req("inviteEmail", Str),
    req("targetId", Str),
    req("personalMessage", Str),
    req("totalTries", Number),
]);
const INVITE_SENT: Shape =
    Object(&[req("user", USER_REF), req("portal", PORTAL), req("meta", NAMED_META), req("invite", INVITE)]);

/// One step of a path into a body, as a filter reads it: a named field, or any item of an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    Field(&'a str),
    Item,
}

/// Whether a path is part of the documented shape of `ty`'s body. A path that passes through a
/// value the contract leaves open (`customAttributes`, `preferences`, an `Any`) is documented
/// whatever follows, since those keys are defined per portal.
pub fn documents_path(ty: EventType, path: &[Step<'_>]) -> bool {
    let mut shape = shape_of(ty);
    for step in path {
        shape = match (shape, step) {
            (Shape::Any | Shape::AnyObject, _) => return true,
            (Shape::Array(item), Step::Item) => item,
            (Shape::Object(fields), Step::Field(name)) => match find_field(&[fields], name) {
                Some(next) => next,
                None => return false,
            },
            (Shape::ObjectOf(groups), Step::Field(name)) => match find_field(groups, name) {
                Some(next) => next,
                None => return false,
            },
            _ => return false,
        };
    }
    true
}

fn find_field<'s>(groups: &[&'s [Field]], name: &str) -> Option<&'s Shape> {
    groups.iter().flat_map(|fields| fields.iter()).find(|f| f.name == name).map(|f| &f.shape)
}

#[cfg(test)]
mod path_tests {
    use super::*;
    use Step::{Field as F, Item};

    #[test]
    fn documented_paths_follow_the_shapes() {
        let exam = EventType::ExamCompleted;
        assert!(documents_path(exam, &[]));
        assert!(documents_path(exam, &[F("exam"), F("id")]));
        assert!(documents_path(exam, &[F("attempt"), F("scoreFrac")]));
        assert!(documents_path(exam, &[F("attempt"), F("grade"), F("isPass")]));
        assert!(documents_path(
            exam,
            &[F("attempt"), F("state"), F("sections"), F("items"), Item, F("score")]
        ));
        // Per-portal keys: anything below customAttributes.
        assert!(documents_path(exam, &[F("user"), F("customAttributes"), F("department"), F("x")]));
        assert!(!documents_path(exam, &[F("exam"), F("title")]));
        assert!(!documents_path(exam, &[F("exam"), F("id"), F("x")]));
        assert!(!documents_path(exam, &[F("user"), Item]));
        // exam.submitted keeps the user group in `exam`, exam.completed at the top.
        assert!(documents_path(EventType::ExamSubmitted, &[F("exam"), F("userGroup"), F("name")]));
        assert!(!documents_path(exam, &[F("exam"), F("userGroup")]));
        assert!(documents_path(exam, &[F("userGroup"), F("name")]));
        assert!(documents_path(EventType::UserRegistered, &[F("usergroups"), Item]));
        assert!(!documents_path(EventType::UserRegistered, &[F("user")]));
    }
}
