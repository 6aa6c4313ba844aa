//! Every failure mapped to a `tonic::Status` in one place.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A request field that breaks a rule: INVALID_ARGUMENT with `google.rpc.BadRequest` details.
pub fn invalid(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// A request that is well-formed but not allowed in the portal's or subscription's current
/// state: FAILED_PRECONDITION with both `google.rpc.BadRequest` (the field at fault) and
/// `google.rpc.PreconditionFailure` (what clients that follow AIP-193 look for).
pub fn precondition(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    let mut details = ErrorDetails::with_bad_request_violation(field, description.clone());
    details.add_precondition_failure_violation("STATE", field, description.clone());
    Status::with_error_details(Code::FailedPrecondition, format!("{field}: {description}"), details)
}

pub fn not_found(what: &str, id: &str) -> Status {
    Status::not_found(format!("{what} {id:?} not found"))
}

/// Database failures: unavailability is retryable, the rest are internal errors whose details
/// stay in the log.
pub fn db(error: synap_db::DbError) -> Status {
    match error {
        synap_db::DbError::Unavailable(_) => {
            tracing::warn!(%error, "database unavailable");
            Status::unavailable("database unavailable, retry later")
        }
        other => {
            tracing::error!(error = %other, "database error");
            Status::internal("internal error")
        }
    }
}

/// A Kafka write cut short because the process is stopping (shut down, or its producer failed
/// for good and a restart brings a new one, `crate::kafka_writer`): another replica, or this
/// one restarted, can take it.
pub fn restarting() -> Status {
    Status::unavailable("control is restarting; retry")
}
