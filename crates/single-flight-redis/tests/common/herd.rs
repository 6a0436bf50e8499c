//! A gated herd across groups (each with its own connection, as processes have), for the tests
//! that run one over a particular connection: an ACL user (`acl.rs`), TLS (`tls.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use single_flight_redis::{Origin, RedisGroup};

use super::{first_poll, tag, until};

/// Five callers per group call `key` of namespace `ns`. The first group's work runs and ends
/// only once every other group waits for it (`lease_waiters(lease key)` counts them) and every
/// caller has joined its group's local flight (`first_poll`). Asserts one run, the owner's
/// value for every caller, and one `JoinedRemote` caller per other group.
pub async fn gated_herd(
    groups: &[Arc<RedisGroup<u32, String>>],
    ns: &str,
    key: u32,
    mut lease_waiters: impl FnMut(&str) -> u64,
) {
    let runs = Arc::new(AtomicUsize::new(0));
    let (open, gate) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    let polled = Arc::new(AtomicUsize::new(0));
    for (i, group) in groups.iter().enumerate() {
        for _ in 0..5 {
            let (group, runs, mut gate) = (group.clone(), runs.clone(), gate.clone());
            let call = async move {
                group
                    .call(key, move |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        gate.wait_for(|open| *open).await.unwrap();
                        format!("from-{i}")
                    })
                    .with_origin()
                    .await
            };
            handles.push(tokio::spawn(first_poll(call, polled.clone())));
        }
        if i == 0 {
            until(|| runs.load(Ordering::SeqCst) == 1).await;
        }
    }
    let lease = format!("{ns}:{{{}}}:lease", tag(&key));
    let others = groups.len() as u64 - 1;
    until(|| lease_waiters(&lease) >= others).await;
    until(|| polled.load(Ordering::SeqCst) == handles.len()).await;
    open.send(true).unwrap();
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|(v, _)| v.as_ref().unwrap() == "from-0"));
    let remote = results
        .iter()
        .filter(|(_, origin)| *origin == Origin::JoinedRemote)
        .count();
    assert_eq!(remote as u64, others);
}
