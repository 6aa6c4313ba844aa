//! `synapctl` against a live control service: the commands people and scripts run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use synap_tests::Stack;

use crate::support::portal_id;

/// Runs `synapctl --json <args>` with the endpoint and token from the environment, as a user
/// would; returns its JSON output, or its stderr when it failed.
pub(crate) async fn synapctl(stack: &Stack, token: &str, args: &[&str]) -> Result<Value, String> {
    let output = tokio::process::Command::new(synapctl_binary())
        .env_clear()
        .env("SYNAP_ENDPOINT", format!("http://{}", stack.control_addr))
        .env("SYNAP_TOKEN", token)
        .arg("--json")
        .args(args)
        .output()
        .await
        .unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("synapctl {args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
        }))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The `synapctl` built beside the tests.
pub(crate) fn synapctl_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().and_then(|deps| deps.parent()).unwrap().join("synapctl");
    assert!(binary.exists(), "build the binaries first (`cargo build --workspace --bins`)");
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapctl_gives_up_on_a_server_that_never_answers_and_names_its_timeout() {
    // A listener that takes connections and never says a word: a wedged server, a load
    // balancer whose backend is gone. Without a deadline, a script calling synapctl hangs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            connections.push(connection);
        }
    });
    // Over TLS the handshake never finishes; over plaintext HTTP/2 the call is never answered.
    for (endpoint, timeout, says) in [
        (format!("https://{addr}"), None, "not connected within 1 s (--timeout)"),
        (format!("http://{addr}"), Some("1.5"), "no answer within 1.5 s (--timeout)"),
    ] {
        let mut command = tokio::process::Command::new(synapctl_binary());
        command.env_clear().env("SYNAP_ENDPOINT", &endpoint).env("SYNAP_TIMEOUT", "1");
        if let Some(seconds) = timeout {
            command.args(["--timeout", seconds]);
        }
        let started = Instant::now();
        let output =
            tokio::time::timeout(Duration::from_secs(20), command.args(["portal", "get", "p"]).output())
                .await
                .unwrap_or_else(|_| panic!("synapctl to {endpoint} still waiting after 20 s"))
                .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(says), "{endpoint}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(10), "{endpoint}: {:?}", started.elapsed());
    }
    held.abort();

    for refused in ["0", "-3", "3601", "soon"] {
        let output = std::process::Command::new(synapctl_binary())
            .args([&format!("--timeout={refused}"), "event-types"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("--timeout"), "--timeout {refused}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapctl_drives_a_subscription_from_create_to_delete() {
    let stack = Stack::start().await;
    let admin = synap_tests::stack::ADMIN_TOKEN;
    let portal = portal_id();
    let upserted = synapctl(&stack, admin, &["portal", "upsert", &portal, "--plan", "pro"]).await.unwrap();
    assert_eq!(upserted["plan"], "pro");

    // A portal key, as the portal backend would use it.
    let key =
        synapctl(&stack, admin, &["key", "create", "--portal", &portal, "--name", "cli"]).await.unwrap();
    let token = key["token"].as_str().unwrap().to_owned();

    let created = synapctl(
        &stack,
        &token,
        &[
            "subscription",
            "create",
            "--url",
            "https://hooks.example.com/cli",
            "--type",
            "user.updated",
            "--type",
            "invite.sent",
            "--basic-auth",
            "user:pa55",
            "--request-id",
            "cli-1",
        ],
    )
    .await
    .unwrap();
    let id = created["subscription"]["id"].as_str().unwrap().to_owned();
    assert!(created["signing_secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["subscription"]["portal_id"], portal.as_str());

    let listed = synapctl(&stack, &token, &["subscription", "list"]).await.unwrap();
    let subs = listed["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["id"], id.as_str());
    assert_eq!(subs[0]["state"], "active");
    assert_eq!(subs[0]["event_types"], serde_json::json!(["user.updated", "invite.sent"]));

    let paused = synapctl(&stack, &token, &["subscription", "pause", &id]).await.unwrap();
    assert_eq!(paused["state"], "paused");
    let only_paused = synapctl(&stack, &token, &["subscription", "list", "--state", "paused"]).await.unwrap();
    assert_eq!(only_paused["subscriptions"].as_array().unwrap().len(), 1);
    let resumed = synapctl(&stack, &token, &["subscription", "resume", &id]).await.unwrap();
    assert_eq!(resumed["state"], "active");

    let updated = synapctl(&stack, &token, &["subscription", "update", &id, "--description", "from the CLI"])
        .await
        .unwrap();
    assert_eq!(updated["description"], "from the CLI");
    let rotated =
        synapctl(&stack, &token, &["subscription", "rotate-secret", &id, "--overlap", "1h"]).await.unwrap();
    assert!(rotated["signing_secret"].as_str().unwrap().starts_with("whsec_"));
    let types = synapctl(&stack, &token, &["event-types"]).await.unwrap();
    assert_eq!(types["event_types"].as_array().unwrap().len(), 13);

    // Errors name the field and fail the command.
    let error =
        synapctl(&stack, &token, &["subscription", "create", "--url", "ftp://x", "--type", "user.updated"])
            .await
            .unwrap_err();
    assert!(error.contains("InvalidArgument") && error.contains("url"), "{error}");

    let deleted = synapctl(&stack, &token, &["subscription", "delete", &id]).await.unwrap();
    assert_eq!(deleted["deleted"], id.as_str());
    let listed = synapctl(&stack, &token, &["subscription", "list"]).await.unwrap();
    assert!(listed["subscriptions"].as_array().unwrap().is_empty());
    let error = synapctl(&stack, &token, &["subscription", "get", &id]).await.unwrap_err();
    assert!(error.contains("NotFound"), "{error}");

    // Admin views: portals and keys; revoking the key locks the CLI out.
    let portals = synapctl(&stack, admin, &["portal", "list", "--all"]).await.unwrap();
    assert_eq!(portals["portals"][0]["id"], portal.as_str());
    let keys = synapctl(&stack, admin, &["key", "list", "--portal", &portal]).await.unwrap();
    let key_id = keys["api_keys"][0]["id"].as_str().unwrap().to_owned();
    synapctl(&stack, admin, &["key", "revoke", &key_id]).await.unwrap();
    let error = synapctl(&stack, &token, &["subscription", "list"]).await.unwrap_err();
    assert!(error.contains("Unauthenticated"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapctl_sets_signature_schemes_and_custom_headers() {
    let stack = Stack::start().await;
    let admin = synap_tests::stack::ADMIN_TOKEN;
    let portal = portal_id();
    synapctl(&stack, admin, &["portal", "upsert", &portal, "--plan", "pro"]).await.unwrap();
    let base = [
        "subscription",
        "create",
        "--portal",
        &portal,
        "--url",
        "https://hooks.example.com/x",
        "--type",
        "user.updated",
    ];

    let with = |extra: &[&'static str]| [base.as_slice(), extra].concat();
    let created = synapctl(
        &stack,
        admin,
        &with(&[
            "--signature-scheme",
            "v1a",
            "--header",
            "X-Tenant=acme=eu",
            "--secret-header",
            "X-Key=s3cr3t-cli",
        ]),
    )
    .await
    .unwrap();
    assert!(!created.to_string().contains("s3cr3t-cli"), "{created}");
    assert_eq!(created["signing_secret"], "", "v1a has no shared secret");
    let sub = &created["subscription"];
    assert_eq!(sub["signature_scheme"], "v1a");
    assert!(sub["signing_public_keys"][0]["public_key"].as_str().unwrap().starts_with("whpk_"), "{sub}");
    assert_eq!(
        sub["headers"],
        serde_json::json!([{ "name": "X-Tenant", "value": "acme=eu" }, { "name": "X-Key", "secret": true }])
    );
    let id = sub["id"].as_str().unwrap().to_owned();

    let updated =
        synapctl(&stack, admin, &["subscription", "update", &id, "--header", "X-New=1"]).await.unwrap();
    assert_eq!(updated["headers"], serde_json::json!([{ "name": "X-New", "value": "1" }]));
    let refused =
        synapctl(&stack, admin, &["subscription", "update", &id, "--header", "Host=evil"]).await.unwrap_err();
    assert!(refused.contains("headers.headers[0].name"), "{refused}");
    let cleared = synapctl(&stack, admin, &["subscription", "update", &id, "--clear-headers"]).await.unwrap();
    assert_eq!(cleared["headers"], serde_json::json!([]));
    let malformed = synapctl(&stack, admin, &with(&["--secret-header", "X-Key"])).await.unwrap_err();
    assert!(malformed.contains("--secret-header takes NAME=VALUE"), "{malformed}");
    let unknown = synapctl(&stack, admin, &with(&["--signature-scheme", "v2"])).await.unwrap_err();
    assert!(unknown.contains("unknown signature scheme"), "{unknown}");

    // A v1 subscription moved to v1a.
    let v1 = synapctl(&stack, admin, &with(&[])).await.unwrap();
    let v1_id = v1["subscription"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v1["subscription"]["signature_scheme"], "v1");
    let rotated = synapctl(
        &stack,
        admin,
        &["subscription", "rotate-secret", &v1_id, "--signature-scheme", "v1a", "--overlap", "60s"],
    )
    .await
    .unwrap();
    assert_eq!(
        (&rotated["signature_scheme"], &rotated["signing_secret"]),
        (&Value::from("v1a"), &Value::from(""))
    );
    assert!(rotated["public_key"].as_str().unwrap().starts_with("whpk_"), "{rotated}");
    let got = synapctl(&stack, admin, &["subscription", "get", &v1_id]).await.unwrap();
    assert_eq!(got["signature_scheme"], "v1a");
    assert_eq!(got["signing_public_keys"][0]["public_key"], rotated["public_key"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapctl_sets_filters_and_wildcards_and_tests_filters() {
    let stack = Stack::start().await;
    let admin = synap_tests::stack::ADMIN_TOKEN;
    let portal = portal_id();
    synapctl(&stack, admin, &["portal", "upsert", &portal, "--plan", "pro"]).await.unwrap();
    let filter = r#"data.exam.id == "exm_1c9a63d2f8" && data.attempt.scoreFrac < 0.5"#;
    let created = synapctl(
        &stack,
        admin,
        &[
            "subscription",
            "create",
            "--portal",
            &portal,
            "--url",
            "https://hooks.example.com/f",
            "--type",
            "exam.*",
            "--filter",
            filter,
        ],
    )
    .await
    .unwrap();
    let sub = &created["subscription"];
    assert_eq!(sub["event_types"], serde_json::json!(["exam.*"]));
    assert_eq!(sub["filter"], filter);
    let id = sub["id"].as_str().unwrap().to_owned();

    // The stored filter on the example exam.completed: its score is above one half.
    let tested = synapctl(&stack, admin, &["subscription", "test-filter", &id, "--type", "exam.completed"])
        .await
        .unwrap();
    assert_eq!(tested, serde_json::json!({ "matched": false, "error": "", "event_type": "exam.completed" }));
    // A body of one's own, from a file.
    let mut body = synap_contract::EventType::ExamCompleted.example_body();
    body["attempt"]["scoreFrac"] = serde_json::json!(0.25);
    let path = std::env::temp_dir().join(format!("synapctl-body-{}.json", portal));
    std::fs::write(&path, body.to_string()).unwrap();
    let tested = synapctl(
        &stack,
        admin,
        &["subscription", "test-filter", &id, "--type", "exam.completed", "--body", path.to_str().unwrap()],
    )
    .await
    .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(tested["matched"], true);

    let refused =
        synapctl(&stack, admin, &["subscription", "update", &id, "--filter", "data.exam.title == 1"])
            .await
            .unwrap_err();
    assert!(
        refused.contains("InvalidArgument") && refused.contains("filter: 1:1: data.exam.title"),
        "{refused}"
    );
    let cleared = synapctl(&stack, admin, &["subscription", "update", &id, "--clear-filter"]).await.unwrap();
    assert_eq!(cleared["filter"], "");
    let refused =
        synapctl(&stack, admin, &["subscription", "update", &id, "--type", "user.**"]).await.unwrap_err();
    assert!(refused.contains("event_types.codes[0]"), "{refused}");
}
