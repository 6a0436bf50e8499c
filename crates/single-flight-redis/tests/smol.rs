//! The group on smol (feature `smol`): `cargo test -p single-flight-redis --features smol --test smol`,
//! and `cargo test --workspace`, where the examples package turns the feature on. Outside a tokio
//! runtime the group, and redis-rs, run on smol.

#![cfg(feature = "smol")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use single_flight_redis::{Options, RedisGroup, Role};

#[test]
fn a_herd_coalesces_across_groups_on_smol() {
    let server = Server::start();
    smol::block_on(async {
        let options = Options::new().lease(Duration::from_millis(200));
        let mut groups = Vec::new();
        for _ in 0..3 {
            let g: RedisGroup<u32, String> =
                RedisGroup::connect(server.client(), "smol", options.clone())
                    .await
                    .unwrap();
            groups.push(Arc::new(g));
        }
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for g in &groups {
            for _ in 0..5 {
                let (g, runs) = (g.clone(), runs.clone());
                tasks.push(smol::spawn(async move {
                    g.call_with_role(1, move |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        smol::Timer::after(Duration::from_millis(700)).await; // > 3 leases
                        "v".to_owned()
                    })
                    .await
                }));
            }
        }
        let mut roles = Vec::new();
        for t in tasks {
            let (v, role) = t.await;
            assert_eq!(v.unwrap(), "v");
            roles.push(role);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            roles.iter().filter(|r| **r == Role::JoinedRemote).count(),
            2
        );
    });
    server.assert_clean("smol");
}
