//! Least privilege: a group under a Redis user with exactly `acl_rule`'s rights coalesces a
//! herd across groups (each with its own connection, as processes have), and a user with one
//! right less is refused at `connect` with `ErrorKind::Permission`, never a hang or a silent
//! fallback. (`processes.rs` runs a herd of real processes under such a user.)

mod common;

use std::sync::Arc;

use common::{Server, HANG};
use single_flight_redis::{acl_rule, ErrorKind, FailurePolicy, Options, Origin, RedisGroup};

type Group = Arc<RedisGroup<u32, String>>;

async fn connect(
    url: &str,
    ns: &str,
    options: Options,
) -> Result<Group, single_flight_redis::Error> {
    let client = redis::Client::open(url).unwrap();
    let connected = tokio::time::timeout(HANG, RedisGroup::connect(client, ns, options))
        .await
        .expect("connect hung");
    connected.map(Arc::new)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_rule_is_enough_for_a_herd_across_groups() {
    let server = Server::start();
    let ns = "acl";
    let url = server.acl_user("sf", "secret", &acl_rule(ns).unwrap());
    let groups = [
        connect(&url, ns, Options::new()).await.unwrap(),
        connect(&url, ns, Options::new()).await.unwrap(),
        connect(&url, ns, Options::new()).await.unwrap(),
    ];
    common::herd::gated_herd(&groups, ns, 1, |lease| server.lease_waiters(lease)).await;
    for g in &groups {
        let stats = g.stats();
        assert_eq!((stats.fallbacks, stats.redis_failures), (0, 0), "{stats:?}");
    }
    server.assert_clean(ns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_one_right_less_is_refused_at_connect() {
    let server = Server::start();
    let ns = "acl";
    let rule = acl_rule(ns).unwrap();
    let parts: Vec<&str> = rule.split_whitespace().collect();
    for (i, part) in parts.iter().enumerate() {
        // The sharded pub/sub commands serve clusters only; `-@all` and the resets take
        // rights away, they give none.
        if ["+ssubscribe", "+sunsubscribe", "+spublish"].contains(part)
            || ["-@all", "resetkeys", "resetchannels"].contains(part)
        {
            continue;
        }
        let less: Vec<&str> = parts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| *p)
            .collect();
        let url = server.acl_user("less", "secret", &less.join(" "));
        for policy in [FailurePolicy::Fallback, FailurePolicy::Strict] {
            let options = Options::new().failure_policy(policy);
            let error = connect(&url, ns, options)
                .await
                .expect_err(&format!("connected without {part}"));
            assert_eq!(
                error.kind(),
                ErrorKind::Permission,
                "without {part}: {error}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_taken_away_after_connect_is_a_logged_fallback_or_a_permission_error() {
    let server = Server::start();
    let ns = "acl";
    let url = server.acl_user("sf", "secret", &acl_rule(ns).unwrap());
    let lenient = connect(&url, ns, Options::new()).await.unwrap();
    let strict = connect(
        &url,
        ns,
        Options::new().failure_policy(FailurePolicy::Strict),
    )
    .await
    .unwrap();
    let mut admin = server.client().get_connection().unwrap();
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("sf")
        .arg("-evalsha")
        .query(&mut admin)
        .unwrap();
    let (error, _) = strict
        .call(1, |_| async { "never".to_owned() })
        .with_origin()
        .await;
    assert_eq!(error.unwrap_err().kind(), ErrorKind::Permission);
    let (value, origin) = lenient
        .call(1, |_| async { "here".to_owned() })
        .with_origin()
        .await;
    assert_eq!(
        (value.unwrap().as_str(), origin),
        ("here", Origin::Fallback)
    );
    assert_eq!(
        (lenient.stats().fallbacks, lenient.stats().redis_failures),
        (1, 1)
    );
}
