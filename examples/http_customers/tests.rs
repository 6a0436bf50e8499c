//! The handler's tests, against a server on a free localhost port with its own database.

use super::*;

/// A server on a free port with its own database; queries take `query_time`.
async fn server(query_time: Duration) -> (String, Arc<Database>) {
    let db = Arc::new(Database::open(8, query_time).unwrap());
    let group = Arc::new(KeyedGroup::new());
    let addr = start_server("127.0.0.1:0", db.clone(), group.clone())
        .await
        .unwrap();
    (format!("http://{addr}"), db)
}

/// `GET url`: the status, the role header and the JSON body.
async fn get(url: &str) -> (StatusCode, Option<String>, serde_json::Value) {
    let response = http_client().get(url.parse().unwrap()).await.unwrap();
    let status = response.status();
    let shared = response
        .headers()
        .get("x-single-flight-role")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{url}: body {body:?} is not JSON: {e}"));
    (status, shared, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_name_gets_its_id() {
    let (base, db) = server(Duration::ZERO).await;
    let (status, shared, body) = get(&format!("{base}/customers?name=grace")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "name": "grace", "id": 6 }));
    assert_eq!(shared.as_deref(), Some("started"));
    let (status, _, body) = get(&format!("{base}/customers?name=customer-00041")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], KNOWN.len() + 42);
    assert_eq!(db.queries(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_name_is_404() {
    let (base, db) = server(Duration::ZERO).await;
    for flag in ["", "&coalesce=false"] {
        let (status, _, body) = get(&format!("{base}/customers?name=mallory{flag}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({ "error": "no customer named \"mallory\"" }));
    }
    assert_eq!(db.queries(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_and_never_reaches_the_database() {
    let (base, db) = server(Duration::ZERO).await;
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    let cases = [
        ("", "missing query parameter `name`"),
        ("?coalesce=false", "missing query parameter `name`"),
        ("?name=", "`name` is empty"),
        (
            &format!("?name={long}"),
            "`name` is longer than 64 characters",
        ),
        ("?name=ada%00", "`name` contains non-printable characters"),
        ("?name=%07bell", "`name` contains non-printable characters"),
        ("?name=a%0Ab", "`name` contains non-printable characters"),
        ("?name=%FF%FE", "`name` is not valid UTF-8"),
    ];
    for (query, message) in cases {
        let (status, _, body) = get(&format!("{base}/customers{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body, json!({ "error": message }), "{query}");
    }
    // Rejected by the query-string parser: a flag that is not a bool.
    let (status, _, body) = get(&format!("{base}/customers?name=ada&coalesce=maybe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("coalesce"),
        "{body}"
    );
    // Exactly 64 characters, including non-ASCII ones, is fine (and unknown).
    let edge = "é".repeat(MAX_NAME_CHARS);
    let (status, _, _) = get(&format!("{base}/customers?name={}", encode(&edge))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(db.queries(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_failure_is_500() {
    let (base, db) = server(Duration::ZERO).await;
    db.execute_batch("DROP TABLE customers").unwrap();
    for flag in ["", "&coalesce=false"] {
        let (status, _, body) = get(&format!("{base}/customers?name=ada{flag}")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({ "error": "database failure" }));
    }
    assert_eq!(db.queries(), 2);
}

/// Sends `n` concurrent requests for `query`; returns the statuses and role headers.
async fn herd(base: &str, query: &str, n: usize) -> Vec<(StatusCode, Option<String>)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let url = format!("{base}/customers{query}");
            tokio::spawn(async move {
                let (status, shared, _) = get(&url).await;
                (status, shared)
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_query() {
    // The query is slow enough that all 20 requests arrive while it runs.
    let (base, db) = server(Duration::from_millis(750)).await;
    let answers = herd(&base, "?name=ada", 20).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK));
    let started = |role: &str| {
        answers
            .iter()
            .filter(|a| a.1.as_deref() == Some(role))
            .count()
    };
    assert_eq!((started("started"), started("joined")), (1, 19));
    assert_eq!(db.queries(), 1);
    let stats = get(&format!("{base}/stats")).await.2;
    assert_eq!(
        (stats["started"].as_u64(), stats["joined"].as_u64()),
        (Some(1), Some(19))
    );
    assert_eq!(stats["in_flight"].as_u64(), Some(0));

    // A herd that bypasses the group: one query per request.
    let answers = herd(&base, "?name=ada&coalesce=false", 8).await;
    assert!(answers
        .iter()
        .all(|a| *a == (StatusCode::OK, Some("bypassed".into()))));
    assert_eq!(db.queries(), 9);

    // A failure is shared too, and the next flight sees the database again.
    db.execute_batch("ALTER TABLE customers RENAME TO gone")
        .unwrap();
    let answers = herd(&base, "?name=ken", 10).await;
    assert!(answers
        .iter()
        .all(|a| a.0 == StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(db.queries(), 10);
    db.execute_batch("ALTER TABLE gone RENAME TO customers")
        .unwrap();
    let (status, _, body) = get(&format!("{base}/customers?name=ken")).await;
    assert_eq!((status, body["id"].as_i64()), (StatusCode::OK, Some(7)));
}

#[test]
fn percentiles() {
    let report = LoadReport {
        mode: "test",
        requests: 100,
        ok: 100,
        not_found: 0,
        failed: 0,
        first_failure: None,
        queries: 1,
        latencies: (1..=100).map(Duration::from_millis).collect(),
        elapsed: Duration::ZERO,
    };
    assert_eq!(report.percentile(50.0), Duration::from_millis(50));
    assert_eq!(report.percentile(99.0), Duration::from_millis(99));
    assert_eq!(report.percentile(100.0), Duration::from_millis(100));
}

/// Percent-encodes every byte (enough for a test).
fn encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}
