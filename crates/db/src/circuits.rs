//! Circuit breaker transitions. The sender keeps one circuit per portal and endpoint in memory
//! and records here, best effort, when one opens or closes; the control API (and a portal page)
//! reads "circuit open since …" for a subscription from it.

use chrono::{DateTime, Utc};

use crate::{DbError, Pool};

/// A circuit's state, as stored in `endpoint_circuits.state` (a CHECK constraint holds the column
/// to these codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Requests are held back until a probe succeeds.
    Open,
    /// Requests go out.
    Closed,
}

impl CircuitState {
    pub const ALL: [CircuitState; 2] = [CircuitState::Open, CircuitState::Closed];

    pub fn code(self) -> &'static str {
        match self {
            CircuitState::Open => "open",
            CircuitState::Closed => "closed",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// The endpoint a URL belongs to, for circuits: scheme, host, port and path (the query and
/// fragment do not name another endpoint). The path counts because many customers share a host
/// (an integration platform, one company's gateway): a path answering 500 must not open the
/// circuit of its healthy neighbours.
pub fn endpoint(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0),
            u.path()
        ),
        Err(_) => url.to_owned(),
    }
}

/// A circuit that opened or closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub portal_id: String,
    /// [`endpoint`] of the URL.
    pub endpoint: String,
    pub state: CircuitState,
    pub at: DateTime<Utc>,
    /// What opened it (`http_503`, `timeout`, …); `None` when it closed.
    pub reason: Option<String>,
}

/// Stores a transition, unless a later one of the same circuit is stored already (replicas and
/// retries may write out of order). A circuit that opens while already open keeps its first
/// `opened_at`.
pub async fn record(pool: &Pool, transition: &Transition) -> Result<(), DbError> {
    let client = pool.get().await?;
    let opened_at = (transition.state == CircuitState::Open).then_some(transition.at);
    client
        .execute(
            "INSERT INTO endpoint_circuits AS c (portal_id, endpoint, state, opened_at, changed_at, reason)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (portal_id, endpoint) DO UPDATE SET
                 state = EXCLUDED.state,
                 opened_at = CASE WHEN c.state = 'open' AND EXCLUDED.state = 'open' THEN c.opened_at
                                  ELSE EXCLUDED.opened_at END,
                 changed_at = EXCLUDED.changed_at,
                 reason = EXCLUDED.reason
             WHERE c.changed_at <= EXCLUDED.changed_at",
            &[
                &transition.portal_id,
                &transition.endpoint,
                &transition.state.code(),
                &opened_at,
                &transition.at,
                &transition.reason,
            ],
        )
        .await?;
    Ok(())
}

/// The last recorded state of a circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circuit {
    pub endpoint: String,
    pub state: CircuitState,
    /// When it opened; `None` while closed.
    pub opened_at: Option<DateTime<Utc>>,
    pub changed_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// The circuit a subscription's deliveries go through (its portal's circuit for its URL);
/// `None` when the subscription does not exist or its circuit never opened.
pub async fn of_subscription(pool: &Pool, subscription_id: &str) -> Result<Option<Circuit>, DbError> {
    let client = pool.get().await?;
    let Some(row) = client
        .query_opt("SELECT portal_id, url FROM subscriptions WHERE id = $1", &[&subscription_id])
        .await?
    else {
        return Ok(None);
    };
    let (portal_id, url): (String, String) = (row.get(0), row.get(1));
    let endpoint = endpoint(&url);
    let Some(row) = client
        .query_opt(
            "SELECT state, opened_at, changed_at, reason FROM endpoint_circuits
             WHERE portal_id = $1 AND endpoint = $2",
            &[&portal_id, &endpoint],
        )
        .await?
    else {
        return Ok(None);
    };
    let state: String = row.get(0);
    Ok(Some(Circuit {
        state: CircuitState::parse(&state)
            .ok_or_else(|| DbError::Corrupt(format!("endpoint_circuits.state {state:?}")))?,
        endpoint,
        opened_at: row.get(1),
        changed_at: row.get(2),
        reason: row.get(3),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_urls_without_query() {
        assert_eq!(endpoint("https://a.example/x?y"), endpoint("https://a.example:443/x#f"));
        assert_ne!(
            endpoint("https://a.example/x"),
            endpoint("https://a.example/z"),
            "neighbours on one host"
        );
        assert_ne!(endpoint("http://a.example/x"), endpoint("https://a.example/x"));
        assert_eq!(endpoint("not a url"), "not a url");
    }

    /// The CHECK constraint and the enum name the same codes.
    #[test]
    fn the_check_constraint_holds_exactly_the_enum_codes() {
        let sql = include_str!("../migrations/0023_endpoint_circuits.sql");
        let list = &sql[sql.find("state IN (").unwrap() + 10..];
        let list: Vec<&str> =
            list[..list.find(')').unwrap()].split(',').map(|c| c.trim().trim_matches('\'')).collect();
        let codes: Vec<&str> = CircuitState::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(list, codes);
        for s in CircuitState::ALL {
            assert_eq!(CircuitState::parse(s.code()), Some(s));
        }
    }
}
