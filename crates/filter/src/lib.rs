//! Subscription filters: a [CEL](https://cel.dev) expression over one event, e.g.
//! `data.exam.id == "exm_1c9a63d2f8" && data.attempt.scoreFrac < 0.5`.
//!
//! The `cel` crate parses and evaluates; this crate decides what a filter may be, because the
//! crate has neither a type checker nor a cost limit of its own:
//!
//! - [`Filter::compile`] (what the router runs when it loads a portal's routes) refuses what is
//!   unsafe or meaningless whatever the event: too long, too deep or too large a tree, unknown
//!   variables or functions, list-building macros, nested or too many comprehensions
//!   ([`limits`]).
//! - [`Filter::check`] (what control runs at create and update) adds the contract: every
//!   `data.a.b` path must be documented for at least one of the subscription's types, and the
//!   filter must give a bool on every type's example body ([`check`]).
//! - [`Filter::matches`] evaluates against an event's [`Bindings`], built once per event and
//!   shared by every filter of the portal.
//!
//! A refusal carries the line and column (1-based) of the part at fault.

mod bindings;
mod cache;
pub mod check;
pub mod limits;
mod walk;

use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::IdedExpr;
use synap_contract::EventType;

pub use bindings::{Bindings, Event};
pub use cache::compiled;

/// The variables a filter may read.
pub const VARIABLES: [&str; 4] = ["data", "type", "portalId", "occurredAt"];

/// The standard CEL environment, built once: its functions and macros are read-only.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A filter that parsed and passed [`limits`]; cheap to share between tasks.
#[derive(Debug)]
pub struct Filter {
    source: String,
    expr: IdedExpr,
    /// Where each node was written, for the check's messages.
    info: cel::common::ast::SourceInfo,
}

/// Why a filter is refused, with where in its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {reason}")]
pub struct Invalid {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    pub reason: String,
}

impl Invalid {
    /// At a byte offset (the parser's node offsets are bytes).
    pub(crate) fn at(source: &str, byte_offset: Option<usize>, reason: impl Into<String>) -> Self {
        let chars = source.get(..byte_offset.unwrap_or(0)).map_or(0, |s| s.chars().count());
        Invalid::at_char(source, chars, reason)
    }

    /// At a character offset.
    pub(crate) fn at_char(source: &str, char_offset: usize, reason: impl Into<String>) -> Self {
        let (line, column) = line_column(source, char_offset);
        Invalid { line, column, reason: reason.into() }
    }
}

/// The 1-based line and column of a character offset.
fn line_column(source: &str, offset: usize) -> (u32, u32) {
    let (mut line, mut column) = (1, 1);
    for c in source.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Why a filter did not give an answer on one event: the router counts it as "no match".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A field the filter reads is absent from this event.
    #[error("{0}")]
    MissingField(String),
    /// The filter gave something other than a bool (e.g. a field it compared nothing with).
    #[error("the filter gave a {0}, not a bool")]
    NotBool(String),
    /// Any other failure: a type mismatch, a division by zero, an overflow, ...
    #[error("{0}")]
    Failed(String),
}

impl EvalError {
    /// A stable label for metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            EvalError::MissingField(_) => "missing_field",
            EvalError::NotBool(_) => "not_bool",
            EvalError::Failed(_) => "failed",
        }
    }
}

impl Filter {
    /// Parses `source` and applies the [`limits`]: what the router does once per subscription
    /// when it loads a portal's routes.
    pub fn compile(source: &str) -> Result<Filter, Invalid> {
        limits::length(source)?;
        let (expr, info) = parse(source).map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| {
                (u32::try_from(e.pos.0).unwrap_or(1).max(1), u32::try_from(e.pos.1).unwrap_or(1).max(1))
            });
            let reason = match first {
                None => "does not parse".to_owned(),
                // The parser's own bound, reported as its internal error's debug text.
                Some(e) if e.msg.contains("Recursion limit") => {
                    format!("the filter nests too deeply: more than {} levels", limits::MAX_PARSE_DEPTH)
                }
                Some(e) => e.msg.replace("Syntax error: ", "syntax error: "),
            };
            Invalid { line, column, reason }
        })?;
        limits::tree(source, &expr, &info)?;
        Ok(Filter { source: source.to_owned(), expr, info })
    }

    /// [`Filter::compile`], then the contract check for a subscription to `types`: what control
    /// does at create, update and TestFilter.
    pub fn check(source: &str, types: &[EventType]) -> Result<Filter, Invalid> {
        let filter = Filter::compile(source)?;
        check::against(&filter, types)?;
        Ok(filter)
    }

    /// The text the filter was compiled from.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The byte offset where the node `id` starts.
    pub(crate) fn offset_of(&self, id: u64) -> Option<usize> {
        self.info.offset_for(id).map(|(start, _)| start as usize)
    }

    /// Whether the event matches.
    pub fn matches(&self, bindings: &Bindings) -> Result<bool, EvalError> {
        match bindings.context().resolve(&self.expr) {
            Ok(cel::Value::Bool(matched)) => Ok(matched),
            Ok(other) => Err(EvalError::NotBool(other.type_of().to_string())),
            Err(cel::ExecutionError::NoSuchKey(key)) => {
                Err(EvalError::MissingField(format!("no field {key:?} in this event")))
            }
            Err(other) => Err(EvalError::Failed(other.to_string())),
        }
    }
}

/// The stack the parser runs on. The ANTLR parser recurses through a dozen grammar rules per
/// bracket level, with large frames in unoptimised builds (a dozen nested lists exhaust a 2 MiB
/// thread stack there); [`limits::MAX_NESTING_CHARS`] bounds the levels, this bounds the frames.
const PARSE_STACK: usize = 64 * 1024 * 1024;

/// Parses on a thread of its own with [`PARSE_STACK`], so that no caller's stack (a Tokio
/// worker's is 2 MiB) bears the parser's recursion.
fn parse(source: &str) -> Result<(IdedExpr, cel::common::ast::SourceInfo), cel::ParseErrors> {
    let run = || {
        ENV.parser()
            .enable_optional_syntax(false)
            .max_recursion_depth(limits::MAX_PARSE_DEPTH)
            .parse_with_source_info(source)
    };
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("filter-parse".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, run)
        {
            Ok(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had (the process is at its limit): parse here; the text bounds
            // still hold.
            Err(_) => run(),
        }
    })
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests;
