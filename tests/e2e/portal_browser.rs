//! The web portal in a real headless Chromium: a customer signs in with a link, creates an
//! endpoint, sees an event published to Kafka arrive in the delivery log, resends it, reads one
//! attempt in full, looks at the health chart and pauses the endpoint; another portal's link
//! shows nothing of it; used and expired links are refused. Screenshots go to
//! `target/portal-screenshots/`.

use std::time::Duration;

use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::browser::{Browser, screenshot_dir};
use synap_tests::{Receiver, Reply, Stack};

use crate::delivery_support::publish;
use crate::support::{NewSub, portal_id, subscribe, upsert_portal};

const WAIT: Duration = Duration::from_secs(15);
/// Routing and delivering an event through the local broker takes a few of its fetch waits.
const DELIVERY: Duration = Duration::from_secs(60);

async fn link(stack: &Stack, portal: &str) -> String {
    let mut control = stack.control().await;
    let request = api::CreatePortalLinkRequest { portal_id: portal.into(), read_only: false };
    control.create_portal_link(request).await.unwrap().into_inner().url
}

/// Clicks Refresh on the deliveries view until `css` matches `n` rows or more.
async fn refresh_until(browser: &Browser, css: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + DELIVERY;
    loop {
        if browser.find_all(css).await.len() >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {n} of {css} within {DELIVERY:?}; page: {}",
            browser.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let refresh = browser.wait_for("#refresh", WAIT).await;
        browser.click(&refresh).await;
        // The view re-renders; wait for the new filter form before looking again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.wait_for("#refresh", WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_manages_an_endpoint_and_sees_its_deliveries_in_a_real_browser() {
    let stack = Stack::start_with(&[("SYNAP_PORTAL__LINK_TTL_SECONDS", "3")]).await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let (mine, theirs) = (portal_id(), portal_id());
    upsert_portal(&mut control, &mine, Plan::Pro, &[]).await;
    upsert_portal(&mut control, &theirs, Plan::Pro, &[]).await;
    let theirs_url = receiver.url("/theirs");
    subscribe(&mut control, NewSub::new(&theirs, theirs_url.clone(), &[EventType::UserUpdated])).await;
    let shots = screenshot_dir();
    let browser = Browser::start().await;

    // Sign in: the link sets an HttpOnly cookie and lands on the endpoint list.
    let first_link = link(&stack, &mine).await;
    browser.goto(&first_link).await;
    let add = browser.wait_for("#new-endpoint", WAIT).await;
    assert_eq!(
        browser.url().await,
        format!("{}/", stack.portal_url),
        "the link is gone from the address bar"
    );
    let cookies = browser.cookies().await;
    let session = cookies.iter().find(|c| c["name"] == "synap_portal_session").expect("a session cookie");
    assert_eq!((session["httpOnly"].as_bool(), session["secure"].as_bool()), (Some(true), Some(true)));
    assert_eq!(session["sameSite"], "Strict");
    assert!(browser.page_text().await.contains("No endpoints yet"));

    // Create an endpoint; the API's complaint appears next to the field at fault.
    browser.click(&add).await;
    let url = browser.wait_for("#f-url", WAIT).await;
    browser.type_into(&url, "ftp://example.com/hook").await;
    let completed = browser.wait_for("input[name=event_types][value='attempt.completed']", WAIT).await;
    browser.click(&completed).await;
    browser.type_into(&browser.wait_for("#f-description", WAIT).await, "Grades sync").await;
    browser.click(&browser.wait_for("#save-endpoint", WAIT).await).await;
    let error = browser.wait_for("#err-url:not(:empty)", WAIT).await;
    assert!(browser.text(&error).await.contains("scheme"), "{}", browser.text(&error).await);
    assert_eq!(browser.attribute(&url, "aria-invalid").await.as_deref(), Some("true"));
    browser.screenshot(&shots.join("endpoint-form-error.png")).await;
    browser.clear(&url).await;
    browser.type_into(&url, &receiver.url("/mine")).await;
    browser.click(&browser.wait_for("#save-endpoint", WAIT).await).await;
    let secret = browser.wait_for("#signing-secret", WAIT).await;
    assert!(browser.text(&secret).await.starts_with("whsec_"));
    browser.click(&browser.wait_for("#open-endpoint", WAIT).await).await;
    browser.wait_for("#no-attempts", WAIT).await;
    let listed = control
        .list_subscriptions(api::ListSubscriptionsRequest { portal_id: mine.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(listed.len(), 1);
    let endpoint = listed[0].clone();
    assert_eq!(
        (endpoint.url.as_str(), endpoint.description.as_str()),
        (receiver.url("/mine").as_str(), "Grades sync")
    );

    // An event published to Kafka appears in the log; resending it makes a second attempt.
    let event = format!("evt-browser-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    publish(&stack, &mine, std::slice::from_ref(&event)).await;
    let row = format!("tr.attempt[data-event-id='{event}']");
    refresh_until(&browser, &row, 1).await;
    assert_eq!(receiver.wait_for("/mine", 1, WAIT).await.len(), 1);
    browser.click(&browser.wait_for(&format!("{row} .resend"), WAIT).await).await;
    browser.wait_for("#action-result .notice", WAIT).await;
    refresh_until(&browser, &row, 2).await;
    assert_eq!(receiver.wait_for("/mine", 2, WAIT).await.len(), 2, "the resent event arrived");
    assert!(receiver.at("/theirs").is_empty());

    // An endpoint that fails once: the log shows the retry, the health view the error.
    receiver.fail_first_attempt("/mine", 503);
    let flaky = format!("evt-browser-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    publish(&stack, &mine, std::slice::from_ref(&flaky)).await;
    let flaky_row = format!("tr.attempt[data-event-id='{flaky}']");
    refresh_until(&browser, &flaky_row, 2).await;
    // The log lists attempts as they were logged, newest first; the sender logs in batches, so
    // two attempts a moment apart may be logged in either order: look them up by number.
    let first = browser.wait_for(&format!("{flaky_row}[data-attempt='1'] .badge"), WAIT).await;
    let second = browser.wait_for(&format!("{flaky_row}[data-attempt='2'] .badge"), WAIT).await;
    assert_eq!(browser.text(&first).await, "retrying");
    assert_eq!(browser.text(&second).await, "delivered");

    // Filtered by outcome: only the retried attempt.
    browser.click(&browser.wait_for("#f-filter_outcome option[value='retrying']", WAIT).await).await;
    browser.click(&browser.wait_for("#refresh", WAIT).await).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // The list re-renders when the filtered page arrives.
        let badges = browser.find_all("tr.attempt .badge").await;
        let mut outcomes = Vec::new();
        for badge in &badges {
            outcomes.push(browser.text(badge).await);
        }
        if outcomes == ["retrying"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "filtered by outcome, the log shows {outcomes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.click(&browser.wait_for("#f-filter_outcome option[value='']", WAIT).await).await;
    browser.click(&browser.wait_for("#refresh", WAIT).await).await;
    refresh_until(&browser, "tr.attempt", 4).await;

    // One attempt in full: the request's headers without their secrets, the response.
    browser.click(&browser.wait_for(&format!("{flaky_row}[data-attempt='1'] .details"), WAIT).await).await;
    let headers = browser.wait_for("#request-headers", WAIT).await;
    let headers = browser.text(&headers).await;
    assert!(headers.contains(&format!("webhook-id: {flaky}")), "{headers}");
    assert!(headers.contains("webhook-signature: v1,… (hidden)"), "{headers}");
    let full = browser.text(&browser.wait_for("#attempt-full", WAIT).await).await;
    assert!(full.contains("503"), "{full}");
    assert!(!browser.page_text().await.contains("whsec_"), "the secret is shown only at creation");
    browser.execute("window.scrollTo(0, 0)", serde_json::json!([])).await;
    browser.screenshot(&shots.join("deliveries.png")).await;

    // Health: the chart is drawn from the attempt log (3 of 4 attempts delivered).
    browser.click(&browser.wait_for("#tab-health", WAIT).await).await;
    browser.wait_for("#health-chart rect.bad", WAIT).await;
    let rate = browser.text(&browser.wait_for("#success-rate", WAIT).await).await;
    assert_eq!(rate, "75.0 %");
    let last_error = browser.text(&browser.wait_for("#last-error", WAIT).await).await;
    assert!(last_error.starts_with("http_status"), "{last_error}");
    browser.execute("window.scrollTo(0, 0)", serde_json::json!([])).await;
    browser.screenshot(&shots.join("health.png")).await;

    // An event that fails for good (503, then 500 on both retries), recovered from the page
    // once the endpoint is back.
    receiver.script("/mine", vec![Reply::Status(500), Reply::Status(500)]);
    let lost = format!("evt-browser-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    publish(&stack, &mine, std::slice::from_ref(&lost)).await;
    browser.click(&browser.wait_for("#tab-deliveries", WAIT).await).await;
    let lost_row = format!("tr.attempt[data-event-id='{lost}']");
    refresh_until(&browser, &lost_row, 3).await;
    let last = browser.wait_for(&format!("{lost_row}[data-attempt='3'] .badge"), WAIT).await;
    assert_eq!(browser.text(&last).await, "failed", "the retry schedule ran out");
    let since = browser.wait_for("#f-since", WAIT).await;
    browser
        .execute(
            "const d = new Date(Date.now() - 3600e3); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
             arguments[0].value = d.toISOString().slice(0, 16);",
            serde_json::json!([since.reference()]),
        )
        .await;
    browser.click(&browser.wait_for("#recover", WAIT).await).await;
    let recovered = browser.wait_for("#recover-result .notice", WAIT).await;
    assert_eq!(browser.text(&recovered).await, "1 sent again.");
    // A recovered delivery starts again at attempt 1.
    refresh_until(&browser, &format!("{lost_row}[data-attempt='1']"), 2).await;
    let mut outcomes = Vec::new();
    for badge in browser.find_all(&format!("{lost_row}[data-attempt='1'] .badge")).await {
        outcomes.push(browser.text(&badge).await);
    }
    outcomes.sort();
    assert_eq!(outcomes, ["delivered", "retrying"], "recovered");

    // A test event, from the page, through the real sender: the endpoint still fails every
    // event's first request, and the page shows its answer.
    browser.click(&browser.wait_for("#send-test", WAIT).await).await;
    let outcome = browser.wait_for("#test-outcome", Duration::from_secs(30)).await;
    assert!(browser.text(&outcome).await.starts_with("failed: HTTP 503"), "{}", browser.text(&outcome).await);

    // Readable on a phone: one column, the same log.
    browser.set_window(390, 844).await;
    browser.execute("window.scrollTo(0, 0)", serde_json::json!([])).await;
    browser.screenshot(&shots.join("phone-deliveries.png")).await;
    browser.set_window(1280, 1000).await;

    // Edit: the form comes filled in; the change is stored.
    browser.click(&browser.wait_for("#edit", WAIT).await).await;
    let description = browser.wait_for("#f-description", WAIT).await;
    let filled =
        browser.execute("return document.getElementById('f-description').value", serde_json::json!([])).await;
    assert_eq!(filled, "Grades sync");
    browser.clear(&description).await;
    browser.type_into(&description, "Grades sync (v2)").await;
    // The wildcards are offered beside the catalogue's types.
    browser.wait_for("#wildcards input[value='*']", WAIT).await;
    browser.wait_for("#wildcards input[value='attempt.*']", WAIT).await;
    // A filter: one that does not parse is refused next to the field, one that does is tested.
    let filter = browser.wait_for("#f-filter", WAIT).await;
    browser.type_into(&filter, "type ==").await;
    browser.click(&browser.wait_for("#test-filter", WAIT).await).await;
    let refused = browser.wait_for("#err-filter:not(:empty)", WAIT).await;
    assert!(browser.text(&refused).await.contains("1:"), "{}", browser.text(&refused).await);
    assert_eq!(browser.attribute(&filter, "aria-invalid").await.as_deref(), Some("true"));
    browser.clear(&filter).await;
    browser.type_into(&filter, r#"type == "attempt.completed""#).await;
    browser.click(&browser.wait_for("#test-filter", WAIT).await).await;
    let matched = browser.wait_for("#filter-result.delivered", WAIT).await;
    assert!(browser.text(&matched).await.starts_with("Matched"), "{}", browser.text(&matched).await);
    // Custom headers: a plain one and a secret one.
    browser.click(&browser.wait_for("#add-header", WAIT).await).await;
    browser.type_into(&browser.wait_for("#f-headers-0-name", WAIT).await, "X-Tenant").await;
    browser.type_into(&browser.wait_for("#f-headers-0-value", WAIT).await, "t-1").await;
    browser.click(&browser.wait_for("#add-header", WAIT).await).await;
    browser.type_into(&browser.wait_for("#f-headers-1-name", WAIT).await, "X-Api-Key").await;
    browser.type_into(&browser.wait_for("#f-headers-1-value", WAIT).await, "hush-1").await;
    browser.click(&browser.wait_for("#f-headers-1-secret", WAIT).await).await;
    browser.screenshot(&shots.join("endpoint-form-filter-headers.png")).await;
    browser.click(&browser.wait_for("#save-endpoint", WAIT).await).await;
    browser.wait_for("#tab-deliveries.current", WAIT).await;
    let edited =
        control.get_subscription(api::GetSubscriptionRequest { id: endpoint.id.clone() }).await.unwrap();
    let edited = edited.into_inner();
    assert_eq!(edited.description, "Grades sync (v2)");
    assert_eq!(edited.event_types, ["attempt.completed"], "the rest unchanged");
    assert_eq!(edited.filter, r#"type == "attempt.completed""#);
    let headers: Vec<_> =
        edited.headers.iter().map(|h| (h.name.as_str(), h.value.as_str(), h.secret)).collect();
    assert_eq!(headers, [("X-Tenant", "t-1", false), ("X-Api-Key", "", true)]);
    let shown = browser.text(&browser.wait_for("#endpoint-headers", WAIT).await).await;
    assert!(shown.contains("X-Api-Key: ••••") && !shown.contains("hush-1"), "{shown}");
    let shown = browser.text(&browser.wait_for("#endpoint-filter", WAIT).await).await;
    assert_eq!(shown, r#"type == "attempt.completed""#);

    // Rotate the signing secret with a one-hour overlap: the new one is shown once.
    browser.click(&browser.wait_for("#tab-secret", WAIT).await).await;
    browser.click(&browser.wait_for("#f-overlap_seconds option[value='3600']", WAIT).await).await;
    browser.click(&browser.wait_for("#rotate", WAIT).await).await;
    let rotated = browser.wait_for("#new-secret", WAIT).await;
    assert!(browser.text(&rotated).await.starts_with("whsec_"));

    // Pause: the page shows it and the API agrees.
    browser.click(&browser.wait_for("#pause", WAIT).await).await;
    browser.wait_for("#resume", WAIT).await;
    assert_eq!(browser.text(&browser.wait_for("#state", WAIT).await).await, "paused");
    let stored =
        control.get_subscription(api::GetSubscriptionRequest { id: endpoint.id.clone() }).await.unwrap();
    assert!(!stored.into_inner().enabled, "paused through the page");

    // The catalogue: the thirteen types with their plan rule and example.
    browser.click(&browser.wait_for("#nav-catalogue", WAIT).await).await;
    browser.wait_for("#type-store-purchase", WAIT).await;
    assert_eq!(browser.find_all("main section.card").await.len(), 13);
    browser.screenshot(&shots.join("catalogue.png")).await;

    // Another portal's link shows its own endpoint, never this one, even when asked by id.
    browser.goto(&link(&stack, &theirs).await).await;
    browser.wait_for("#endpoints", WAIT).await;
    let page = browser.page_text().await;
    assert!(page.contains(&theirs_url) && !page.contains(&receiver.url("/mine")), "{page}");
    browser.goto(&format!("{}/#/ep/{}/deliveries", stack.portal_url, endpoint.id)).await;
    let refusal = browser.wait_for(".notice.error", WAIT).await;
    assert!(browser.text(&refusal).await.contains("not found"), "{}", browser.text(&refusal).await);
    browser.screenshot(&shots.join("other-portal.png")).await;

    // A used link, and an expired one, are refused with a page that says so.
    browser.goto(&first_link).await;
    browser.wait_for("#refused", WAIT).await;
    let late = link(&stack, &mine).await;
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    browser.goto(&late).await;
    browser.wait_for("#refused", WAIT).await;
    browser.screenshot(&shots.join("link-refused.png")).await;
    // The refused links started no session: the page still belongs to the second portal.
    browser.goto(&format!("{}/", stack.portal_url)).await;
    browser.wait_for("#endpoints", WAIT).await;
    assert_eq!(browser.text(&browser.wait_for("#portal", WAIT).await).await, theirs);

    // Delete, after the browser's confirmation.
    browser.click(&browser.wait_for("a.endpoint-link", WAIT).await).await;
    browser.click(&browser.wait_for("#delete", WAIT).await).await;
    browser.accept_dialog().await;
    browser.wait_for("#no-endpoints", WAIT).await;
    let left = control
        .list_subscriptions(api::ListSubscriptionsRequest { portal_id: theirs.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert!(left.is_empty(), "deleted through the page");
}

/// Serves, on `listener`, one HTML page that frames `src`: another site embedding the portal,
/// as Synap's app does. Its address is `http://localhost:<port>`: another site than the portal's
/// 127.0.0.1, and a secure context too.
fn host_page(listener: tokio::net::TcpListener, src: &str) -> (String, tokio::task::JoinHandle<()>) {
    let port = listener.local_addr().unwrap().port();
    let html = format!(
        "<!doctype html><title>Synap app</title><h1>Settings</h1>\
         <iframe id=\"portal\" src=\"{src}\" width=\"1200\" height=\"800\"></iframe>"
    );
    let app =
        axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(html) }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://localhost:{port}/"), server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_site_embeds_the_portal_in_an_iframe_only_when_configured() {
    // The origin that may frame the portal must be known before control starts.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = listener.local_addr().unwrap().port();
    drop(listener);
    let allowed = format!("http://localhost:{allowed_port}");
    let stack = Stack::start_with(&[
        ("SYNAP_PORTAL__COOKIE_SAME_SITE", "none"),
        ("SYNAP_PORTAL__FRAME_ANCESTORS", &format!("[\"{allowed}\"]")),
    ])
    .await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    let browser = Browser::start().await;

    // The configured site: the portal works inside its iframe (the partitioned cookie is kept).
    let link_url = link(&stack, &portal).await;
    let html = format!(
        "<!doctype html><title>Synap app</title><h1>Settings</h1>\
         <iframe id=\"portal\" src=\"{link_url}\" width=\"1200\" height=\"800\"></iframe>"
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", allowed_port)).await.unwrap();
    let app =
        axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(html) }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    browser.goto(&format!("{allowed}/")).await;
    let frame = browser.wait_for("#portal", WAIT).await;
    browser.switch_to_frame(Some(&frame)).await;
    browser.wait_for("#new-endpoint", WAIT).await;
    assert_eq!(browser.text(&browser.wait_for("#portal", WAIT).await).await, portal);
    browser.switch_to_frame(None).await;
    browser.screenshot(&screenshot_dir().join("embedded.png")).await;
    server.abort();

    // Any other site: the browser refuses to render the portal in its frame.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (page, server) = host_page(listener, &link(&stack, &portal).await);
    browser.goto(&page).await;
    let frame = browser.wait_for("#portal", WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    browser.switch_to_frame(Some(&frame)).await;
    assert!(browser.find("#new-endpoint").await.is_none(), "framed by a site not in frame_ancestors");
    browser.switch_to_frame(None).await;
    server.abort();
}
