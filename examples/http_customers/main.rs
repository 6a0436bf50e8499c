//! An HTTP service that looks customers up in SQLite, with concurrent lookups of the same name
//! coalesced by a [`KeyedGroup`]: however many requests ask for `ada` at once, the database runs
//! one query and every request gets its answer.
//!
//! `GET /customers?name=ada` answers `{"name":"ada","id":1}` (200), an unknown name gets 404,
//! bad input (missing, empty, longer than 64 characters, control characters, invalid UTF-8)
//! gets 400 and a database failure gets 500. Add `&coalesce=false` to bypass the group. Every
//! answer says in the `x-single-flight-shared` header whether it went to more than one request.
//!
//! The database is a real SQLite (the `rusqlite` crate, SQLite compiled in), in memory, seeded at
//! start-up, behind a pool of connections. Each query deliberately takes 128 ms and the pool runs
//! at most 64 at once, like a busy database server.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example http_customers                  # built-in load test, then exit
//! cargo run --release --example http_customers -- --serve       # keep serving on 127.0.0.1:3000
//! cargo run --release --example http_customers -- --serve 127.0.0.1:8080
//! cargo run --release --example http_customers -- --requests 5000 --concurrency 400
//! ```
//!
//! Without `--serve`, it starts the server on a free localhost port, sends the same load twice
//! with an HTTP client (2,000 requests over ten names, two of them unknown, from 200 concurrent
//! connections), once coalesced and once with `coalesce=false`, prints the database queries
//! and latencies of both runs, and exits non-zero if the numbers are not what coalescing
//! promises. Each connection takes two file descriptors (client and server are one process): under
//! a low `ulimit -n` (macOS defaults to 256), pass `--concurrency 100`.
//!
//! `cargo test -p single-flight-examples --examples` runs the handler's tests.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;
use single_flight::{GroupStats, KeyedGroup, Role};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long one query takes (the `time.Sleep(128 * time.Millisecond)` of the Go original).
const QUERY_TIME: Duration = Duration::from_millis(128);
/// How many queries the database runs at once: the size of the connection pool.
const POOL_SIZE: usize = 64;
/// The longest name the service accepts, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Customers seeded with well-known names (the ids are their row ids, 1 to 8).
const KNOWN: [&str; 8] = [
    "ada", "alan", "barbara", "donald", "edsger", "grace", "ken", "margaret",
];
/// Names the load asks for that are not in the database.
const UNKNOWN: [&str; 2] = ["mallory", "trudy"];
/// Filler customers, so that the table is not trivially small.
const FILLER: usize = 10_000;

/// What a lookup returns: the customer's id, `None` for an unknown name, or the database error.
/// The error is in an `Arc` because every request that shared the query gets a clone.
type Lookup = Result<Option<i64>, Arc<DbError>>;

mod db;
mod load;
mod server;
#[cfg(test)]
mod tests;

use crate::db::*;
use crate::load::*;
use crate::server::*;

/// Command-line options.
#[derive(Debug)]
struct Options {
    serve: Option<String>,
    requests: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        serve: None,
        requests: 2_000,
        concurrency: 200,
    };
    let mut args = std::env::args().skip(1).peekable();
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> Result<usize, String> {
            args.next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .ok_or(format!("{what} needs a positive number"))
        };
        match arg.as_str() {
            "--serve" => {
                let addr = match args.peek() {
                    Some(next) if !next.starts_with("--") => args.next(),
                    _ => None,
                };
                options.serve = Some(addr.unwrap_or_else(|| "127.0.0.1:3000".into()));
            }
            "--requests" => options.requests = number("--requests")?,
            "--concurrency" => options.concurrency = number("--concurrency")?,
            "-h" | "--help" => {
                println!("usage: http_customers [--serve [ADDR]] [--requests N] [--concurrency N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("http_customers: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The group's counters over one load run.
fn print_counters(mode: &str, before: &GroupStats, after: &GroupStats) {
    println!(
        "  {mode}: group counters: {} flights started, {} requests joined one, {} abandoned, \
         {} with a panic, {} expired; {} in flight",
        after.started - before.started,
        after.joined - before.joined,
        after.abandoned - before.abandoned,
        after.panicked - before.panicked,
        after.expired - before.expired,
        after.in_flight,
    );
}

async fn run() -> Result<(), String> {
    let options = parse_args()?;
    let db = Arc::new(
        Database::open(POOL_SIZE, QUERY_TIME).map_err(|e| format!("cannot open SQLite: {e}"))?,
    );
    let listen = options.serve.as_deref().unwrap_or("127.0.0.1:0");
    let group = Arc::new(KeyedGroup::new());
    let addr = start_server(listen, db.clone(), group.clone())
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let base = format!("http://{addr}");
    println!(
        "SQLite in memory: {} customers; each query takes {} ms, at most {POOL_SIZE} at once",
        KNOWN.len() + FILLER,
        QUERY_TIME.as_millis()
    );
    println!("listening on {base}");

    if options.serve.is_some() {
        println!();
        println!("try:");
        println!("  curl -i '{base}/customers?name=ada'");
        println!("  curl -i '{base}/customers?name=mallory'               # 404");
        println!("  curl -i '{base}/customers?name='                      # 400");
        println!("  curl -i '{base}/customers?name=ada&coalesce=false'    # bypass the group");
        println!("  curl -s '{base}/stats'                                # the group's counters");
        println!(
            "  for i in $(seq 50); do curl -s -w '\\n' '{base}/customers?name=grace' & done; wait"
        );
        println!("press Ctrl-C to stop");
        let counter = db.clone();
        tokio::spawn(async move {
            let mut shown = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let queries = counter.queries();
                if queries != shown {
                    println!("database queries so far: {queries}");
                    shown = queries;
                }
            }
        });
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
        println!("\n{} database queries in total", db.queries());
        return Ok(());
    }

    println!(
        "load: {} requests over {} names ({} unknown) from {} concurrent connections, twice",
        options.requests,
        KNOWN.len() + UNKNOWN.len(),
        UNKNOWN.len(),
        options.concurrency
    );
    println!();
    let mut reports = Vec::new();
    for coalesce in [true, false] {
        let before = group.stats();
        let report = run_load(&base, &db, coalesce, options.requests, options.concurrency).await;
        print_counters(report.mode, &before, &group.stats());
        reports.push(report);
    }
    println!();
    print_table(&reports);
    println!();

    let (with, without) = (&reports[0], &reports[1]);
    for report in &reports {
        if report.failed > 0 {
            return Err(format!(
                "{} of {} requests failed ({} mode), the first with: {}",
                report.failed,
                report.requests,
                report.mode,
                report.first_failure.as_deref().unwrap_or("?")
            ));
        }
    }
    if without.queries != without.requests as u64 {
        return Err(format!(
            "without coalescing, {} requests should run as many queries, not {}",
            without.requests, without.queries
        ));
    }
    if with.queries * 2 > with.requests as u64 {
        return Err(format!(
            "with coalescing, {} requests ran {} queries: expected far fewer",
            with.requests, with.queries
        ));
    }
    println!(
        "coalescing answered {} requests with {} queries ({:.0}x fewer) and no errors",
        with.requests,
        with.queries,
        with.requests as f64 / with.queries.max(1) as f64
    );
    Ok(())
}
