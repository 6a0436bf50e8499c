//! Many workers share one access token that expires every few hundred milliseconds; when it
//! expires, an unkeyed [`Group`] makes sure that exactly one refresh runs, however many workers
//! notice the expiry at once, and all of them get the new token.
//!
//! 32 workers each make 20 API requests over about 2 s, on tokio's paused clock (the run takes
//! simulated time, not real time). Tokens live 300 ms and a refresh takes 40 ms. The same
//! workload runs a second time with every worker refreshing on its own, for comparison.
//!
//! The refresh work looks at the token again before it asks the auth server: a worker that saw
//! the old token expire just before another worker's refresh ended would otherwise start a
//! second refresh (a flight shares one execution, it caches nothing; see `refresh`).
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example refresh_token
//! ```
//!
//! It exits non-zero unless, with the group, each expiry caused exactly one refresh.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use single_flight::Group;
use tokio::time::Instant;

const WORKERS: usize = 32;
const REQUESTS_PER_WORKER: usize = 20;
const TOKEN_LIFETIME: Duration = Duration::from_millis(300);
const REFRESH_TIME: Duration = Duration::from_millis(40);

/// An access token.
#[derive(Debug, Clone)]
struct Token {
    /// Which token this is: 1, 2, 3...
    serial: u64,
    value: String,
    expires_at: Instant,
}

impl Token {
    fn is_valid(&self) -> bool {
        Instant::now() < self.expires_at
    }
}

/// What happened to one token.
#[derive(Debug, Default, Clone)]
struct TokenLog {
    issued_at: Duration,
    /// Workers that found this token expired and asked for a new one.
    expiry_seen_by: usize,
    /// Refreshes that replaced this token (the point of the example: 1).
    replaced_by: usize,
}

/// The token shared by all workers.
#[derive(Debug)]
struct TokenSource {
    current: Mutex<Option<Token>>,
    refreshing: Group<Token>,
    /// Whether workers go through `refreshing` or each refresh on their own.
    coalesce: bool,
    log: Mutex<BTreeMap<u64, TokenLog>>,
    start: Instant,
}

impl TokenSource {
    fn new(coalesce: bool) -> Self {
        Self {
            current: Mutex::new(None),
            refreshing: Group::new(),
            coalesce,
            log: Mutex::new(BTreeMap::new()),
            start: Instant::now(),
        }
    }

    fn current(&self) -> Option<Token> {
        lock(&self.current).clone()
    }

    /// A valid token: the current one, or a fresh one if it has expired.
    async fn token(self: &Arc<Self>) -> Token {
        let stale = match self.current() {
            Some(token) if token.is_valid() => return token,
            Some(token) => {
                lock(&self.log)
                    .entry(token.serial)
                    .or_default()
                    .expiry_seen_by += 1;
                Some(token.serial)
            }
            None => None,
        };
        if !self.coalesce {
            return self.refresh(stale).await;
        }
        let source = self.clone();
        self.refreshing
            .call(move || async move { source.refresh(stale).await })
            .await
    }

    /// Replaces the token `stale` (`None`: there was none yet), unless that has been done.
    async fn refresh(&self, stale: Option<u64>) -> Token {
        if self.coalesce {
            // A flight shares one execution; it does not remember the last one. A worker that
            // saw token 3 expire just before another worker's refresh of token 3 ended starts a
            // new flight: it must find token 4 here instead of replacing it with token 5.
            if let Some(token) = self.current().filter(Token::is_valid) {
                return token;
            }
        }
        tokio::time::sleep(REFRESH_TIME).await; // the round trip to the auth server
        let mut current = lock(&self.current);
        let serial = current.as_ref().map_or(0, |t| t.serial) + 1;
        let token = Token {
            serial,
            value: format!("token-{serial}"),
            expires_at: Instant::now() + TOKEN_LIFETIME,
        };
        *current = Some(token.clone());
        drop(current);
        let mut log = lock(&self.log);
        if let Some(stale) = stale {
            log.entry(stale).or_default().replaced_by += 1;
        }
        log.entry(serial).or_default().issued_at = self.start.elapsed();
        token
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One worker: 20 requests, each with a valid token, each taking 70 to 130 ms.
async fn worker(id: usize, source: Arc<TokenSource>) -> Result<(), String> {
    // Start a little apart, so that the workers do not run in lockstep.
    tokio::time::sleep(Duration::from_millis(id as u64 * 3)).await;
    for request in 0..REQUESTS_PER_WORKER {
        let token = source.token().await;
        if !token.is_valid() {
            return Err(format!("worker {id} got the expired {}", token.value));
        }
        let work = 70 + (id * 37 + request * 11) % 61;
        tokio::time::sleep(Duration::from_millis(work as u64)).await; // the API request
    }
    Ok(())
}

/// What one run measured.
#[derive(Debug)]
struct Run {
    log: BTreeMap<u64, TokenLog>,
    elapsed: Duration,
}

impl Run {
    /// Tokens that some worker found expired.
    fn expiries(&self) -> usize {
        self.log.values().filter(|t| t.expiry_seen_by > 0).count()
    }

    /// Refreshes done (the first token was a fetch, not a refresh).
    fn refreshes(&self) -> usize {
        self.log.values().map(|t| t.replaced_by).sum()
    }
}

async fn run(coalesce: bool) -> Result<Run, String> {
    let source = Arc::new(TokenSource::new(coalesce));
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| tokio::spawn(worker(id, source.clone())))
        .collect();
    for worker in workers {
        worker.await.map_err(|e| format!("worker: {e}"))??;
    }
    let log = lock(&source.log).clone();
    Ok(Run {
        log,
        elapsed: source.start.elapsed(),
    })
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    let real = std::time::Instant::now();
    println!(
        "{WORKERS} workers x {REQUESTS_PER_WORKER} requests; tokens live {} ms, a refresh takes {} ms",
        TOKEN_LIFETIME.as_millis(),
        REFRESH_TIME.as_millis()
    );
    let (with, without) = match (run(true).await, run(false).await) {
        (Ok(with), Ok(without)) => (with, without),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("refresh_token: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!();
    println!("with the group, token by token:");
    println!(
        "  {:>5}  {:>9}  {:>23}  {:>16}",
        "token", "issued at", "workers that saw expiry", "refreshes caused"
    );
    for (serial, token) in &with.log {
        println!(
            "  {serial:>5}  {:>6} ms  {:>23}  {:>16}",
            token.issued_at.as_millis(),
            token.expiry_seen_by,
            token.replaced_by
        );
    }
    println!();
    println!(
        "{:<24}  {:>8}  {:>8}  {:>9}  {:>14}",
        "mode", "requests", "expiries", "refreshes", "simulated time"
    );
    for (mode, run) in [
        ("one refresh per expiry", &with),
        ("every worker refreshes", &without),
    ] {
        println!(
            "{mode:<24}  {:>8}  {:>8}  {:>9}  {:>12} ms",
            WORKERS * REQUESTS_PER_WORKER,
            run.expiries(),
            run.refreshes(),
            run.elapsed.as_millis()
        );
    }
    println!("(real time: {} ms)", real.elapsed().as_millis());
    println!();

    let over: Vec<String> = with
        .log
        .iter()
        .filter(|(_, t)| t.expiry_seen_by > 0 && t.replaced_by != 1)
        .map(|(serial, t)| format!("token {serial} was replaced {} times", t.replaced_by))
        .collect();
    if !over.is_empty() || with.expiries() == 0 || with.refreshes() != with.expiries() {
        eprintln!(
            "refresh_token: FAILED: {} expiries, {} refreshes {over:?}",
            with.expiries(),
            with.refreshes()
        );
        return ExitCode::FAILURE;
    }
    println!(
        "each of the {} expiries caused exactly one refresh (without the group: {} refreshes)",
        with.expiries(),
        without.refreshes()
    );
    ExitCode::SUCCESS
}
