//! API failures as HTTP: a `tonic::Status` from the service layer (or a refusal of the HTTP
//! layer itself) becomes a status code and `{code, message, fieldViolations}`, so the page can
//! show each violation next to its field.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub http: StatusCode,
    /// The gRPC code's name (`INVALID_ARGUMENT`, `NOT_FOUND`, …): the same vocabulary as the
    /// gRPC API, so one document explains both.
    pub code: &'static str,
    pub message: String,
    #[serde(rename = "fieldViolations")]
    pub field_violations: Vec<FieldViolation>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            http: http_status(code),
            code: code_name(code),
            message: message.into(),
            field_violations: vec![],
        }
    }

    /// A bad field of the HTTP request itself (a query parameter, a JSON body that does not
    /// parse), in the same shape as the service's INVALID_ARGUMENT.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self {
            field_violations: vec![FieldViolation { field: field.into(), description: description.clone() }],
            ..Self::new(Code::InvalidArgument, format!("{field}: {description}"))
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(Code::Unauthenticated, "not signed in, or the session expired: open a new sign-in link")
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let field_violations = status
            .get_error_details()
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| FieldViolation { field: v.field.clone(), description: v.description.clone() })
                    .collect()
            })
            .unwrap_or_default();
        Self { field_violations, ..Self::new(status.code(), status.message()) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.http, Json(&self)).into_response()
    }
}

/// The HTTP status of a gRPC code, as Google's HTTP/JSON transcoding maps them.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_request_details_become_field_violations() {
        let error = ApiError::from(crate::errors::invalid("event_types[1]", "is not a known event type"));
        assert_eq!(error.http, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "INVALID_ARGUMENT");
        assert_eq!(
            error.field_violations,
            [FieldViolation {
                field: "event_types[1]".into(),
                description: "is not a known event type".into()
            }]
        );
        let precondition = ApiError::from(crate::errors::precondition("portal_id", "needs Pro"));
        assert_eq!((precondition.http, precondition.code), (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"));
        assert_eq!(precondition.field_violations[0].field, "portal_id");
        let missing = ApiError::from(crate::errors::not_found("subscription", "sub_x"));
        assert_eq!((missing.http, missing.field_violations.len()), (StatusCode::NOT_FOUND, 0));
        assert_eq!(ApiError::from(tonic::Status::internal("x")).http, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
