//! `synapctl` against a live control service: the commands people and scripts run.

use serde_json::Value;
use synap_tests::Stack;

use crate::support::portal_id;

/// Runs `synapctl --json <args>` with the endpoint and token from the environment, as a user
/// would; returns its JSON output, or its stderr when it failed.
pub(crate) async fn synapctl(stack: &Stack, token: &str, args: &[&str]) -> Result<Value, String> {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().and_then(|deps| deps.parent()).unwrap().join("synapctl");
    assert!(binary.exists(), "build the binaries first (`cargo build --workspace --bins`)");
    let output = tokio::process::Command::new(binary)
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
