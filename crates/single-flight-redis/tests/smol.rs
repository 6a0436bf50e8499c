//! The group on smol (feature `smol`): `cargo test -p single-flight-redis --features smol --test smol`,
//! and `cargo test --workspace`, where the examples package turns the feature on. The group
//! names `Smol` (with both features the default runtime is tokio's); outside a tokio runtime,
//! redis-rs does its I/O on smol too.

#![cfg(feature = "smol")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use single_flight_redis::{Options, Origin, RedisGroup};
use single_flight_smol::Smol;

#[test]
fn a_herd_coalesces_across_groups_on_smol() {
    let server = Server::start();
    smol::block_on(async {
        // Renewed every 100 ms, a 900 ms lease survives any stall shorter than 800 ms.
        let options = Options::new()
            .lease(Duration::from_millis(900))
            .renew_every(Duration::from_millis(100));
        let mut groups = Vec::new();
        for _ in 0..3 {
            let g: RedisGroup<u32, String, Smol> =
                RedisGroup::connect_on(Smol, server.client(), "smol", options.clone())
                    .await
                    .unwrap();
            groups.push(Arc::new(g));
        }
        let runs = Arc::new(AtomicUsize::new(0));
        // The work lasts more than three leases, and ends only once both other groups wait.
        let open = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        // Every caller joins its group's local flight before the gate opens (`first_poll`).
        let polled = Arc::new(AtomicUsize::new(0));
        for g in &groups {
            for _ in 0..5 {
                let (g, runs, open) = (g.clone(), runs.clone(), open.clone());
                let call = async move {
                    g.call(1, move |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        smol::Timer::after(Duration::from_millis(2800)).await;
                        while !open.load(Ordering::SeqCst) {
                            smol::Timer::after(Duration::from_millis(5)).await;
                        }
                        "v".to_owned()
                    })
                    .with_origin()
                    .await
                };
                tasks.push(smol::spawn(common::first_poll(call, polled.clone())));
            }
        }
        let lease = format!("smol:{{{}}}:lease", common::tag(&1u32));
        // Blocking here is fine: the tasks run on smol's global executor threads.
        server.until_lease_waiters(&lease, 2);
        while polled.load(Ordering::SeqCst) < tasks.len() {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        open.store(true, Ordering::SeqCst);
        let mut origins = Vec::new();
        for t in tasks {
            let (v, origin) = t.await;
            assert_eq!(v.unwrap(), "v");
            origins.push(origin);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            origins
                .iter()
                .filter(|r| **r == Origin::JoinedRemote)
                .count(),
            2
        );
    });
    server.assert_clean("smol");
}
