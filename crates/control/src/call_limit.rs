//! A bound on every API call (`control.call_timeout_ms`).
//!
//! A call waits on PostgreSQL and, for some, on Kafka. A database host that hangs, or a route
//! that drops its packets, answers nothing, not an error: a query on a pooled connection then
//! waits for as long as the TCP connection lives, and so does the call, and the client unless it
//! set a deadline of its own. Bounded here, the call ends with UNAVAILABLE ("try again") and says
//! so, and its connection is dropped with it.

use std::convert::Infallible;
use std::time::Duration;

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{Request as HttpRequest, Response as HttpResponse};
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;

/// A gRPC service whose calls end after `limit`.
#[derive(Clone)]
pub struct CallLimit<S> {
    inner: S,
    limit: Duration,
}

impl<S> CallLimit<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self { inner, limit }
    }
}

impl<S: NamedService> NamedService for CallLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<HttpRequest<Body>> for CallLimit<S>
where
    S: Service<HttpRequest<Body>, Response = HttpResponse<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<Body>) -> Self::Future {
        let (limit, method) = (self.limit, request.uri().path().to_owned());
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, call).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(
                        method,
                        limit_ms = limit.as_millis() as u64,
                        "call ended at control.call_timeout_ms"
                    );
                    Ok(ended(limit).into_http())
                }
            }
        })
    }
}

/// What a call that ran out of its limit answers.
fn ended(limit: Duration) -> Status {
    Status::unavailable(format!(
        "no answer within {} ms (control.call_timeout_ms): the database or Kafka did not answer in \
         time; try again",
        limit.as_millis()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service that answers at once, or never.
    struct Handler {
        answers: bool,
    }

    impl Service<HttpRequest<Body>> for Handler {
        type Response = HttpResponse<Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: HttpRequest<Body>) -> Self::Future {
            let answers = self.answers;
            Box::pin(async move {
                if !answers {
                    std::future::pending::<()>().await;
                }
                Ok(HttpResponse::new(Body::empty()))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_ends_is_unavailable_at_the_limit() {
        let mut limited = CallLimit::new(Handler { answers: false }, Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let response = limited.call(HttpRequest::new(Body::empty())).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        let status = Status::from_header_map(response.headers()).expect("a gRPC status");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("control.call_timeout_ms"), "{}", status.message());

        let mut quick = CallLimit::new(Handler { answers: true }, Duration::from_secs(60));
        let response = quick.call(HttpRequest::new(Body::empty())).await.unwrap();
        assert!(Status::from_header_map(response.headers()).is_none(), "answered in time: untouched");
    }
}
