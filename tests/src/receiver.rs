//! A real HTTP receiver on loopback that records every request. By default it answers 204;
//! [`Receiver::script`] and [`Receiver::always`] make a path answer otherwise (errors,
//! `Retry-After`, slow answers, no answer at all), as a misbehaving customer endpoint would;
//! [`Receiver::fail_first_attempt`] fails each event's first request, so that every event takes
//! the retry path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request arrived.
    pub at: Instant,
}

/// How the receiver answers one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// This status and an empty body.
    Status(u16),
    /// This status with `Retry-After: <value>`.
    RetryAfter(u16, String),
    /// 204 after this long.
    Slow(Duration),
    /// Never answers (the connection stays open until the client gives up).
    Hang,
    /// This status with `n` headers `x-filler-<i>: <value>` and this body.
    Full { status: u16, filler_headers: usize, filler_value: String, body: String },
}

#[derive(Default)]
struct Replies {
    /// Answers for the next requests to a path, in order.
    scripted: HashMap<String, Vec<Reply>>,
    /// The answer once the script is used up (204 when none).
    always: HashMap<String, Reply>,
    /// A header (name, value) a request to the path must carry; without it the answer is 401,
    /// as an endpoint that checks its own credentials answers a stranger.
    required: HashMap<String, (String, String)>,
    /// Paths whose first request of each `webhook-id` gets this status; later requests of the
    /// same id get the path's usual answer.
    fail_first: HashMap<String, u16>,
    /// The `(path, webhook-id)` pairs already seen, for `fail_first`.
    seen: std::collections::HashSet<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Received>>,
    replies: Mutex<Replies>,
    notify: Notify,
}

pub struct Receiver {
    pub base: String,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts a receiver answering 204 to every POST.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, shared }
    }

    /// The next requests to `path` get these answers, in order; later ones the default.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.shared.replies.lock().unwrap().scripted.insert(path.to_owned(), replies);
    }

    /// Every request to `path` (after any script) gets this answer.
    pub fn always(&self, path: &str, reply: Reply) {
        self.shared.replies.lock().unwrap().always.insert(path.to_owned(), reply);
    }

    /// Requests to `path` without header `name` equal to `value` get 401 (before any script).
    pub fn require_header(&self, path: &str, name: &str, value: &str) {
        self.shared
            .replies
            .lock()
            .unwrap()
            .required
            .insert(path.to_owned(), (name.to_owned(), value.to_owned()));
    }

    /// The first request of each `webhook-id` to `path` is answered `status`; its later requests
    /// (the retries) get the path's usual answer.
    pub fn fail_first_attempt(&self, path: &str, status: u16) {
        self.shared.replies.lock().unwrap().fail_first.insert(path.to_owned(), status);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every request received so far at `path`.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.shared.requests.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    pub fn all(&self) -> Vec<Received> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until `path` has received at least `n` requests; panics after `timeout`.
    pub async fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            let got = self.at(path);
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{path}: expected {n} requests within {timeout:?}, got {}", self.at(path).len());
            }
        }
    }
}

async fn record(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let reply = {
        let mut replies = shared.replies.lock().unwrap();
        let stranger = replies.required.get(&path).is_some_and(|(name, value)| {
            headers.get(name.as_str()).and_then(|v| v.to_str().ok()) != Some(value.as_str())
        });
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let first_of_id = replies.seen.insert((path.clone(), id));
        let fail_first = replies.fail_first.get(&path).copied().filter(|_| first_of_id);
        match (fail_first, replies.scripted.get_mut(&path).filter(|s| !s.is_empty())) {
            _ if stranger => Some(Reply::Status(401)),
            (Some(status), _) => Some(Reply::Status(status)),
            (None, Some(script)) => Some(script.remove(0)),
            (None, None) => replies.always.get(&path).cloned(),
        }
    };
    shared.requests.lock().unwrap().push(Received { path, headers, body, at: Instant::now() });
    shared.notify.notify_waiters();
    let status = |code: u16| StatusCode::from_u16(code).unwrap();
    match reply {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(Reply::Status(code)) => status(code).into_response(),
        Some(Reply::RetryAfter(code, value)) => (status(code), [("retry-after", value)]).into_response(),
        Some(Reply::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Some(Reply::Hang) => {
            std::future::pending::<()>().await;
            StatusCode::NO_CONTENT.into_response()
        }
        Some(Reply::Full { status: code, filler_headers, filler_value, body }) => {
            let mut response = (status(code), body).into_response();
            for i in 0..filler_headers {
                response.headers_mut().insert(
                    axum::http::HeaderName::try_from(format!("x-filler-{i}")).unwrap(),
                    axum::http::HeaderValue::try_from(filler_value.as_str()).unwrap(),
                );
            }
            response
        }
    }
}
