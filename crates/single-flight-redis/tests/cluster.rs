//! A 3-master local Redis Cluster, started by the test: the crate accepts a cluster connection
//! and one herd per key coalesces (the keys fall into different slots and nodes).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use single_flight_redis::{Options, RedisGroup};

fn start_cluster() -> Vec<Server> {
    let nodes: Vec<Server> = (0..3)
        .map(|_| {
            Server::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ])
        })
        .collect();
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli (package redis-tools, installed with redis-server)");
    assert!(status.success(), "redis-cli --cluster create failed");
    // Wait until every node sees the whole cluster.
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in &nodes {
        loop {
            let mut conn = node.client().get_connection().unwrap();
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster never became ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_coalesces_on_a_three_master_cluster() {
    let nodes = start_cluster();
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let mut groups = Vec::new();
    for _ in 0..3 {
        let builder = redis::cluster::ClusterClientBuilder::new(urls.clone());
        let group: RedisGroup<String, String> = RedisGroup::connect_cluster(
            builder,
            "cluster",
            Options::new().lease(Duration::from_millis(500)),
        )
        .await
        .unwrap();
        groups.push(Arc::new(group));
    }
    let keys: [&'static str; 5] = ["ada", "grace", "edsger", "barbara", "tony"];
    let runs: Vec<Arc<AtomicUsize>> = keys.iter().map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut handles = Vec::new();
    for group in &groups {
        for (&key, runs) in keys.iter().zip(&runs) {
            for _ in 0..5 {
                let (group, runs) = (group.clone(), runs.clone());
                handles.push(tokio::spawn(async move {
                    let value = group
                        .call(key.to_string(), move |k| async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            format!("value of {k}")
                        })
                        .await
                        .unwrap();
                    assert_eq!(value, format!("value of {key}"));
                }));
            }
        }
    }
    for h in handles {
        h.await.unwrap();
    }
    for (key, runs) in keys.iter().zip(&runs) {
        assert_eq!(runs.load(Ordering::SeqCst), 1, "executions for {key}");
    }
    for group in &groups {
        assert_eq!(group.stats().fallbacks, 0);
        assert_eq!(group.in_flight(), 0);
    }
    for node in &nodes {
        node.assert_clean("cluster");
    }
}
