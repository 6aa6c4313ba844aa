//! Body validation against the contract, starting from each type's example body and breaking
//! one thing at a time. Locations are JSON Pointers; the expected error paths are dotted.

use crate::{BodyError, EventType, validate_body};
use serde_json::{Value, json};

use EventType::*;

/// The example body of `ty` with `change` applied to the value at `pointer`.
fn changed(ty: EventType, pointer: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut body = ty.example_body();
    change(body.pointer_mut(pointer).unwrap_or_else(|| panic!("{ty}: example has no {pointer}")));
    body
}

/// The example body of `ty` without the field `pointer`.
fn without(ty: EventType, pointer: &str) -> Value {
    let (parent, name) = pointer.rsplit_once('/').expect("a pointer");
    changed(ty, parent, |value| {
        let removed = value.as_object_mut().and_then(|map| map.remove(name));
        assert!(removed.is_some(), "{ty}: example has no {pointer}");
    })
}

/// The example body of `ty` with the value at `pointer` replaced.
fn with(ty: EventType, pointer: &str, value: Value) -> Value {
    changed(ty, pointer, |slot| *slot = value)
}

fn missing(path: &str) -> Result<(), BodyError> {
    Err(BodyError::Missing { path: path.into() })
}

fn wrong(path: &str, expected: &'static str, found: &'static str) -> Result<(), BodyError> {
    Err(BodyError::WrongType { path: path.into(), expected, found })
}

#[test]
fn every_example_body_validates() {
    for ty in EventType::ALL {
        assert_eq!(validate_body(ty, &ty.example_body()), Ok(()), "{ty}");
    }
}

#[test]
fn meta_names_the_event_in_examples() {
    for ty in EventType::ALL {
        if let Some(name) = ty.example_body().pointer("/meta/eventName") {
            assert_eq!(name, ty.code());
        }
    }
}

#[test]
fn non_object_bodies_are_rejected() {
    for body in [json!(null), json!([{}]), json!("{}"), json!(42), json!(true)] {
        assert_eq!(validate_body(AttemptSubmitted, &body), Err(BodyError::NotAnObject));
        assert_eq!(validate_body(UserRegistered, &body), Err(BodyError::NotAnObject));
    }
}

#[test]
fn a_missing_required_field_is_reported_with_its_path() {
    let cases = [
        (AttemptSubmitted, "/portal", "portal"),
        (AttemptSubmitted, "/user/customAttributes", "user.customAttributes"),
        (AttemptSubmitted, "/attempt/state/results/status", "attempt.state.results.status"),
        (ExamSubmitted, "/attempt/state/sections/items/1/marks", "attempt.state.sections.items[1].marks"),
        (ExamSubmitted, "/exam/userGroup", "exam.userGroup"),
        (ExamSubmitted, "/exam/sectionGrades/0/marks", "exam.sectionGrades[0].marks"),
        (ExamCompleted, "/userGroup", "userGroup"),
        (ExamCompleted, "/attempt/grade/isPass", "attempt.grade.isPass"),
        (AttemptCompleted, "/score", "score"),
        (UserAddedToGroup, "/moderators/0/name", "moderators[0].name"),
        (UserAddedToGroup, "/userType", "userType"),
        (UserUpdated, "/previousValues", "previousValues"),
        (UserRegisteredForExam, "/exam/schedule/closeDate", "exam.schedule.closeDate"),
        (FlagPlanted, "/question/stem", "question.stem"),
        (StorePurchase, "/unlockActions/1/type", "unlockActions[1].type"),
        (InviteSent, "/meta/eventName", "meta.eventName"),
        (AttemptOverrideCreated, "/meta/eventName", "meta.eventName"),
    ];
    for (ty, pointer, path) in cases {
        assert_eq!(validate_body(ty, &without(ty, pointer)), missing(path), "{ty} {pointer}");
    }
}

#[test]
fn a_wrongly_typed_field_is_reported_with_its_path() {
    let cases = [
        (AttemptSubmitted, "/timeSpentInMs", json!("2483000"), "timeSpentInMs", "a number", "a string"),
        (AttemptSubmitted, "/portal", json!("prt_7d41e2c9"), "portal", "an object", "a string"),
        (AttemptSubmitted, "/attempt/isExam", json!("false"), "attempt.isExam", "a boolean", "a string"),
        (
            AttemptSubmitted,
            "/attempt/state/sections/items/1/marks/points",
            json!("13"),
            "attempt.state.sections.items[1].marks.points",
            "a number",
            "a string",
        ),
        (
            ExamSubmitted,
            "/attempt/state/responseQuestionMap/0/1",
            json!(7),
            "attempt.state.responseQuestionMap[0][1]",
            "a string",
            "a number",
        ),
        (
            ExamSubmitted,
            "/exam/sourceTests",
            json!("tst_52b8e0f4c1"),
            "exam.sourceTests",
            "an array",
            "a string",
        ),
        (
            ExamCompleted,
            "/attempt/state/deferred/locked",
            json!(0),
            "attempt.state.deferred.locked",
            "a boolean",
            "a number",
        ),
        (
            ExamCompleted,
            "/attempt/gradeCriteria/grades/2/minScore",
            json!(null),
            "attempt.gradeCriteria.grades[2].minScore",
            "a number",
            "null",
        ),
        (UserRegistered, "/usergroups/0", json!(12), "usergroups[0]", "a string", "a number"),
        (UserRegistered, "/customAttributes", json!([]), "customAttributes", "an object", "an array"),
        (
            UserUpdated,
            "/previousValues/preferences/locale",
            json!(false),
            "previousValues.preferences.locale",
            "a string",
            "a boolean",
        ),
        (
            UserAddedToGroup,
            "/moderators/1/objectId",
            json!({}),
            "moderators[1].objectId",
            "a string",
            "an object",
        ),
        (
            StorePurchase,
            "/unlockActions/0/targetId",
            json!(42),
            "unlockActions[0].targetId",
            "a string",
            "a number",
        ),
        (InviteSent, "/invite/totalTries", json!(null), "invite.totalTries", "a number", "null"),
        (FlagPlanted, "/planter/email", json!(null), "planter.email", "a string", "null"),
    ];
    for (ty, pointer, value, path, expected, found) in cases {
        assert_eq!(
            validate_body(ty, &with(ty, pointer, value)),
            wrong(path, expected, found),
            "{ty} {pointer}"
        );
    }
}

#[test]
fn unknown_fields_are_accepted_everywhere() {
    let cases = [
        (AttemptSubmitted, ""),
        (AttemptSubmitted, "/attempt/state/results"),
        (AttemptSubmitted, "/attempt/state/sections/items/0"),
        (ExamCompleted, "/exam"),
        (UserAddedToGroup, "/moderators/1"),
        (UserRegistered, ""),
        (StorePurchase, "/user"),
        (InviteSent, "/meta"),
    ];
    for (ty, pointer) in cases {
        let body = changed(ty, pointer, |object| {
            object["addedByPlatformLater"] = json!({ "any": ["shape", 1, null] });
            object["alsoNew"] = json!(null);
        });
        assert_eq!(validate_body(ty, &body), Ok(()), "{ty} {pointer}");
    }
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let cases = [
        (AttemptSubmitted, "/meta/eventName"),
        (AttemptSubmitted, "/attempt/tags"),
        (AttemptSubmitted, "/attempt/state/sections"),
        (AttemptSubmitted, "/attempt/state/results/markingStatus"),
        (AttemptSubmitted, "/attempt/marks/maxPoints"),
        (AttemptCompleted, "/certificate"),
        (ExamCompleted, "/attempt/grade"),
        (ExamCompleted, "/attempt/gradeCriteria"),
        (ExamCompleted, "/attempt/state/deferred"),
        (ExamCompleted, "/exam/sectionGrades"),
        (ExamCompleted, "/userGroup/id"),
        (ExamSubmitted, "/exam/userGroup/name"),
        (UserRegistered, "/subPortalId"),
        (UserRegistered, "/preferences"),
        (UserUpdated, "/previousValues/name"),
        (UserUpdated, "/previousValues/preferences"),
    ];
    for (ty, pointer) in cases {
        assert_eq!(validate_body(ty, &without(ty, pointer)), Ok(()), "{ty} {pointer} absent");
        let nulled = with(ty, pointer, Value::Null);
        assert_eq!(validate_body(ty, &nulled), Ok(()), "{ty} {pointer} null");
    }
}

#[test]
fn open_fields_take_any_value() {
    for value in [json!(null), json!("16/20"), json!(16), json!([16, 20]), json!({ "points": 16 })] {
        let body = with(ExamSubmitted, "/exam/sectionGrades/0/marks", value.clone());
        assert_eq!(validate_body(ExamSubmitted, &body), Ok(()));
        let body = with(UserAddedToGroup, "/userType", value);
        assert_eq!(validate_body(UserAddedToGroup, &body), Ok(()));
    }
    let body = with(UserRegistered, "/customAttributes", json!({ "a": [1], "b": null, "c": { "d": true } }));
    assert_eq!(validate_body(UserRegistered, &body), Ok(()));
}

#[test]
fn event_variants_of_the_attempt_differ_as_documented() {
    // attempt.completed: results are only `{ status }`, sections undocumented (so not checked).
    let body = with(AttemptCompleted, "/attempt/state/results", json!({ "status": "completed" }));
    assert_eq!(validate_body(AttemptCompleted, &body), Ok(()));
    let body = changed(AttemptCompleted, "/attempt/state", |state| {
        state["sections"] = json!("not described for this event");
    });
    assert_eq!(validate_body(AttemptCompleted, &body), Ok(()));

    // exam.submitted requires what exam.completed makes optional or moves.
    let body = without(ExamSubmitted, "/exam/sectionGrades");
    assert_eq!(validate_body(ExamSubmitted, &body), missing("exam.sectionGrades"));
    let body = ExamCompleted.example_body();
    assert_eq!(body.pointer("/exam/userGroup"), None);
    assert_eq!(validate_body(ExamSubmitted, &body), missing("exam.userGroup"));

    // store.purchase's user has no customAttributes; every other user does.
    assert_eq!(validate_body(StorePurchase, &StorePurchase.example_body()), Ok(()));
    let body = without(InviteSent, "/user/customAttributes");
    assert_eq!(validate_body(InviteSent, &body), missing("user.customAttributes"));
}

#[test]
fn flat_user_events_carry_no_portal_or_meta() {
    for ty in [UserRegistered, UserUpdated] {
        let body = ty.example_body();
        assert!(body.get("portal").is_none() && body.get("meta").is_none());
        assert_eq!(validate_body(ty, &body), Ok(()));
    }
    for ty in [FlagPlanted, StorePurchase] {
        assert!(ty.example_body().get("meta").is_none(), "{ty}");
    }
}
