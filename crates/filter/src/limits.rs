//! What any filter must respect, whatever the event: bounds on its size and on what it can
//! cost to evaluate, and the names it may use.
//!
//! The `cel` crate has no cost limit, so cost is bounded by construction. Without loops, an
//! expression's work is proportional to its size times the size of the values it touches; the
//! only loops are the comprehension macros, so: at most [`MAX_COMPREHENSIONS`], none inside
//! another's loop (no quadratic walks over a body), and no `map` or `filter`, whose list
//! accumulator is copied on every step (quadratic in the list's length). `all`, `exists` and
//! `exists_one` carry a bool or a count, so each costs one pass over its list. With bodies
//! bounded by ingest's `max_body_bytes`, every filter then runs in time linear in its event.

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue, SourceInfo};

use crate::walk::{self, Place};
use crate::{Invalid, VARIABLES};

/// The longest filter, in bytes.
pub const MAX_LEN: usize = 4096;
/// The deepest expression tree (`a && b` is 2 deep; a path `data.a.b.c` is 4).
pub const MAX_DEPTH: usize = 32;
/// The most nodes in the expression tree, macro expansions included.
pub const MAX_NODES: usize = 512;
/// The most comprehension macros (`all`, `exists`, `exists_one`) in one filter.
pub const MAX_COMPREHENSIONS: usize = 4;
/// The most characters that can open a level of the parser's recursion (`( [ { ! - ?`), counted
/// anywhere in the text, string literals and comments included. The parser recurses through a
/// dozen grammar rules per level and a 4 KiB text of `(((…` would exhaust any thread's stack
/// before its own bound stops it, so the levels are bounded before parsing; counting every such
/// character, rather than only those outside strings, is what makes the bound safe: a lexer that
/// disagrees with a pre-scan about where a string ends (an invalid escape, a raw string) cannot
/// hide nesting from it.
pub const MAX_NESTING_CHARS: usize = 96;
/// The most operator characters (`. + * / % = < > & |`), counted the same way: the parser and
/// the evaluator recurse along chains such as `a.b.c.…` or `1 + 1 + …`.
pub const MAX_OPERATOR_CHARS: usize = 256;
/// The parser's own nesting bound (parentheses, unary operators, calls): it stops a hostile
/// text before the tree is built.
pub const MAX_PARSE_DEPTH: u16 = 48;

/// The functions a filter may call, besides operators (`==`, `<`, `in`, `&&`, `? :`, `[]`, ...)
/// and the macros `has`, `all`, `exists`, `exists_one`.
pub const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "timestamp",
    "duration",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

/// The macros that build lists, refused.
const LIST_MACROS: &str = "`map` and `filter` are not supported in filters (they build lists at a cost that grows with \
     the square of the list); use `exists`, `all` or `exists_one`";

pub(crate) fn length(source: &str) -> Result<(), Invalid> {
    if source.trim().is_empty() {
        return Err(Invalid { line: 1, column: 1, reason: "must not be empty".into() });
    }
    if source.len() > MAX_LEN {
        return Err(Invalid {
            line: 1,
            column: 1,
            reason: format!("is {} bytes; a filter may have at most {MAX_LEN}", source.len()),
        });
    }
    if let Some((at, _)) = source.char_indices().find(|(_, c)| *c == '\0') {
        return Err(Invalid::at(source, Some(at), "must not contain NUL"));
    }
    nesting(source)
}

/// The character counts of [`MAX_NESTING_CHARS`] and [`MAX_OPERATOR_CHARS`]; the refusal points
/// at the first character over the bound.
fn nesting(source: &str) -> Result<(), Invalid> {
    let (mut nesting, mut operators) = (0usize, 0usize);
    for (at, c) in source.chars().enumerate() {
        if "([{!-?".contains(c) {
            nesting += 1;
            if nesting > MAX_NESTING_CHARS {
                return Err(Invalid::at_char(
                    source,
                    at,
                    format!(
                        "the filter nests too deeply: more than {MAX_NESTING_CHARS} of ( [ {{ ! - ? \
                         (strings included)"
                    ),
                ));
            }
        } else if ".+*/%=<>&|".contains(c) {
            operators += 1;
            if operators > MAX_OPERATOR_CHARS {
                return Err(Invalid::at_char(
                    source,
                    at,
                    format!(
                        "the filter is too large: more than {MAX_OPERATOR_CHARS} of . + * / % = < > & | \
                         (strings included)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The size, depth, names and comprehension rules over a parsed filter.
pub(crate) fn tree(source: &str, expr: &IdedExpr, info: &SourceInfo) -> Result<(), Invalid> {
    let at = |node: &IdedExpr, reason: String| {
        Invalid::at(source, info.offset_for(node.id).map(|(start, _)| start as usize), reason)
    };
    let mut nodes = 0usize;
    let mut comprehensions = 0usize;
    walk::each(expr, &mut |node: &IdedExpr, place: &Place<'_>| {
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(at(node, format!("the filter is too large: more than {MAX_NODES} terms")));
        }
        if place.depth > MAX_DEPTH {
            return Err(at(node, format!("the filter nests too deeply: more than {MAX_DEPTH} levels")));
        }
        match &node.expr {
            Expr::Ident(name)
                if !VARIABLES.contains(&name.as_str()) && !place.scope.contains(&name.as_str()) =>
            {
                return Err(at(
                    node,
                    format!("unknown variable `{name}`; a filter reads {}", VARIABLES.join(", ")),
                ));
            }
            Expr::Call(call) => {
                let name = call.func_name.as_str();
                if !is_operator(name) && !FUNCTIONS.contains(&name) {
                    // The parser places a call at its `(`; point at the name instead.
                    let paren = info.offset_for(node.id).map(|(start, _)| start as usize);
                    let start = paren.and_then(|p| source.get(..p)?.strip_suffix(name).map(str::len));
                    return Err(Invalid::at(source, start.or(paren), format!("unknown function `{name}`")));
                }
            }
            Expr::Comprehension(c) => {
                if matches!(c.accu_init.expr, Expr::List(_)) {
                    return Err(at(node, LIST_MACROS.to_owned()));
                }
                if place.loops > 0 {
                    return Err(at(
                        node,
                        "a comprehension (`all`, `exists`, `exists_one`) inside another's condition is \
                         not supported: its cost would grow with the product of the lists"
                            .to_owned(),
                    ));
                }
                comprehensions += 1;
                if comprehensions > MAX_COMPREHENSIONS {
                    return Err(at(
                        node,
                        format!(
                            "a filter may use at most {MAX_COMPREHENSIONS} of `all`, `exists`, `exists_one`"
                        ),
                    ));
                }
                for var in [Some(&c.iter_var), c.iter_var2.as_ref()].into_iter().flatten() {
                    if VARIABLES.contains(&var.as_str()) {
                        return Err(at(node, format!("the loop variable `{var}` hides the filter variable")));
                    }
                }
            }
            Expr::Struct(s) => {
                return Err(at(
                    node,
                    format!("message types are not available in filters (`{}`)", s.type_name),
                ));
            }
            Expr::Literal(LiteralValue::Bytes(_)) => {
                return Err(at(node, "bytes literals are not supported in filters".to_owned()));
            }
            _ => {}
        }
        Ok(())
    })
}

/// CEL's operators, which the parser writes as calls (`_==_`), and the two internal calls of
/// macro expansions and `in`.
fn is_operator(name: &str) -> bool {
    use cel::common::ast::operators as op;
    [
        op::CONDITIONAL,
        op::LOGICAL_AND,
        op::LOGICAL_OR,
        op::LOGICAL_NOT,
        op::SUBSTRACT,
        op::ADD,
        op::MULTIPLY,
        op::DIVIDE,
        op::MODULO,
        op::EQUALS,
        op::NOT_EQUALS,
        op::GREATER_EQUALS,
        op::LESS_EQUALS,
        op::GREATER,
        op::LESS,
        op::NEGATE,
        op::INDEX,
        op::IN,
        op::NOT_STRICTLY_FALSE,
    ]
    .contains(&name)
}
