//! A 3-master local Redis Cluster, started by the test: the crate accepts a cluster connection
//! and one herd per key coalesces (the keys fall into different slots and nodes).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{tag, Server, HANG};
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
    let deadline = Instant::now() + HANG;
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
    // A 3 s lease, renewed every second: no scheduling stall of the test takes it away.
    for _ in 0..3 {
        let builder = redis::cluster::ClusterClientBuilder::new(urls.clone());
        let group: RedisGroup<String, String> = RedisGroup::connect_cluster(
            builder,
            "cluster",
            Options::new().lease(Duration::from_secs(3)),
        )
        .await
        .unwrap();
        groups.push(Arc::new(group));
    }
    let keys: [&'static str; 5] = ["ada", "grace", "edsger", "barbara", "tony"];
    let runs: Vec<Arc<AtomicUsize>> = keys.iter().map(|_| Arc::new(AtomicUsize::new(0))).collect();
    // Every owner's work ends only once the two other groups wait for it.
    let (open, gate) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    // Every caller joins its group's local flight before the gate opens (`first_poll`).
    let polled = Arc::new(AtomicUsize::new(0));
    for group in &groups {
        for (&key, runs) in keys.iter().zip(&runs) {
            for _ in 0..5 {
                let (group, runs, mut gate) = (group.clone(), runs.clone(), gate.clone());
                let call = async move {
                    let value = group
                        .call(key.to_string(), move |k| async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            gate.wait_for(|open| *open).await.unwrap();
                            format!("value of {k}")
                        })
                        .await
                        .unwrap();
                    assert_eq!(value, format!("value of {key}"));
                };
                handles.push(tokio::spawn(common::first_poll(call, polled.clone())));
            }
        }
    }
    common::until(|| polled.load(Ordering::SeqCst) == handles.len()).await;
    tokio::task::block_in_place(|| {
        for key in keys {
            let lease = format!("cluster:{{{}}}:lease", tag(&key));
            let deadline = Instant::now() + HANG;
            while lease_waiters(&nodes, &lease) < 2 {
                assert!(Instant::now() < deadline, "nobody waited for {key}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    open.send(true).unwrap();
    for h in handles {
        tokio::time::timeout(HANG, h).await.expect("hung").unwrap();
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

/// The waiting processes registered in a lease, asked of the node that holds it (the others
/// answer `MOVED`).
fn lease_waiters(nodes: &[Server], lease: &str) -> u64 {
    for node in nodes {
        let mut conn = node.client().get_connection().unwrap();
        if let Ok(w) = redis::cmd("HGET")
            .arg(lease)
            .arg("w")
            .query::<Option<u64>>(&mut conn)
        {
            return w.unwrap_or(0);
        }
    }
    0
}

/// `total_net_output_bytes` of a node, and the size of the `INFO stats` answer that told it
/// (RESP framing included): the next reading counts that answer too.
fn output_bytes(node: &Server) -> (u64, u64) {
    let mut conn = node.client().get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("stats").query(&mut conn).unwrap();
    let bytes = info
        .lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let answer = info.len() + info.len().to_string().len() + 3 + 2;
    (bytes, answer as u64)
}

/// A node's `INFO commandstats`.
fn commands(node: &Server) -> String {
    let mut conn = node.client().get_connection().unwrap();
    redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flights_messages_stay_on_the_node_that_owns_its_slot() {
    let nodes = start_cluster();
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let connect = || async {
        let builder = redis::cluster::ClusterClientBuilder::new(urls.clone());
        Arc::new(
            RedisGroup::<u32, String>::connect_cluster(builder, "shard", Options::new())
                .await
                .unwrap(),
        )
    };
    let (a, b) = (connect().await, connect().await);
    // Warm both groups' connections to every node: slots known, and every script loaded
    // (redis-rs loads a script on every node of a cluster the first time one lacks it).
    for key in 0..30u32 {
        a.call(key, |_| async { String::new() }).await.unwrap();
        b.call(key, |_| async { String::new() }).await.unwrap();
    }
    shared_flight(&a, &b, 999, "warm".to_owned()).await;
    // The node that owns the flight's slot.
    let key = 1000u32;
    let lease = format!("shard:{{{}}}:lease", tag(&key));
    let mut conn = nodes[0].client().get_connection().unwrap();
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&lease)
        .query(&mut conn)
        .unwrap();
    let slots: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<redis::Value>>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|range| {
            let redis::Value::Array(items) = range else {
                panic!("CLUSTER SLOTS")
            };
            let (start, end): (u16, u16) =
                redis::from_redis_value(redis::Value::Array(items[..2].to_vec())).unwrap();
            let redis::Value::Array(node) = items[2].clone() else {
                panic!("CLUSTER SLOTS node")
            };
            let addr: (String, u16) =
                redis::from_redis_value(redis::Value::Array(node[..2].to_vec())).unwrap();
            (start, end, addr)
        })
        .collect();
    let owner_port = slots
        .iter()
        .find(|(s, e, _)| (*s..=*e).contains(&slot))
        .unwrap()
        .2
         .1;
    let before_commands: Vec<String> = nodes.iter().map(commands).collect();
    let before: Vec<(u64, u64)> = nodes.iter().map(output_bytes).collect();
    // A shared flight with a 4 KiB value: `b` waits for `a`.
    shared_flight(&a, &b, key, "v".repeat(4096)).await;
    for ((node, (bytes, answer)), before) in nodes.iter().zip(before).zip(before_commands) {
        let sent = output_bytes(node).0 - bytes - answer;
        // The commands that ran on the node since, other than the test's own `INFO`.
        let ran: Vec<String> = commands(node)
            .lines()
            .filter(|l| !before.contains(*l) && !l.starts_with("cmdstat_info:"))
            .map(|l| l.split(':').next().unwrap().to_owned())
            .collect();
        if node.port == owner_port {
            assert!(sent > 4096, "the owning node sent the value: {sent} B");
            assert!(ran.iter().any(|c| c == "cmdstat_spublish"), "{ran:?}");
        } else {
            // Nothing of the flight ran there (no script, no (un)subscription, no publish),
            // and no value left it: only the answers to the test's own `INFO`s (whose
            // length varies by a few bytes from one reading to the next).
            assert_eq!(ran, Vec::<String>::new(), "node {}", node.port);
            assert!(
                sent < 512,
                "node {} sent {sent} B for a flight it does not own",
                node.port
            );
        }
    }
    for node in &nodes {
        node.assert_clean("shard");
    }
}

/// One flight of `key` that `b` joins while `a` runs it; both get `value`.
async fn shared_flight(
    a: &Arc<RedisGroup<u32, String>>,
    b: &Arc<RedisGroup<u32, String>>,
    key: u32,
    value: String,
) {
    let runs = Arc::new(AtomicUsize::new(0));
    let (r, v) = (runs.clone(), value.clone());
    let (open, mut gate) = tokio::sync::watch::channel(false);
    let owner = tokio::spawn({
        let a = a.clone();
        async move {
            a.call(key, move |_| async move {
                r.fetch_add(1, Ordering::SeqCst);
                gate.wait_for(|open| *open).await.unwrap();
                v
            })
            .await
        }
    });
    // The owner's work ends once `b` listens on the flight's channel and has checked.
    let checked = b.stats().checks;
    let opener = tokio::spawn({
        let b = b.clone();
        async move {
            common::until(|| b.stats().checks > checked).await;
            open.send(true).unwrap();
        }
    });
    let deadline = Instant::now() + HANG;
    while runs.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the work never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (got, origin) = b
        .call(key, |_| async { "b ran it".to_owned() })
        .with_origin()
        .await;
    assert_eq!(
        (got.unwrap(), origin),
        (value.clone(), single_flight_redis::Origin::JoinedRemote)
    );
    opener.await.unwrap();
    assert_eq!(owner.await.unwrap().unwrap(), value);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
