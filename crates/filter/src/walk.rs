//! A read-only walk over a parsed expression: every node once, with its depth and the
//! comprehension variables in scope.

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr};

/// Where a node sits.
pub(crate) struct Place<'a> {
    pub depth: usize,
    /// Comprehension variables in scope (innermost last).
    pub scope: &'a [&'a str],
    /// How many comprehensions' loops (condition, step) enclose the node.
    pub loops: usize,
}

/// Calls `visit` on every node, parents first; stops at the first error.
pub(crate) fn each<'e, E>(
    expr: &'e IdedExpr,
    visit: &mut impl FnMut(&'e IdedExpr, &Place<'_>) -> Result<(), E>,
) -> Result<(), E> {
    go(expr, &Place { depth: 1, scope: &[], loops: 0 }, visit)
}

fn go<'e, E>(
    expr: &'e IdedExpr,
    place: &Place<'_>,
    visit: &mut impl FnMut(&'e IdedExpr, &Place<'_>) -> Result<(), E>,
) -> Result<(), E> {
    visit(expr, place)?;
    let child = Place { depth: place.depth + 1, scope: place.scope, loops: place.loops };
    match &expr.expr {
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Ok(()),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                go(target, &child, visit)?;
            }
            call.args.iter().try_for_each(|a| go(a, &child, visit))
        }
        Expr::List(list) => list.elements.iter().try_for_each(|e| go(e, &child, visit)),
        Expr::Select(select) => go(&select.operand, &child, visit),
        Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(e) => {
                go(&e.key, &child, visit)?;
                go(&e.value, &child, visit)
            }
            EntryExpr::StructField(f) => go(&f.value, &child, visit),
        }),
        Expr::Struct(s) => s.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(e) => {
                go(&e.key, &child, visit)?;
                go(&e.value, &child, visit)
            }
            EntryExpr::StructField(f) => go(&f.value, &child, visit),
        }),
        Expr::Comprehension(c) => {
            go(&c.iter_range, &child, visit)?;
            go(&c.accu_init, &child, visit)?;
            let mut scope: Vec<&str> = place.scope.to_vec();
            scope.push(&c.iter_var);
            if let Some(second) = &c.iter_var2 {
                scope.push(second);
            }
            scope.push(&c.accu_var);
            let inner = Place { depth: place.depth + 1, scope: &scope, loops: place.loops + 1 };
            go(&c.loop_cond, &inner, visit)?;
            go(&c.loop_step, &inner, visit)?;
            let result = Place { depth: place.depth + 1, scope: &scope, loops: place.loops };
            go(&c.result, &result, visit)
        }
    }
}
