//! `leader abort`: the leader's client disconnects while followers wait on its request.
//!
//! Every round, on a URL of its own: the leader sends a `GET` on a client of its own (its own
//! connection), followers send the same `GET` [`FOLLOW_AFTER`] later through a pooled client, and
//! the leader's request is dropped [`ABORT_AFTER`] after it was sent, while the upstream still
//! works ([`DELAY`]). Dropping a hyper client's response future closes its connection; the
//! server then drops the leader's service future. What each follower got is counted: the
//! upstream's response (status 200 and its body), or an error (another status, or the connection
//! closed without a response); and how many times the upstream was called in the round (one is
//! the leader's: more are second calls), and how many upstream calls were dropped unfinished
//! (the leader's, when the disconnect reached the upstream).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use single_flight_benches::markdown::Table;

use crate::{serve_behind, Front, HttpClient, BODY};

/// How long the upstream works on each call.
const DELAY: Duration = Duration::from_millis(100);
/// When the followers send their requests, after the leader's.
const FOLLOW_AFTER: Duration = Duration::from_millis(10);
/// When the leader's client disconnects, after it sent its request.
const ABORT_AFTER: Duration = Duration::from_millis(40);
/// Followers per round.
pub(crate) const FOLLOWERS: usize = 8;

/// The upstream's calls: started, and dropped before they answered.
#[derive(Debug, Default)]
struct Calls {
    started: AtomicUsize,
    dropped: AtomicUsize,
}

/// Counts a call as dropped unless it answered.
struct Unfinished(Arc<Calls>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// What one front end's rounds gave.
#[derive(Debug, Default)]
pub(crate) struct AbortRow {
    pub(crate) rounds: usize,
    /// Followers that got status 200 and the upstream's body.
    pub(crate) served: usize,
    /// Followers that got another status or no response.
    pub(crate) failed: usize,
    /// Upstream calls over all rounds.
    pub(crate) upstream_calls: usize,
    /// Upstream calls dropped before they answered (the leader's, once its disconnect arrives).
    pub(crate) dropped: usize,
    /// The followers' median time to their answer, ms.
    pub(crate) follower_ms: f64,
}

/// Starts a server with `front` before an upstream that counts its calls and the dropped ones.
async fn start(front: Front) -> (std::net::SocketAddr, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let counted = calls.clone();
    let up = tower::service_fn(move |_request: Request<Incoming>| {
        counted.started.fetch_add(1, Ordering::Relaxed);
        let unfinished = Unfinished(counted.clone());
        async move {
            tokio::time::sleep(DELAY).await;
            std::mem::forget(unfinished);
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
        }
    });
    let addr = serve_behind(front, up).await;
    (addr, calls)
}

/// One follower's request: whether it got the upstream's response, and how long it took.
async fn follow(client: HttpClient, url: String) -> (bool, Duration) {
    let start = Instant::now();
    let request = Request::get(url).body(Full::default()).expect("a request");
    let ok = match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await;
            status == StatusCode::OK && body.is_ok_and(|b| b.to_bytes() == BODY)
        }
        Err(_) => false,
    };
    (ok, start.elapsed())
}

/// One round on `url`: the leader, its followers, the leader's disconnect.
async fn round(client: &HttpClient, url: String, row: &mut AbortRow, times: &mut Vec<f64>) {
    // A client of its own: dropping its request closes the leader's connection only.
    let leader: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(&url).body(Full::default()).expect("a request");
    let leader = tokio::spawn(async move { leader.request(request).await.map(drop) });
    tokio::time::sleep(FOLLOW_AFTER).await;
    let followers: Vec<_> = (0..FOLLOWERS)
        .map(|_| tokio::spawn(follow(client.clone(), url.clone())))
        .collect();
    tokio::time::sleep(ABORT_AFTER - FOLLOW_AFTER).await;
    leader.abort();
    for follower in followers {
        let (ok, elapsed) = follower.await.expect("a follower panicked");
        row.served += usize::from(ok);
        row.failed += usize::from(!ok);
        times.push(elapsed.as_secs_f64() * 1e3);
    }
    row.rounds += 1;
}

/// `rounds` rounds per front end; prints the table and returns the rows.
pub(crate) async fn leader_abort(rounds: usize) -> Vec<(Front, AbortRow)> {
    let mut rows = Vec::new();
    for front in Front::ALL {
        let (addr, calls) = start(front).await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let mut row = AbortRow::default();
        let mut times = Vec::new();
        for i in 0..rounds {
            round(
                &client,
                format!("http://{addr}/report/{i}"),
                &mut row,
                &mut times,
            )
            .await;
        }
        // The leader's dropped call is counted when the server drops its future: let it land.
        tokio::time::sleep(DELAY).await;
        row.upstream_calls = calls.started.load(Ordering::Relaxed);
        row.dropped = calls.dropped.load(Ordering::Relaxed);
        times.sort_by(f64::total_cmp);
        row.follower_ms = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        rows.push((front, row));
    }
    rows
}

/// The table of [`leader_abort`]'s rows.
pub(crate) fn table(rows: &[(Front, AbortRow)]) -> String {
    let mut table = Table::figures(
        "front end",
        &[
            "followers served the response",
            "followers failed",
            "upstream calls per round",
            "upstream calls dropped",
            "follower p50 ms",
        ],
    );
    for (front, row) in rows {
        let followers = row.rounds * FOLLOWERS;
        table.row([
            front.name().to_owned(),
            format!("{}/{followers}", row.served),
            format!("{}/{followers}", row.failed),
            format!("{:.2}", row.upstream_calls as f64 / row.rounds as f64),
            format!("{}", row.dropped),
            format!("{:.0}", row.follower_ms),
        ]);
    }
    table.finish()
}

/// The title line of the section.
pub(crate) fn title(rounds: usize) -> String {
    format!(
        "### leader abort: {rounds} rounds; the leader's client disconnects {} ms after its \
         request, {FOLLOWERS} followers sent theirs {} ms after it, the upstream answers after \
         {} ms\n",
        ABORT_AFTER.as_millis(),
        FOLLOW_AFTER.as_millis(),
        DELAY.as_millis()
    )
}
