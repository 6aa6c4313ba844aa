//! The filter rules, including what a careless or hostile customer would write.

use chrono::{DateTime, Utc};
use serde_json::json;
use synap_contract::EventType;

use crate::{Bindings, EvalError, Event, Filter, Invalid, limits};

fn refused(source: &str, types: &[EventType]) -> Invalid {
    match Filter::check(source, types) {
        Ok(_) => panic!("accepted: {source}"),
        Err(e) => e,
    }
}

fn eval(source: &str, ty: EventType, data: &serde_json::Value) -> Result<bool, EvalError> {
    let filter = Filter::compile(source).unwrap();
    let at: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
    filter.matches(&Bindings::new(&Event { ty, portal_id: "acme", occurred_at: at, data }))
}

const EXAM: [EventType; 1] = [EventType::ExamCompleted];

#[test]
fn the_readme_examples_pass_and_evaluate() {
    let body = EventType::ExamCompleted.example_body();
    for (source, expected) in [
        (r#"data.exam.id == "exm_1c9a63d2f8" && data.attempt.scoreFrac < 0.9"#, true),
        (r#"data.exam.id == "e_9" && data.attempt.scoreFrac < 0.5"#, false),
        ("data.attempt.grade.isPass", body["attempt"]["grade"]["isPass"].as_bool().unwrap()),
        (r#"type == "exam.completed" && portalId == "acme""#, true),
        (r#"occurredAt > timestamp("2026-01-01T00:00:00Z") && occurredAt.getFullYear() == 2026"#, true),
        (r#"data.user.email.endsWith("@example.com")"#, true),
        (r#"data.user.customAttributes.department == "Cardiology""#, true),
        ("has(data.certificate) || !has(data.certificate)", true),
        ("data.attempt.state.sections.items.exists(s, s.scoreFrac < 0.5)", false),
        ("size(data.exam.sourceTests) >= 1", true),
        (r#"data["addedLater"] == 1"#, false),
        ("data.attempt.score == double(int(data.attempt.score))", true),
    ] {
        let filter = Filter::check(source, &EXAM).unwrap_or_else(|e| panic!("{source}: {e}"));
        let got = filter.matches(&Bindings::new(&Event {
            ty: EventType::ExamCompleted,
            portal_id: "acme",
            occurred_at: "2026-11-27T10:00:00Z".parse().unwrap(),
            data: &body,
        }));
        let want = if source.contains("addedLater") {
            Err(EvalError::MissingField(String::new()))
        } else {
            Ok(expected)
        };
        match (got, want) {
            (Err(EvalError::MissingField(_)), Err(EvalError::MissingField(_))) => {}
            (got, want) => assert_eq!(got, want, "{source}"),
        }
    }
}

#[test]
fn numbers_compare_by_value_whatever_their_json_spelling() {
    let data = json!({ "totalUsers": 3, "score": 80.0, "frac": 0.25 });
    assert_eq!(eval("data.totalUsers == 3", EventType::UserAddedToGroup, &data), Ok(true));
    assert_eq!(eval("data.totalUsers == 3.0", EventType::UserAddedToGroup, &data), Ok(true));
    assert_eq!(eval("data.score == 80", EventType::UserAddedToGroup, &data), Ok(true));
    assert_eq!(eval("data.frac < 1 && data.frac > 0", EventType::UserAddedToGroup, &data), Ok(true));
}

#[test]
fn parse_errors_carry_line_and_column() {
    let e = refused("data.exam.id ==", &EXAM);
    assert_eq!((e.line, e.column), (1, 16), "{e}");
    assert!(e.reason.contains("syntax error"), "{e}");
    let e = refused("data.exam.id == \"x\" &&\n  data.attempt.score >", &EXAM);
    assert_eq!(e.line, 2, "{e}");
    assert!(e.to_string().starts_with("2:"), "{e}");
    let e = refused("data.exam.id == 'unterminated", &EXAM);
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn undocumented_paths_are_refused_where_written() {
    let e = refused("data.exam.id == \"x\" && data.exam.title == \"y\"", &EXAM);
    assert_eq!((e.line, e.column), (1, 24), "{e}");
    assert!(e.reason.contains("data.exam.title is not a documented field of exam.completed"), "{e}");
    // A field of another type.
    let e = refused("data.objectId == \"u\"", &EXAM);
    assert!(e.reason.contains("data.objectId"), "{e}");
    // ... accepted when one of the subscribed types has it.
    assert!(
        Filter::check("data.objectId == \"u\"", &[EventType::ExamCompleted, EventType::UserUpdated]).is_ok()
    );
    let e = refused("data.attempt.state.sections.items[0].nope > 1", &EXAM);
    assert!(e.reason.contains("data.attempt.state.sections.items[…].nope"), "{e}");
    let e = refused("has(data.certificat)", &EXAM);
    assert!(e.reason.contains("data.certificat "), "{e}");
}

#[test]
fn results_must_be_bools_on_every_example() {
    let e = refused("data.exam.id", &EXAM);
    assert!(e.reason.contains("gives a string on the example body of exam.completed"), "{e}");
    let e = refused("data.exam.id > 5", &EXAM);
    assert!(e.reason.contains("fails on the example body of exam.completed"), "{e}");
    let e = refused("1 / 0 == 1", &EXAM);
    assert!(e.reason.contains("fails"), "{e}");
    // Absent on some types is "no match" there, not a refusal.
    assert!(
        Filter::check("data.exam.id == \"x\"", &[EventType::ExamCompleted, EventType::UserUpdated]).is_ok()
    );
}

#[test]
fn unknown_names_are_refused() {
    let e = refused("dat.exam.id == \"x\"", &EXAM);
    assert!(e.reason.contains("unknown variable `dat`"), "{e}");
    assert_eq!((e.line, e.column), (1, 1));
    let e = refused("data.exam.id == \"x\" || exec(\"rm\")", &EXAM);
    assert!(e.reason.contains("unknown function `exec`"), "{e}");
    assert_eq!(e.column, 24, "{e}");
    for bad in [
        "_hidden(1) == 1",
        "dyn(1) == 1",
        "data.exam.id.lowerAscii() == \"x\"",
        "google.protobuf.Value{} == 1",
    ] {
        assert!(Filter::check(bad, &EXAM).is_err(), "{bad}");
    }
    // Not offered: the crate compiles the pattern on every evaluation (docs/BENCHMARKS.md).
    let e = refused("data.user.email.matches(\"^a\")", &EXAM);
    assert!(e.reason.contains("unknown function `matches`"), "{e}");
    // Optional syntax is off.
    assert!(Filter::check("data.?exam == 1", &EXAM).is_err());
}

#[test]
fn every_allowed_function_works() {
    let body = EventType::ExamCompleted.example_body();
    let sources = [
        "size(data.user.name) > 0 && data.user.name.size() > 0",
        "data.user.name.contains(\"a\") && data.user.name.startsWith(\"A\") && data.user.name.endsWith(\"d\")",
        "int(data.attempt.score) >= 0 && uint(1) == 1u && double(1) == 1.0 && string(1) == \"1\" && bool(\"true\")",
        "occurredAt - duration(\"1h\") < occurredAt && timestamp(\"2000-01-01T00:00:00Z\") < occurredAt",
        "occurredAt.getFullYear() >= 2000 && occurredAt.getMonth() == 10 && occurredAt.getDayOfYear() >= 0 \
         && occurredAt.getDayOfMonth() == 26 && occurredAt.getDate() == 27 && occurredAt.getDayOfWeek() >= 0 \
         && occurredAt.getHours() == 10 && occurredAt.getMinutes() == 0 && occurredAt.getSeconds() == 0 \
         && occurredAt.getMilliseconds() == 0",
    ];
    for source in sources {
        assert_eq!(eval(source, EventType::ExamCompleted, &body), Ok(true), "{source}");
    }
    // Read from the allowlist itself, so that a function added there without a case here fails.
    for name in limits::FUNCTIONS {
        assert!(
            sources.iter().any(|source| source.contains(&format!("{name}("))),
            "{name} is allowed but not exercised here"
        );
    }
}

#[test]
fn hostile_sizes_are_refused_without_crashing() {
    let huge = format!("data.exam.id == \"{}\"", "x".repeat(limits::MAX_LEN));
    assert!(refused(&huge, &EXAM).reason.contains("at most 4096"));
    assert!(refused("", &EXAM).reason.contains("empty"));
    assert!(refused("   \n ", &EXAM).reason.contains("empty"));
    assert!(refused("true\0", &EXAM).reason.contains("NUL"));
    // Nesting: parentheses, unary operators, lists and member chains, each as deep as 4 KiB allows.
    for hostile in [
        format!("{}true{}", "(".repeat(2000), ")".repeat(2000)),
        format!("{}true", "!".repeat(4000)),
        format!("{}1 == 1", "-".repeat(4000)),
        format!("{}1{} == []", "[".repeat(2000), "]".repeat(2000)),
        format!("data{} == 1", ".a".repeat(2000)),
        format!("1{} == 1", " + 1".repeat(1000)),
        format!("true{}", " && true".repeat(500)),
        format!("{}1", "size(".repeat(800)),
        format!("data{} == 1", "[0]".repeat(1300)),
    ] {
        let e = Filter::compile(&hostile).err().unwrap_or_else(|| panic!("accepted: {}", &hostile[..40]));
        assert!(e.line >= 1 && e.column >= 1, "{e}");
    }
    // Many terms, shallow: over the node budget.
    let wide = format!("[{}] == []", vec!["1"; 1000].join(","));
    assert!(refused(&wide, &EXAM).reason.contains("too large"));
    // At the text bounds, the worst shapes compile or are refused without exhausting a stack.
    let (nest, ops) = (limits::MAX_NESTING_CHARS, limits::MAX_OPERATOR_CHARS);
    for near in [
        format!("{}1{} == []", "[".repeat(nest - 1), "]".repeat(nest - 1)),
        format!("{}true{}", "(".repeat(nest), ")".repeat(nest)),
        format!("{}true", "!".repeat(nest)),
        format!("{}1 == 1", "-".repeat(nest)),
        format!("{}true", "true ? false : ".repeat(nest)),
        format!("{}1{}", "size(".repeat(nest - 1), ")".repeat(nest - 1)),
        format!("data{} == 1", ".a".repeat(ops - 2)),
        format!("1{} == 1", " + 1".repeat(ops - 2)),
        format!("true{}", " || true".repeat(ops / 2 - 1)),
        format!("1{} == 1", " * 1".repeat(ops - 2)),
    ] {
        let _ = Filter::compile(&near);
    }
    // Strings and comments cannot hide nesting from the bound, however the lexer reads them.
    for hidden in [
        format!(r#"r"\" == "x" || {}true{}"#, "(".repeat(200), ")".repeat(200)),
        format!("true // \"\n || {}true{}", "(".repeat(200), ")".repeat(200)),
        format!(r#""\q{}true{}"#, "(".repeat(200), ")".repeat(200)),
        format!("'''{}'''", "(".repeat(200)),
    ] {
        assert!(Filter::compile(&hidden).unwrap_err().reason.contains("nests too deeply"), "{hidden}");
    }
}

#[test]
fn comprehensions_are_bounded() {
    let e = refused("data.attempt.state.sections.items.map(s, s.score).size() > 1", &EXAM);
    assert!(e.reason.contains("`map` and `filter` are not supported"), "{e}");
    let e = refused("data.attempt.state.sections.items.filter(s, s.score > 1).size() > 1", &EXAM);
    assert!(e.reason.contains("`map` and `filter`"), "{e}");
    let nested = "data.attempt.state.sections.items.exists(s, s.responseIds.exists(r, r == \"x\"))";
    assert!(refused(nested, &EXAM).reason.contains("inside another's"));
    let five = ["data.exam.sourceTests.exists(t, t == \"x\")"; 5].join(" || ");
    assert!(refused(&five, &EXAM).reason.contains("at most 4"));
    let four = ["data.exam.sourceTests.exists(t, t == \"x\")"; 4].join(" || ");
    assert!(Filter::check(&four, &EXAM).is_ok());
    assert!(refused("data.exam.sourceTests.exists(data, data == \"x\")", &EXAM).reason.contains("hides"));
    // One pass over a large list stays cheap.
    let big = json!({ "items": (0..100_000).collect::<Vec<_>>() });
    let started = std::time::Instant::now();
    assert_eq!(eval("data.items.exists(i, i == 99999.0)", EventType::ExamCompleted, &big), Ok(true));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn run_time_failures_are_typed() {
    let body = json!({ "exam": { "id": 5 } });
    assert!(matches!(
        eval("data.attempt.score > 1", EventType::ExamCompleted, &body),
        Err(EvalError::MissingField(_))
    ));
    assert!(matches!(eval("data.exam.id == \"x\"", EventType::ExamCompleted, &body), Ok(false)));
    assert!(matches!(
        eval("data.exam.id.startsWith(\"x\")", EventType::ExamCompleted, &body),
        Err(EvalError::Failed(_))
    ));
    assert!(matches!(eval("data.exam", EventType::ExamCompleted, &body), Err(EvalError::NotBool(_))));
    assert_eq!(EvalError::NotBool("map".into()).kind(), "not_bool");
}

#[test]
fn positions_count_characters_across_lines() {
    let e = refused("\"é\" == \"é\" &&\n   nope", &EXAM);
    assert_eq!((e.line, e.column), (2, 4), "{e}");
}

#[test]
fn the_deepest_accepted_filters_evaluate_on_a_two_mib_stack() {
    // Test threads have 2 MiB stacks, as Tokio's workers do; the router evaluates on those.
    let body = EventType::ExamCompleted.example_body();
    let deep = limits::MAX_DEPTH - 2;
    for source in [
        format!("{}true", "!".repeat(deep)),
        format!("1{} == {}", " + 1".repeat(deep), deep + 1),
        format!("{}1{} == 1", "[".repeat(deep / 2), "][0]".repeat(deep / 2)),
        format!("data.user.customAttributes{} == 1", ".a".repeat(deep - 3)),
        format!("{}true", "true ? false : ".repeat(deep)),
        format!("{}true{}", "(".repeat(limits::MAX_NESTING_CHARS), ")".repeat(limits::MAX_NESTING_CHARS)),
    ] {
        match Filter::compile(&source) {
            Ok(filter) => {
                let at = "2026-11-27T10:00:00Z".parse().unwrap();
                let _ = filter.matches(&Bindings::new(&Event {
                    ty: EventType::ExamCompleted,
                    portal_id: "p",
                    occurred_at: at,
                    data: &body,
                }));
            }
            Err(e) => assert!(e.reason.contains("too"), "{source}: {e}"),
        }
    }
}

/// The examples of the README's Filters section, each with the types it is shown for.
#[test]
fn the_readme_filter_examples_check() {
    use EventType::*;
    let user = [UserRegistered, UserUpdated, UserAddedToGroup, UserRegisteredForExam];
    let cases: [(&str, &[EventType]); 8] = [
        (r#"data.exam.id == "exm_1c9a63d2f8" && data.attempt.scoreFrac < 0.5"#, &[ExamCompleted]),
        (r#"data.attempt.grade.isPass && type == "exam.completed""#, &[ExamSubmitted, ExamCompleted]),
        (r#"data.user.customAttributes.department == "Cardiology""#, &[AttemptCompleted]),
        (r#"data.user.email.endsWith("@example.com") || data.email.endsWith("@example.com")"#, &user),
        ("has(data.certificate)", &[AttemptCompleted, ExamCompleted]),
        ("data.attempt.state.sections.items.exists(s, s.scoreFrac < 0.4)", &[ExamSubmitted]),
        ("occurredAt.getDayOfWeek() == 1 && data.attempt.timeSpentInMs > 3600000", &[ExamCompleted]),
        (r#"data["addedLater"] == "x""#, &[InviteSent]),
    ];
    let readme = include_str!("../../../README.md");
    for (source, types) in cases {
        assert!(readme.contains(source), "not in the README: {source}");
        Filter::check(source, types).unwrap_or_else(|e| panic!("{source}: {e}"));
    }
    // The `||` example matches every user type whichever side holds the address.
    for ty in user {
        let body = ty.example_body();
        let at = "2026-11-27T10:00:00Z".parse().unwrap();
        let got = Filter::compile(cases[3].0).unwrap().matches(&Bindings::new(&Event {
            ty,
            portal_id: "p",
            occurred_at: at,
            data: &body,
        }));
        assert_eq!(got, Ok(true), "{ty}");
    }
}
