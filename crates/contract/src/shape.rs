//! A tiny schema language for the documented body shapes, and the validator that checks a JSON
//! value against one.
//!
//! It checks JSON types and presence only: the contract (EVENTS.md §3) dead-letters a body with
//! "a documented field with the wrong JSON type", never one carrying fields we do not know,
//! because the platform adds fields over time and those must be delivered unchanged.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Why a body does not match the documented shape of its event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body itself is not a JSON object.
    #[error("body is not a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("missing required field `{path}`")]
    Missing {
        /// Dotted path from the body root, e.g. `moderators[0].name`.
        path: String,
    },
    /// A documented field holds another JSON type (a required `null` included).
    #[error("field `{path}` must be {expected}, found {found}")]
    WrongType {
        /// Dotted path from the body root, e.g. `attempt.state.sections.items[2].marks.points`.
        path: String,
        /// The documented type: "a string", "a number", "a boolean", "an object", "an array".
        expected: &'static str,
        /// The type found, in the same words, or "null".
        found: &'static str,
    },
}

/// The documented JSON type of one value.
#[derive(Debug)]
pub(crate) enum Shape {
    String,
    Number,
    Bool,
    /// An object whose keys are not documented (e.g. `customAttributes`, defined per portal).
    AnyObject,
    /// A value whose type the contract leaves open; accepted whatever it is, `null` included.
    Any,
    Array(&'static Shape),
    /// An object with these documented fields; undocumented fields are allowed.
    Object(&'static [Field]),
    /// An object whose documented fields come from several groups, so that the variants of a
    /// shared piece (the attempt of `attempt.completed` vs `exam.completed`) reuse its common
    /// fields instead of restating them.
    ObjectOf(&'static [&'static [Field]]),
}

/// One documented field of an object.
#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub shape: Shape,
    /// `T?` in the contract: may be absent or `null`.
    pub optional: bool,
}

/// A required field.
pub(crate) const fn req(name: &'static str, shape: Shape) -> Field {
    Field { name, shape, optional: false }
}

/// An optional field (`T?`).
pub(crate) const fn opt(name: &'static str, shape: Shape) -> Field {
    Field { name, shape, optional: true }
}

/// Validates a whole body, which must be a JSON object.
pub(crate) fn validate(shape: &Shape, body: &Value) -> Result<(), BodyError> {
    if !body.is_object() {
        return Err(BodyError::NotAnObject);
    }
    // One growing buffer for the dotted path; it is cloned only into an error.
    check(shape, body, &mut String::new())
}

fn check(shape: &Shape, value: &Value, path: &mut String) -> Result<(), BodyError> {
    match (shape, value) {
        (Shape::Any, _)
        | (Shape::String, Value::String(_))
        | (Shape::Number, Value::Number(_))
        | (Shape::Bool, Value::Bool(_))
        | (Shape::AnyObject, Value::Object(_)) => Ok(()),
        (Shape::Array(item), Value::Array(items)) => {
            for (index, element) in items.iter().enumerate() {
                let len = path.len();
                // Writing to a String cannot fail.
                let _ = write!(path, "[{index}]");
                check(item, element, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        (Shape::Object(fields), Value::Object(map)) => check_fields(fields, map, path),
        (Shape::ObjectOf(groups), Value::Object(map)) => {
            groups.iter().try_for_each(|fields| check_fields(fields, map, path))
        }
        _ => Err(BodyError::WrongType {
            path: path.clone(),
            expected: shape.expected(),
            found: json_kind(value),
        }),
    }
}

fn check_fields(fields: &[Field], map: &Map<String, Value>, path: &mut String) -> Result<(), BodyError> {
    for field in fields {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field.name);
        match map.get(field.name) {
            None | Some(Value::Null) if field.optional => {}
            None => return Err(BodyError::Missing { path: path.clone() }),
            Some(value) => check(&field.shape, value, path)?,
        }
        path.truncate(len);
    }
    Ok(())
}

impl Shape {
    fn expected(&self) -> &'static str {
        match self {
            Shape::String => "a string",
            Shape::Number => "a number",
            Shape::Bool => "a boolean",
            Shape::AnyObject | Shape::Object(_) | Shape::ObjectOf(_) => "an object",
            Shape::Array(_) => "an array",
            // `check` accepts every value for `Any`, so this is never reported.
            Shape::Any => "any value",
        }
    }
}

/// What kind of JSON value `value` is, as an error message names it ("a number", "an array").
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POINT: Shape = Shape::Object(&[req("x", Shape::Number), opt("label", Shape::String)]);
    const LINE: Shape = Shape::Object(&[
        req("points", Shape::Array(&POINT)),
        req("grid", Shape::Array(&Shape::Array(&Shape::Bool))),
        opt("extra", Shape::Any),
    ]);

    fn wrong(path: &str, expected: &'static str, found: &'static str) -> BodyError {
        BodyError::WrongType { path: path.into(), expected, found }
    }

    #[test]
    fn reports_paths_with_array_indices() {
        let body = json!({ "points": [{ "x": 1 }, { "x": "2" }], "grid": [] });
        assert_eq!(validate(&LINE, &body), Err(wrong("points[1].x", "a number", "a string")));
        let body = json!({ "points": [], "grid": [[true], [false, null]] });
        assert_eq!(validate(&LINE, &body), Err(wrong("grid[1][1]", "a boolean", "null")));
        let body = json!({ "points": [{ "x": 1 }, {}], "grid": [] });
        assert_eq!(validate(&LINE, &body), Err(BodyError::Missing { path: "points[1].x".into() }));
    }

    #[test]
    fn optional_may_be_absent_or_null_but_not_mistyped() {
        let ok = json!({ "points": [{ "x": 1, "label": null }, { "x": 2 }], "grid": [] });
        assert_eq!(validate(&LINE, &ok), Ok(()));
        let bad = json!({ "points": [{ "x": 1, "label": 7 }], "grid": [] });
        assert_eq!(validate(&LINE, &bad), Err(wrong("points[0].label", "a string", "a number")));
    }

    #[test]
    fn any_accepts_every_value_and_unknown_fields_pass() {
        for extra in [json!(null), json!("s"), json!([1]), json!({ "a": 1 })] {
            let body = json!({ "points": [{ "x": 1, "new": [] }], "grid": [], "extra": extra, "z": 1 });
            assert_eq!(validate(&LINE, &body), Ok(()));
        }
    }

    #[test]
    fn required_null_is_wrong_type() {
        let body = json!({ "points": null, "grid": [] });
        assert_eq!(validate(&LINE, &body), Err(wrong("points", "an array", "null")));
    }

    #[test]
    fn root_must_be_an_object() {
        for body in [json!(null), json!([]), json!("x"), json!(1)] {
            assert_eq!(validate(&LINE, &body), Err(BodyError::NotAnObject));
        }
    }

    #[test]
    fn error_messages_match_the_api() {
        assert_eq!(
            wrong("a.b[0]", "a string", "null").to_string(),
            "field `a.b[0]` must be a string, found null"
        );
        assert_eq!(BodyError::Missing { path: "a".into() }.to_string(), "missing required field `a`");
        assert_eq!(BodyError::NotAnObject.to_string(), "body is not a JSON object");
    }
}
