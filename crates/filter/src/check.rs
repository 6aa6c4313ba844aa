//! The check against the contract, for a subscription to some event types. CEL's type checker
//! is not in the `cel` crate, so this one checks what users get wrong in practice:
//!
//! 1. **Paths.** Every path the filter reads from `data` with field syntax (`data.exam.id`,
//!    `data.attempt.state.sections.items[0].score`, `has(data.certificate)`) must be in the
//!    documented body shape (EVENTS.md §2) of at least one of the subscription's types: a typo
//!    or a field of another type is refused where it is written. Below a value whose keys are
//!    per portal (`customAttributes`, `preferences`) anything goes. Index syntax with a string,
//!    `data["newField"]`, is not checked: it reads fields the platform added after the
//!    contract was written. Paths through a comprehension variable (`m.name` in
//!    `data.moderators.exists(m, m.name == "x")`) are checked by step 2 only.
//! 2. **Results.** On the example body of each type (`ListEventTypes`), the filter must give a
//!    bool or fail only because a field is absent (a filter over `exam.*` fields on a subscription
//!    that also lists `user.*` types is fine: it does not match those). Any other outcome, such as a
//!    string result or comparing a string with a number, is refused, naming the type.

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue, operators};
use chrono::{DateTime, Utc};
use synap_contract::{EventType, Step};

use crate::walk::{self, Place};
use crate::{Bindings, EvalError, Event, Filter, Invalid};

/// The portal id and time the example events carry.
const EXAMPLE_PORTAL: &str = "prt_7d41e2c9";
const EXAMPLE_TIME: &str = "2026-11-27T10:00:00Z";

/// Checks `filter` for a subscription to `types` (wildcards already expanded).
pub fn against(filter: &Filter, types: &[EventType]) -> Result<(), Invalid> {
    paths(filter, types)?;
    for ty in types {
        let data = ty.example_body();
        match filter.matches(&Bindings::new(&example(*ty, &data))) {
            Ok(_) | Err(EvalError::MissingField(_)) => {}
            Err(EvalError::NotBool(kind)) => {
                return Err(Invalid {
                    line: 1,
                    column: 1,
                    reason: format!("gives a {kind} on the example body of {ty}; a filter must give a bool"),
                });
            }
            Err(EvalError::Failed(why)) => {
                return Err(Invalid {
                    line: 1,
                    column: 1,
                    reason: format!("fails on the example body of {ty}: {why}"),
                });
            }
        }
    }
    Ok(())
}

/// The event TestFilter and the check evaluate: the example body of `ty` for the example portal.
pub fn example<'a>(ty: EventType, data: &'a serde_json::Value) -> Event<'a> {
    Event { ty, portal_id: EXAMPLE_PORTAL, occurred_at: example_time(), data }
}

fn example_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(EXAMPLE_TIME).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn paths(filter: &Filter, types: &[EventType]) -> Result<(), Invalid> {
    let source = filter.source();
    walk::each(&filter.expr, &mut |node: &IdedExpr, place: &Place<'_>| {
        let Some((root, path)) = data_path(node, place.scope) else { return Ok(()) };
        if types.iter().any(|ty| synap_contract::documents_path(*ty, &path)) {
            return Ok(());
        }
        let shown = show(&path);
        let names: Vec<&str> = types.iter().map(|t| t.code()).collect();
        Err(Invalid::at(
            source,
            // At the path's start (`data`), where the reader looks for it.
            filter.offset_of(root),
            format!("{shown} is not a documented field of {}", names.join(", ")),
        ))
    })
}

/// The path a node reads from `data` with field or item syntax, if it is one, and the id of
/// its `data` node.
fn data_path<'e>(node: &'e IdedExpr, scope: &[&str]) -> Option<(u64, Vec<Step<'e>>)> {
    let mut steps = Vec::new();
    let mut at = node;
    loop {
        match &at.expr {
            Expr::Ident(name) if name == "data" && !scope.contains(&"data") => break,
            Expr::Select(select) => {
                steps.push(Step::Field(&select.field));
                at = &select.operand;
            }
            Expr::Call(call) if call.func_name == operators::INDEX && call.args.len() == 2 => {
                match &call.args[1].expr {
                    // `data["x"]`: explicitly dynamic, not checked (see the module's docs).
                    Expr::Literal(LiteralValue::String(_)) => return None,
                    _ => steps.push(Step::Item),
                }
                at = &call.args[0];
            }
            _ => return None,
        }
    }
    if steps.is_empty() {
        return None;
    }
    steps.reverse();
    Some((at.id, steps))
}

fn show(path: &[Step<'_>]) -> String {
    let mut out = String::from("data");
    for step in path {
        match step {
            Step::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Step::Item => out.push_str("[…]"),
        }
    }
    out
}
