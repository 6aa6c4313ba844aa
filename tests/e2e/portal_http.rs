//! The web portal through its HTTP layer, against the real control binary: sign-in links,
//! sessions, portal scoping, CSRF, read-only, security headers and hostile input.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::Stack;
use tonic::Code;

use crate::cli::synapctl;
use crate::control_support::{client, create, create_request, upsert};
use crate::support::portal_id;

const URL: &str = "https://hooks.example.com/synap";
const LOGO: &str =
    r#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>"#;

/// A browser stand-in: keeps the session cookie and the CSRF token, sends the portal's Origin.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
    csrf: String,
}

impl Browser {
    fn new(stack: &Stack) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: stack.portal_url.clone(), cookie: None, csrf: String::new() }
    }

    /// Opens a sign-in link: the response, and the session cookie it set, if any.
    async fn open(&mut self, link: &str) -> reqwest::Response {
        let response = self.http.get(link).send().await.unwrap();
        if let Some(set) = set_cookie(response.headers()) {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        response
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        read(self.request(reqwest::Method::GET, path).send().await.unwrap()).await
    }

    /// A change as the page sends it: Origin and X-CSRF-Token set.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request =
            self.request(method, path).header("origin", &self.base).header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get(SET_COOKIE).map(|v| v.to_str().unwrap().to_owned())
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The field of the first violation in an error body.
fn violated(body: &Value) -> &str {
    body["fieldViolations"][0]["field"].as_str().unwrap_or_else(|| panic!("no field violation in {body}"))
}

async fn link(stack: &Stack, portal: &str, read_only: bool) -> String {
    let mut admin = stack.control().await;
    let link = admin
        .create_portal_link(api::CreatePortalLinkRequest { portal_id: portal.into(), read_only })
        .await
        .unwrap()
        .into_inner();
    assert!(link.url.starts_with(&format!("{}/signin/pl_", stack.portal_url)), "{}", link.url);
    assert_eq!(link.portal_id, portal);
    link.url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_session_sees_and_changes_only_its_own_portal() {
    let stack = Stack::start().await;
    let mut admin = client(&stack, Some(crate::control_support::admin_token())).await;
    let (mine, theirs) = (portal_id(), portal_id());
    upsert(&mut admin, &mine, Plan::Pro, &[]).await;
    upsert(&mut admin, &theirs, Plan::Pro, &[]).await;
    let theirs_sub =
        create(&mut admin, create_request(&theirs, URL, &["user.updated"])).await.subscription.unwrap();

    let mut browser = Browser::new(&stack);
    let url = link(&stack, &mine, false).await;
    let response = browser.open(&url).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    let cookie = set_cookie(response.headers()).expect("a session cookie");
    for part in
        ["synap_portal_session=ps_", "HttpOnly", "Secure", "Path=/", "SameSite=Strict", "Max-Age=28800"]
    {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    assert_eq!(response.headers()["referrer-policy"], "no-referrer", "the link must not leak");
    let (_, session) = browser.get("/api/session").await;
    assert_eq!(
        (session["portal_id"].as_str(), session["read_only"].as_bool()),
        (Some(mine.as_str()), Some(false))
    );
    browser.csrf = session["csrf_token"].as_str().unwrap().to_owned();

    // The link is single-use: a second opening gets the refusal page and no cookie.
    let again = Browser::new(&stack).open(&url).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(again.headers()).is_none());
    assert!(again.text().await.unwrap().contains("cannot be used"));

    // Its own portal: create, list, change.
    let (status, created) = browser
        .post("/api/endpoints", json!({"url": URL, "event_types": ["user.updated"], "description": "mine"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["signing_secret"].as_str().unwrap().starts_with("whsec_"));
    let own_id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let (_, list) = browser.get("/api/endpoints").await;
    let ids: Vec<&str> =
        list["endpoints"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [own_id.as_str()], "only its own portal's endpoints");
    let (status, paused) = browser.post(&format!("/api/endpoints/{own_id}/pause"), json!({})).await;
    assert_eq!((status, paused["state"].as_str()), (StatusCode::OK, Some("paused")));

    // The other portal's endpoint does not exist for it, whatever the call.
    let id = &theirs_sub.id;
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/api/endpoints/{id}"), None),
        (
            reqwest::Method::PATCH,
            format!("/api/endpoints/{id}"),
            Some(json!({"url": "https://evil.example.com"})),
        ),
        (reqwest::Method::DELETE, format!("/api/endpoints/{id}"), None),
        (reqwest::Method::POST, format!("/api/endpoints/{id}/pause"), None),
        (reqwest::Method::POST, format!("/api/endpoints/{id}/rotate-secret"), Some(json!({}))),
        (reqwest::Method::POST, format!("/api/endpoints/{id}/test"), Some(json!({}))),
        (reqwest::Method::GET, format!("/api/endpoints/{id}/attempts"), None),
        (reqwest::Method::GET, format!("/api/endpoints/{id}/health"), None),
        (reqwest::Method::POST, format!("/api/endpoints/{id}/resend"), Some(json!({"event_id": "evt_1"}))),
        (
            reqwest::Method::POST,
            format!("/api/endpoints/{id}/recover"),
            Some(json!({"since": "2026-01-01T00:00:00Z"})),
        ),
    ] {
        let (status, body) = if method == reqwest::Method::GET {
            browser.get(&path).await
        } else {
            browser.send(method.clone(), &path, body).await
        };
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["code"], "NOT_FOUND");
    }
    // A body cannot name another portal: the field does not exist, and is refused.
    let (status, body) = browser
        .post("/api/endpoints", json!({"portal_id": theirs, "url": URL, "event_types": ["user.updated"]}))
        .await;
    assert_eq!((status, violated(&body)), (StatusCode::BAD_REQUEST, "body"), "{body}");
    let still =
        admin.get_subscription(api::GetSubscriptionRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!((still.url.as_str(), still.enabled), (URL, true), "untouched");
    let listed = admin
        .list_subscriptions(api::ListSubscriptionsRequest { portal_id: theirs.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.subscriptions.len(), 1, "nothing created in the other portal");

    // The service's validation, with its field names, for the page to place.
    let (status, body) =
        browser.post("/api/endpoints", json!({"url": "ftp://x", "event_types": ["user.updated"]})).await;
    assert_eq!(
        (status, body["code"].as_str(), violated(&body)),
        (StatusCode::BAD_REQUEST, Some("INVALID_ARGUMENT"), "url")
    );
    let (_, body) =
        browser.post("/api/endpoints", json!({"url": URL, "event_types": ["user.updated", "nope"]})).await;
    assert_eq!(violated(&body), "event_types[1]");
    let (_, body) = browser
        .post("/api/endpoints", json!({"url": URL, "event_types": ["user.updated"], "basic_auth": {"username": "u", "password": ""}}))
        .await;
    assert_eq!(violated(&body), "basic_auth.password");
    let (_, body) = browser
        .post("/api/endpoints", json!({"url": URL, "event_types": ["user.updated"], "rate_limit_per_sec": 0}))
        .await;
    assert_eq!(violated(&body), "rate_limit_per_sec");

    // CSRF: a change without the token, with a wrong one, or from another origin is refused.
    let path = format!("/api/endpoints/{own_id}/resume");
    let no_token =
        browser.request(reqwest::Method::POST, &path).header("origin", &browser.base).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong = browser
        .request(reqwest::Method::POST, &path)
        .header("origin", &browser.base)
        .header("x-csrf-token", "x".repeat(43))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let cross_site = browser
        .request(reqwest::Method::POST, &path)
        .header("origin", "https://evil.example")
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let no_origin = browser
        .request(reqwest::Method::POST, &path)
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    let (_, still_paused) = browser.get(&format!("/api/endpoints/{own_id}")).await;
    assert_eq!(still_paused["state"], "paused", "no refused change took effect");

    // No session, or a forged one: 401, for reads too.
    let anonymous = Browser::new(&stack);
    assert_eq!(anonymous.get("/api/endpoints").await.0, StatusCode::UNAUTHORIZED);
    for forged in ["ps_forged", "garbage", &"ps_".repeat(200), "ps_\u{7f}"] {
        let r = anonymous
            .http
            .get(format!("{}/api/endpoints", stack.portal_url))
            .header("cookie", format!("synap_portal_session={forged}"))
            .send()
            .await;
        if let Ok(r) = r {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{forged:?}");
        }
    }

    // Hostile input: ids no database column holds, bodies that do not parse, oversized bodies.
    let (status, body) = browser.get("/api/endpoints/a%00b").await;
    assert_eq!((status, violated(&body)), (StatusCode::BAD_REQUEST, "id"), "{body}");
    let (status, body) = browser.get(&format!("/api/endpoints/{}", "x".repeat(200))).await;
    assert_eq!((status, violated(&body)), (StatusCode::BAD_REQUEST, "id"));
    let (status, body) = browser.get(&format!("/api/endpoints/{own_id}/attempts?since=yesterday")).await;
    assert_eq!((status, violated(&body)), (StatusCode::BAD_REQUEST, "since"));
    let (status, body) = browser.get(&format!("/api/endpoints/{own_id}/attempts?outcome=maybe")).await;
    assert_eq!((status, violated(&body)), (StatusCode::BAD_REQUEST, "outcome"));
    let (status, body) = browser.get("/api/attempts/not-a-number").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let raw = browser
        .request(reqwest::Method::POST, "/api/endpoints")
        .header("origin", &browser.base)
        .header("x-csrf-token", &browser.csrf)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = read(raw).await;
    assert_eq!((status, violated(&body)), (StatusCode::BAD_REQUEST, "body"));
    let (status, body) =
        browser.post("/api/endpoints", json!({"url": 5, "event_types": "user.updated"})).await;
    assert_eq!((status, violated(&body)), (StatusCode::BAD_REQUEST, "body"));
    let huge = json!({"url": URL, "event_types": ["user.updated"], "description": "x".repeat(100_000)});
    assert_eq!(browser.post("/api/endpoints", huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = browser
        .post(
            "/api/endpoints",
            json!({"url": URL, "event_types": ["user.updated"], "description": "a\u{0}b"}),
        )
        .await;
    assert_eq!((status, violated(&body)), (StatusCode::BAD_REQUEST, "description"));
    for bad in [
        "/signin/pl_unknown",
        "/signin/%00",
        "/signin/pl_..%2F..%2Fetc",
        &format!("/signin/pl_{}", "a".repeat(500)),
    ] {
        let r = Browser::new(&stack).open(&format!("{}{bad}", stack.portal_url)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{bad}");
        assert!(set_cookie(r.headers()).is_none());
    }

    // Security headers on the page, the API and the refusal alike.
    for path in ["/", "/api/session", "/assets/app.js", "/signin/pl_x"] {
        let r = browser.request(reqwest::Method::GET, path).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    let page = browser.request(reqwest::Method::GET, "/").send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("<script>") && !page.contains("style="), "no inline script or style");

    // Sign-out ends the session on the server, not only in the browser.
    let (status, _) = browser.post("/api/signout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(browser.get("/api/endpoints").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sessions_change_nothing_and_links_and_sessions_expire() {
    let logo = std::env::temp_dir().join(format!("synap-logo-{}.svg", uuid::Uuid::new_v4().simple()));
    std::fs::write(&logo, LOGO).unwrap();
    let mut stack = Stack::start_with(&[
        ("SYNAP_PORTAL__LOGO_FILE", logo.to_str().unwrap()),
        ("SYNAP_PORTAL__ACCENT_COLOR", "#0b7a75"),
        ("SYNAP_PORTAL__TITLE", "Acme webhooks"),
        ("SYNAP_PORTAL__LINK_TTL_SECONDS", "2"),
        ("SYNAP_PORTAL__SESSION_TTL_SECONDS", "4"),
        ("SYNAP_PORTAL__FRAME_ANCESTORS", "[\"https://app.synap.example\"]"),
        ("SYNAP_PORTAL__COOKIE_SAME_SITE", "none"),
    ])
    .await;
    let mut admin = client(&stack, Some(crate::control_support::admin_token())).await;
    let portal = portal_id();
    upsert(&mut admin, &portal, Plan::Pro, &[]).await;
    let sub = create(&mut admin, create_request(&portal, URL, &["user.updated"])).await.subscription.unwrap();

    // A portal key mints links for its own portal only.
    let key = admin
        .create_api_key(api::CreateApiKeyRequest { portal_id: portal.clone(), name: "backend".into() })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut k = client(&stack, Some(&key)).await;
    let other = k
        .create_portal_link(api::CreatePortalLinkRequest { portal_id: portal_id(), read_only: false })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    let bad = k
        .create_portal_link(api::CreatePortalLinkRequest { portal_id: "a\nb".into(), read_only: false })
        .await;
    assert_eq!(
        crate::control_support::bad_field(&bad.unwrap_err()),
        (Code::InvalidArgument, "portal_id".into())
    );
    // synapctl, as Synap's backend would call it with its portal key.
    let refused = synapctl(&stack, &key, &["portal-link", "--portal", "someone-else"]).await.unwrap_err();
    assert!(
        refused.contains("NotFound") || refused.contains("NOT_FOUND") || refused.contains("not found"),
        "{refused}"
    );
    let minted = synapctl(&stack, &key, &["portal-link", "--read-only"]).await.unwrap();
    assert_eq!(minted["portal_id"], portal.as_str());
    let read_only_link = minted["url"].as_str().unwrap().to_owned();
    let health = synapctl(
        &stack,
        crate::control_support::admin_token(),
        &["delivery", "health", "--subscription", &sub.id],
    )
    .await
    .unwrap();
    assert_eq!(
        (health["state"].as_str(), health["success_rate"].is_null()),
        (Some("active"), true),
        "{health}"
    );

    // Read-only: reads work, every change is 403 and changes nothing.
    let mut browser = Browser::new(&stack);
    let response = browser.open(&read_only_link).await;
    let cookie = set_cookie(response.headers()).unwrap();
    assert!(cookie.contains("SameSite=None") && cookie.contains("Partitioned"), "{cookie}");
    let (_, session) = browser.get("/api/session").await;
    assert_eq!(session["read_only"], true);
    browser.csrf = session["csrf_token"].as_str().unwrap().to_owned();
    let (status, list) = browser.get("/api/endpoints").await;
    assert_eq!((status, list["endpoints"].as_array().unwrap().len()), (StatusCode::OK, 1));
    for (method, path) in [
        (reqwest::Method::POST, "/api/endpoints".to_owned()),
        (reqwest::Method::PATCH, format!("/api/endpoints/{}", sub.id)),
        (reqwest::Method::DELETE, format!("/api/endpoints/{}", sub.id)),
        (reqwest::Method::POST, format!("/api/endpoints/{}/pause", sub.id)),
        (reqwest::Method::POST, format!("/api/endpoints/{}/rotate-secret", sub.id)),
    ] {
        let (status, body) = browser.send(method.clone(), &path, Some(json!({"url": URL}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(body["code"], "PERMISSION_DENIED");
    }
    let after = admin
        .get_subscription(api::GetSubscriptionRequest { id: sub.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(after.enabled, "read-only changed nothing");
    // Trying a filter changes nothing: a read-only session may, still with the CSRF token.
    let test = json!({"filter": "type == \"user.updated\"", "subscription_id": sub.id});
    let (status, tried) = browser.post("/api/test-filter", test.clone()).await;
    assert_eq!((status, tried["matched"].as_bool()), (StatusCode::OK, Some(true)), "{tried}");
    let (status, _) = browser
        .request(reqwest::Method::POST, "/api/test-filter")
        .header("origin", &browser.base)
        .json(&test)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");

    // frame-ancestors from configuration; no X-Frame-Options then (it would forbid the frame).
    let r = browser.request(reqwest::Method::GET, "/").send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.ends_with("frame-ancestors https://app.synap.example"), "{csp}");
    assert!(r.headers().get("x-frame-options").is_none());

    // Theme and logo from configuration.
    assert_eq!(
        (session["title"].as_str(), session["has_logo"].as_bool()),
        (Some("Acme webhooks"), Some(true))
    );
    let theme = browser.request(reqwest::Method::GET, "/assets/theme.css").send().await.unwrap();
    assert!(theme.text().await.unwrap().contains("--accent: #0b7a75"));
    let served = browser.request(reqwest::Method::GET, "/assets/logo").send().await.unwrap();
    assert_eq!(served.headers()["content-type"], "image/svg+xml");
    assert_eq!(served.bytes().await.unwrap(), LOGO.as_bytes());
    let _ = std::fs::remove_file(&logo);

    // An expired link is refused and starts no session.
    let late = link(&stack, &portal, false).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let r = Browser::new(&stack).open(&late).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(r.headers()).is_none());

    // The session ends when its time is up.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let (status, body) = browser.get("/api/endpoints").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED")));

    // SIGTERM stops both servers and control exits cleanly (`stop` asserts the exit status).
    stack.stop(synap_tests::Service::Control).await;
    assert!(browser.request(reqwest::Method::GET, "/").send().await.is_err(), "the portal stopped too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_settings_control_cannot_run_with_stop_it_at_start_naming_the_key() {
    let stack = Stack::start().await;
    for (key, value, named) in [
        ("SYNAP_PORTAL__LOGO_FILE", "/nonexistent/logo.png", "portal.logo_file"),
        ("SYNAP_PORTAL__LOGO_FILE", "/etc/hostname", "portal.logo_file"),
        ("SYNAP_PORTAL__FRAME_ANCESTORS", "[\"https://a.example; script-src *\"]", "portal.frame_ancestors"),
        ("SYNAP_PORTAL__PUBLIC_URL", "http://webhooks.example", "portal.public_url"),
        ("SYNAP_PORTAL__PUBLIC_URL", "https://webhooks.example/sub/path", "portal.public_url"),
        ("SYNAP_PORTAL__ACCENT_COLOR", "red;}", "portal.accent_color"),
        ("SYNAP_PORTAL__COOKIE_SAME_SITE", "sometimes", "portal"),
    ] {
        let (status, printed) =
            stack.run_to_exit(synap_tests::Service::Control, &[(key, value)], Duration::from_secs(30)).await;
        assert!(!status.success(), "{key}={value} started");
        assert!(printed.contains(named), "{key}={value}: {printed}");
    }
}

/// Issue 14's fields through the portal's JSON: a filter, a wildcard, v1a and a secret header;
/// a bad filter names its field; the test-filter route evaluates without saving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_endpoints_take_filters_wildcards_v1a_and_headers() {
    let stack = Stack::start().await;
    let mut admin = client(&stack, Some(crate::control_support::admin_token())).await;
    let mine = portal_id();
    upsert(&mut admin, &mine, Plan::Pro, &[]).await;
    let mut browser = Browser::new(&stack);
    browser.open(&link(&stack, &mine, false).await).await;
    let (_, session) = browser.get("/api/session").await;
    browser.csrf = session["csrf_token"].as_str().unwrap().to_owned();

    let filter = r#"data.exam.id == "exm_1c9a63d2f8""#;
    let (status, created) = browser
        .post(
            "/api/endpoints",
            json!({
                "url": URL, "event_types": ["exam.*"], "filter": filter, "signature_scheme": "v1a",
                "headers": [{"name": "X-Tenant", "value": "t1"},
                            {"name": "X-Api-Key", "value": "hush-123", "secret": true}],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["signing_secret"], "", "v1a has no shared secret");
    let endpoint = &created["endpoint"];
    assert_eq!(endpoint["event_types"], json!(["exam.*"]));
    assert_eq!(endpoint["filter"], filter);
    assert_eq!(endpoint["signature_scheme"], "v1a");
    let keys = endpoint["signing_public_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{endpoint}");
    assert!(keys[0]["public_key"].as_str().unwrap().starts_with("whpk_"));
    assert_eq!(
        endpoint["headers"],
        json!([{"name": "X-Tenant", "value": "t1", "secret": false},
               {"name": "X-Api-Key", "value": "", "secret": true}])
    );
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let (_, got) = browser.get(&format!("/api/endpoints/{id}")).await;
    assert!(!got.to_string().contains("hush-123"), "a secret value is never returned: {got}");
    let (_, list) = browser.get("/api/endpoints").await;
    assert!(!list.to_string().contains("hush-123"));

    // Update: clear the filter, replace the headers.
    let (status, changed) = browser
        .send(
            reqwest::Method::PATCH,
            &format!("/api/endpoints/{id}"),
            Some(json!({"clear_filter": true, "headers": [{"name": "X-Api-Key", "value": "new", "secret": true}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["filter"], "");
    assert_eq!(changed["headers"], json!([{"name": "X-Api-Key", "value": "", "secret": true}]));

    // Refusals name the field the form shows them next to.
    let (status, body) = browser
        .post(
            "/api/endpoints",
            json!({"url": URL, "event_types": ["exam.completed"], "filter": "data.exam.id =="}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(violated(&body), "filter");
    let (_, body) = browser
        .post(
            "/api/endpoints",
            json!({"url": URL, "event_types": ["user.updated"], "headers": [{"name": "a b", "value": "x"}]}),
        )
        .await;
    assert_eq!(violated(&body), "headers[0].name");
    let (_, body) = browser
        .post(
            "/api/endpoints",
            json!({"url": URL, "event_types": ["user.updated"], "signature_scheme": "v2"}),
        )
        .await;
    assert_eq!(violated(&body), "signature_scheme");

    // Test filter: matched, not matched, refused.
    let (status, r) = browser
        .post(
            "/api/test-filter",
            json!({"filter": filter, "event_types": ["exam.*"], "event_type": "exam.completed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r, json!({"matched": true, "error": "", "event_type": "exam.completed"}));
    let (_, r) = browser
        .post(
            "/api/test-filter",
            json!({"filter": r#"data.exam.id == "other""#, "event_type": "exam.completed"}),
        )
        .await;
    assert_eq!((r["matched"].as_bool(), r["error"].as_str()), (Some(false), Some("")), "{r}");
    let (status, r) = browser
        .post("/api/test-filter", json!({"filter": "data.exam.id ==", "event_type": "exam.completed"}))
        .await;
    assert_eq!((status, violated(&r)), (StatusCode::BAD_REQUEST, "filter"));

    // Rotation moves a v1 endpoint to v1a.
    let (_, v1) = browser.post("/api/endpoints", json!({"url": URL, "event_types": ["user.updated"]})).await;
    assert_eq!(v1["endpoint"]["signature_scheme"], "v1");
    let v1_id = v1["endpoint"]["id"].as_str().unwrap();
    let (status, rotated) = browser
        .post(&format!("/api/endpoints/{v1_id}/rotate-secret"), json!({"signature_scheme": "v1a"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(
        (rotated["signature_scheme"].as_str(), rotated["signing_secret"].as_str()),
        (Some("v1a"), Some(""))
    );
    assert!(rotated["public_key"].as_str().unwrap().starts_with("whpk_"));
}
