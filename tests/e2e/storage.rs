//! Bounded storage: the attempt log's time partitions are created ahead and dropped whole when
//! expired (time compressed: 2 s partitions, 6 s retention), while the delivery API still lists
//! what is kept.

use std::time::Duration;

use chrono::{DateTime, Utc};
use synap_proto::control::v1 as api;
use synap_tests::{Receiver, Reply, Stack};

use crate::delivery_support::{add_subscription, event_ids, portal_with_subscription, publish, wait_for_log};

const RETENTION_S: i64 = 6;
const WIDTH_S: i64 = 2;
const AHEAD: i64 = 2;

/// (name, from, to, bytes) of every range partition, oldest first.
async fn partitions(db: &tokio_postgres::Client) -> Vec<(String, DateTime<Utc>, DateTime<Utc>, i64)> {
    db.query(
        "SELECT c.relname::text, m[1]::timestamptz, m[2]::timestamptz,
                coalesce(pg_total_relation_size(c.oid), 0)
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                         'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') m
         WHERE i.inhparent = 'delivery_attempts'::regclass AND m IS NOT NULL ORDER BY 2",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

async fn db_now(db: &tokio_postgres::Client) -> DateTime<Utc> {
    db.query_one("SELECT now()", &[]).await.unwrap().get(0)
}

async fn count(db: &tokio_postgres::Client, sql: &str, ids: &[String]) -> i64 {
    db.query_one(sql, &[&ids]).await.unwrap().get(0)
}

/// A stray row (its finished_at outside every partition), written as the sender would.
async fn stray(db: &tokio_postgres::Client, attempt_id: &str, finished_at: DateTime<Utc>) {
    db.execute(
        "INSERT INTO delivery_attempts (attempt_id, event_id, event_type, portal_id, subscription_id,
             attempt, scheduled_at, sent_at, finished_at, outcome, latency_ms)
         VALUES ($1, 'evt_stray', 'attempt.completed', 'stray', 'sub_stray', 1, $2, $2, $2, 'delivered', 1)",
        &[&attempt_id, &finished_at],
    )
    .await
    .unwrap();
}

async fn partition_of(db: &tokio_postgres::Client, attempt_id: &str) -> Option<String> {
    db.query_opt(
        "SELECT tableoid::regclass::text FROM delivery_attempts WHERE attempt_id = $1",
        &[&attempt_id],
    )
    .await
    .unwrap()
    .map(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attempt_log_keeps_only_its_retention_in_partitions_dropped_whole() {
    let stack = Stack::start_with(&[
        ("SYNAP_ATTEMPTS__RETENTION_SECONDS", "6"),
        ("SYNAP_ATTEMPTS__PARTITION_SECONDS", "2"),
        ("SYNAP_ATTEMPTS__PARTITIONS_AHEAD", "2"),
        ("SYNAP_ATTEMPTS__MAINTAIN_EVERY_SECONDS", "1"),
    ])
    .await;
    let receiver = Receiver::start().await;
    // Every answer has a body and 60 headers of 100 bytes (6 KB): the log keeps at most 32 of them
    // and 4 KiB in all, and the body of failures only.
    let answer = |status: u16, body: &str| Reply::Full {
        status,
        filler_headers: 60,
        filler_value: "v".repeat(100),
        body: body.into(),
    };
    receiver.always("/ok", answer(200, "accepted, thank you"));
    receiver.always("/fail", answer(500, "boom"));
    let (portal, sub, _) = portal_with_subscription(&stack, receiver.url("/ok")).await;
    let db = stack.database().await;

    // Strays: one long expired, one beyond the partitions made so far. Both land in the default
    // partition rather than failing; maintenance drops the first and moves the second.
    let now = db_now(&db).await;
    stray(&db, "stray-expired", now - chrono::Duration::hours(1)).await;
    stray(&db, "stray-ahead", now + chrono::Duration::seconds(12)).await;
    assert_eq!(partition_of(&db, "stray-ahead").await.as_deref(), Some("delivery_attempts_default"));
    // Its partition is made 4 to 6 s ahead, so 6 to 8 s from now; it expires 18 s from now.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    loop {
        let at = partition_of(&db, "stray-ahead").await.expect("the stray ahead is kept");
        if at.starts_with("delivery_attempts_p") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the stray ahead is still in {at}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Waves of deliveries for three retentions' worth of time, the partitions checked after each.
    let mut waves = Vec::new();
    let mut most_bytes = 0;
    for wave in 0..9 {
        let ids = event_ids(&format!("wave{wave}"), 40);
        publish(&stack, &portal, &ids).await;
        waves.push(ids);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (now, parts) = (db_now(&db).await, partitions(&db).await);
        let newest = parts.last().expect("partitions exist").2;
        // Maintenance runs every second; on a loaded machine a round (DDL among inserts) can take
        // most of another: two seconds of slack, and still at least a whole partition ahead.
        assert!(
            newest >= now + chrono::Duration::seconds(WIDTH_S * AHEAD - 2),
            "partitions are made ahead: newest ends {newest}, now {now}: {parts:?}"
        );
        let oldest = parts.first().unwrap().2;
        assert!(
            oldest > now - chrono::Duration::seconds(RETENTION_S + 2),
            "expired partitions are dropped: oldest ends {oldest}, now {now}: {parts:?}"
        );
        let most = (RETENTION_S / WIDTH_S + AHEAD + 3) as usize;
        assert!(parts.len() <= most, "{} partitions, at most {most}: {parts:?}", parts.len());
        most_bytes = most_bytes.max(parts.iter().map(|p| p.3).sum::<i64>());
    }
    let published = waves.iter().map(Vec::len).sum::<usize>();
    receiver.wait_for("/ok", published, Duration::from_secs(60)).await;

    // The first waves are gone with their partitions.
    let stored = "SELECT count(*) FROM delivery_attempts WHERE event_id = ANY($1)";
    assert_eq!(count(&db, stored, &waves[0]).await, 0, "the first wave expired");
    assert_eq!(count(&db, stored, &waves[1]).await, 0, "the second wave expired");
    let oldest_row: Option<DateTime<Utc>> =
        db.query_one("SELECT min(finished_at) FROM delivery_attempts", &[]).await.unwrap().get(0);
    let now = db_now(&db).await;
    assert!(
        oldest_row.is_none_or(|t| t > now - chrono::Duration::seconds(RETENTION_S + WIDTH_S + 3)),
        "nothing older than the retention and one partition: oldest {oldest_row:?}, now {now}"
    );
    assert_eq!(partition_of(&db, "stray-expired").await, None, "the expired stray was dropped");
    let total: i64 = db.query_one("SELECT count(*) FROM delivery_attempts", &[]).await.unwrap().get(0);
    assert!(total < published as i64 / 2, "{total} rows kept of {published} attempts");
    let bytes: i64 = partitions(&db).await.iter().map(|p| p.3).sum();
    assert!(bytes <= most_bytes, "the log does not grow: {bytes} bytes now, {most_bytes} at most before");

    // A fresh wave, listed through the delivery API while it is kept: newest first, over pages,
    // exactly the rows the table holds (rows may expire or arrive between the reads, so what
    // both table reads saw must be listed, and nothing else).
    let fresh = event_ids("fresh", 30);
    publish(&stack, &portal, &fresh).await;
    wait_for_log(&stack, &sub, Duration::from_secs(40), |log| {
        log.iter().filter(|a| fresh.contains(&a.event_id)).count() >= 10
    })
    .await;
    let table = async || -> Vec<i64> {
        db.query("SELECT id FROM delivery_attempts WHERE subscription_id = $1", &[&sub])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let before = table().await;
    let mut deliveries = stack.deliveries().await;
    let (mut listed, mut token) = (Vec::new(), String::new());
    loop {
        let page = deliveries
            .list_attempts(api::ListAttemptsRequest {
                portal_id: portal.clone(),
                subscription_id: sub.clone(),
                page_size: 7,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.attempts.iter().map(|a| a.id.parse::<i64>().unwrap()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let after = table().await;
    let throughout: Vec<i64> = before.iter().copied().filter(|id| after.contains(id)).collect();
    assert!(throughout.len() >= 10, "the fresh rows were kept throughout: {throughout:?}");
    assert!(throughout.iter().all(|id| listed.contains(id)), "listed {listed:?}, kept {throughout:?}");
    assert!(listed.iter().all(|id| before.contains(id) || after.contains(id)), "nothing else listed");
    assert!(listed.windows(2).all(|w| w[0] > w[1]), "newest first, no duplicates: {listed:?}");
    let one = deliveries
        .get_attempt(api::GetAttemptRequest { id: listed[0].to_string() })
        .await
        .unwrap()
        .into_inner();
    assert!(fresh.contains(&one.event_id) && one.outcome == "delivered", "{one:?}");
    assert_eq!(one.response_body, "", "a success's body is not kept by default");
    let header_bytes: usize = one.response_headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(
        (30..=32).contains(&one.response_headers.len()) && header_bytes <= 4096,
        "headers capped: {} of them, {header_bytes} bytes",
        one.response_headers.len()
    );

    // A failure keeps its body.
    let failing = add_subscription(&stack, &portal, receiver.url("/fail")).await;
    publish(&stack, &portal, &event_ids("failing", 1)).await;
    let log = wait_for_log(&stack, &failing, Duration::from_secs(40), |log| !log.is_empty()).await;
    let body: Option<String> = db
        .query_one(
            "SELECT response_body FROM delivery_attempts WHERE subscription_id = $1 LIMIT 1",
            &[&failing],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((log[0].status_code, body.as_deref()), (Some(500), Some("boom")));

    // The operator's commands: one run by hand beside the senders' (one at a time), and a listing.
    let maintained = stack.admin(&["attempts", "maintain"]).await;
    assert!(
        maintained.contains("partitions created:") || maintained.contains("another process is maintaining"),
        "{maintained}"
    );
    let listing = stack.admin(&["attempts", "partitions"]).await;
    assert!(listing.contains("delivery_attempts_p") && listing.contains("total\t"), "{listing}");
}

/// Each attempt is stored once however its batch is written again: a batch holding rows stored
/// already (a reply lost after the commit, rows read back from the attempts topic) stores only
/// the others, whether it was written expecting repeats or not, and a row twice in one batch is
/// stored once. A row PostgreSQL refuses for its data still fails the batch as data, which the
/// sender splits to set that row aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_written_again_stores_each_attempt_once() {
    use synap_db::DbError;
    use synap_db::attempts::{AttemptRow, Outcome, Repeats, insert_batch};

    let stack = Stack::start().await;
    let pool =
        synap_db::connect(&synap_db::DatabaseConfig { url: stack.database_url(), pool_size: 1 }).unwrap();
    let db = stack.database().await;
    let now = db_now(&db).await;
    let row = |n: u32| AttemptRow {
        attempt_id: format!("att-once-{n}"),
        event_id: format!("evt-once-{n}"),
        event_type: "attempt.completed".into(),
        portal_id: "portal-once".into(),
        subscription_id: "sub-once".into(),
        attempt: 1,
        scheduled_at: now,
        sent_at: now,
        finished_at: now,
        outcome: Outcome::Delivered,
        error_class: None,
        error: None,
        status_code: Some(200),
        latency_ms: 3,
        response_headers: Some("{}".into()),
        response_body: None,
        test_send: false,
        source_topic: None,
        source_partition: None,
        source_offset: None,
    };
    let rows = |ns: &[u32]| ns.iter().map(|n| row(*n)).collect::<Vec<_>>();
    let stored = || async {
        db.query(
            "SELECT attempt_id, count(*) FROM delivery_attempts WHERE portal_id = 'portal-once'
             GROUP BY attempt_id ORDER BY attempt_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect::<Vec<_>>()
    };
    let once = |ns: std::ops::Range<u32>| ns.map(|n| (format!("att-once-{n}"), 1)).collect::<Vec<_>>();

    insert_batch(&pool, &rows(&[0, 1, 2]), Repeats::Unlikely).await.unwrap();
    assert_eq!(stored().await, once(0..3));
    insert_batch(&pool, &rows(&[0, 1, 2, 3, 4]), Repeats::Unlikely).await.unwrap();
    assert_eq!(stored().await, once(0..5));
    insert_batch(&pool, &rows(&[3, 4, 5, 6]), Repeats::Possible).await.unwrap();
    assert_eq!(stored().await, once(0..7));
    insert_batch(&pool, &rows(&[7, 7, 8]), Repeats::Unlikely).await.unwrap();
    assert_eq!(stored().await, once(0..9));

    let mut refused = row(9);
    refused.response_headers = Some("{not json".into());
    for repeats in [Repeats::Unlikely, Repeats::Possible] {
        let result = insert_batch(&pool, &[row(1), refused.clone()], repeats).await;
        assert!(matches!(result, Err(DbError::Data(_))), "{repeats:?}: {result:?}");
    }
    assert_eq!(stored().await, once(0..9));
}

/// The harness's own promise: every stack's database is dropped with the stack, or a suite
/// leaves hundreds behind in the shared cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stack_leaves_no_database_behind() {
    let stack = Stack::start().await;
    let url = url::Url::parse(&stack.database_url()).unwrap();
    let name = url.path().trim_start_matches('/').to_owned();
    let db = stack.database().await;
    drop(stack);
    drop(db);
    let admin = std::env::var("SYNAP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://synap:synap@127.0.0.1:5432/synap".into());
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let left = client.query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.unwrap();
    assert!(left.is_empty(), "{name} is still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_replays_the_secret_only_within_its_window() {
    let stack = Stack::start_with(&[("SYNAP_CONTROL__REQUEST_ID_TTL_SECONDS", "3")]).await;
    let mut control = stack.control().await;
    let portal = crate::support::portal_id();
    crate::support::upsert_portal(&mut control, &portal, api::Plan::Pro, &[]).await;
    let request = api::CreateSubscriptionRequest {
        portal_id: portal.clone(),
        url: "http://127.0.0.1:9/hook".into(),
        event_types: vec!["user.updated".into()],
        request_id: "setup-1".into(),
        ..Default::default()
    };
    let first = control.create_subscription(request.clone()).await.unwrap().into_inner();
    let replay = control.create_subscription(request.clone()).await.unwrap().into_inner();
    assert_eq!(replay.subscription, first.subscription, "within the window: the original");
    assert!(first.signing_secret.starts_with("whsec_"));
    assert_eq!(replay.signing_secret, first.signing_secret, "within the window: its secret too");

    tokio::time::sleep(Duration::from_secs(4)).await;
    let late = control.create_subscription(request).await.unwrap_err();
    let id = first.subscription.unwrap().id;
    assert_eq!(late.code(), tonic::Code::AlreadyExists, "{late:?}");
    assert!(late.message().starts_with("request_id: ") && late.message().contains(&id), "{late:?}");
    assert!(!format!("{late:?}").contains(&first.signing_secret), "no secret in the error");
    let listed = control
        .list_subscriptions(api::ListSubscriptionsRequest { portal_id: portal, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.subscriptions.len(), 1, "a late replay creates nothing");
}

/// Maintenance takes its locks in PostgreSQL's own order, the table before its partitions, so DDL
/// an operator (or a migration) runs on the attempt log meanwhile waits for it or it for the DDL,
/// never both. It used to read the default partition before locking the table: `ALTER TABLE
/// delivery_attempts ADD CONSTRAINT …` arriving between the two deadlocked with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_and_ddl_on_the_attempt_log_never_deadlock() {
    // Only the run started below maintains.
    let stack = Stack::start_with(&[("SYNAP_ATTEMPTS__MAINTAIN_EVERY_SECONDS", "0")]).await;
    let mut db = stack.database().await;
    let ddl = db.transaction().await.unwrap();
    // The DDL's first step: the table itself (PostgreSQL's ALTER TABLE takes it, then each partition).
    ddl.batch_execute(
        "SET LOCAL lock_timeout = '10s'; LOCK TABLE ONLY delivery_attempts IN ACCESS EXCLUSIVE MODE",
    )
    .await
    .unwrap();
    let maintain = tokio::spawn(stack.admin_command(&["attempts", "maintain"]));

    // Once the run waits on the table, the DDL goes on to the partitions.
    let observer = stack.database().await;
    synap_tests::postgres::until_waiting(
        &observer,
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'delivery_attempts'::regclass",
        Duration::from_secs(20),
        "the maintenance run never reached the table",
    )
    .await;
    ddl.batch_execute("LOCK TABLE delivery_attempts_default IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the DDL gets the partition: the maintenance run holds none of it while it waits");
    ddl.commit().await.unwrap();

    let output = maintain.await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the maintenance run goes on after the DDL: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
