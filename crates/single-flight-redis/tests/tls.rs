//! Redis over TLS: a `redis-server` that listens on a TLS port only (`--port 0`), with a CA and
//! a server certificate this test makes, and a herd across groups connected with `rediss://`
//! through redis-rs's rustls support (the feature `tokio-rustls`; this file needs
//! `tls-test`, which `cargo xtask ci` enables), as the least-privilege user.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{HANG, MISSING};
use single_flight_redis::{acl_rule, Options, RedisGroup};

/// A CA, and a certificate for `127.0.0.1` signed by it: `(ca, cert, key)` in PEM.
fn certificates() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "single-flight test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A `redis-server` on a TLS port only, killed on drop.
struct TlsServer {
    port: u16,
    ca: String,
    child: Child,
    dir: PathBuf,
}

impl TlsServer {
    fn start() -> TlsServer {
        let (ca, cert, key) = certificates();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("sf-redis-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, pem: &str| -> PathBuf {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let (ca_file, cert_file, key_file) = (
            write("ca.pem", &ca),
            write("cert.pem", &cert),
            write("key.pem", &key),
        );
        let arg = |p: &Path| p.to_str().unwrap().to_owned();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &arg(&cert_file)])
            .args(["--tls-key-file", &arg(&key_file)])
            .args(["--tls-ca-cert-file", &arg(&ca_file)])
            .args(["--tls-auth-clients", "no"])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--loglevel", "warning"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect(MISSING);
        let mut server = TlsServer {
            port,
            ca,
            child,
            dir,
        };
        let deadline = Instant::now() + HANG;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "redis-server exited ({status}): is it built with TLS? (port {port} taken?)"
                );
            }
            if let Ok(mut conn) = server.client("redis", "").get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return server;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on TLS"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client of `user` (`redis` for the default user) that trusts this test's CA.
    fn client(&self, user: &str, password: &str) -> redis::Client {
        let url = if user == "redis" {
            format!("rediss://127.0.0.1:{}/", self.port)
        } else {
            format!("rediss://{user}:{password}@127.0.0.1:{}/", self.port)
        };
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(self.ca.clone().into_bytes()),
        };
        redis::Client::build_with_tls(url, certificates).unwrap()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_across_groups_over_tls_as_the_least_privilege_user() {
    // This test's build enables only rustls's `ring`; install it explicitly all the same.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = TlsServer::start();
    let ns = "tls";
    let mut admin = server.client("redis", "").get_connection().unwrap();
    let mut setuser = redis::cmd("ACL");
    setuser.arg("SETUSER").arg("sf").arg("on").arg(">secret");
    for part in acl_rule(ns).unwrap().split_whitespace() {
        setuser.arg(part);
    }
    let () = setuser.query(&mut admin).unwrap();

    let mut groups = Vec::new();
    for _ in 0..2 {
        let client = server.client("sf", "secret");
        let connect = RedisGroup::<u32, String>::connect(client, ns, Options::new());
        let group = tokio::time::timeout(HANG, connect)
            .await
            .expect("connect hung");
        groups.push(Arc::new(group.unwrap()));
    }
    // The owner's work ends only once the other group waits for it.
    common::herd::gated_herd(&groups, ns, 7, |lease| {
        let w: Option<u64> = redis::cmd("HGET")
            .arg(lease)
            .arg("w")
            .query(&mut admin)
            .unwrap();
        w.unwrap_or(0)
    })
    .await;
    for g in &groups {
        assert_eq!(g.stats().fallbacks, 0);
    }
}
