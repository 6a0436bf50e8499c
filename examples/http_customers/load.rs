//! The built-in load test: an HTTP client that sends the same load coalesced and not, and the
//! table that compares the two runs.

use super::*;

/// The HTTP client of the load test and the tests.
pub(crate) type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub(crate) fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `GET url` and returns the status, or a description of the transport failure.
pub(crate) async fn get_status(client: &HttpClient, url: &str) -> Result<StatusCode, String> {
    let uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let response = client.get(uri).await.map_err(|e| e.to_string())?;
    let status = response.status();
    // Read the body to the end so that the connection can be reused.
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

/// What one load run measured.
#[derive(Debug)]
pub(crate) struct LoadReport {
    pub(crate) mode: &'static str,
    pub(crate) requests: usize,
    pub(crate) ok: usize,
    pub(crate) not_found: usize,
    /// Answers other than the expected 200 (known name) or 404 (unknown name), and transport
    /// failures.
    pub(crate) failed: usize,
    pub(crate) first_failure: Option<String>,
    pub(crate) queries: u64,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) elapsed: Duration,
}

impl LoadReport {
    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p / 100.0 * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// Sends `requests` requests over the known and unknown names from `concurrency` connections.
pub(crate) async fn run_load(
    base: &str,
    db: &Database,
    coalesce: bool,
    requests: usize,
    concurrency: usize,
) -> LoadReport {
    let mode = if coalesce {
        "coalesced"
    } else {
        "not coalesced"
    };
    let names: Vec<(&str, bool)> = KNOWN
        .iter()
        .map(|&n| (n, true))
        .chain(UNKNOWN.iter().map(|&n| (n, false)))
        .collect();
    let flag = if coalesce { "" } else { "&coalesce=false" };
    let client = http_client();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let queries_before = db.queries();
    let start = Instant::now();
    let progress = tokio::spawn(progress(mode, requests, done.clone()));

    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.clamp(1, requests.max(1)) {
        let (client, next, done, names) =
            (client.clone(), next.clone(), done.clone(), names.clone());
        let base = base.to_owned();
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return seen;
                }
                let (name, known) = names[i % names.len()];
                let url = format!("{base}/customers?name={name}{flag}");
                let sent = Instant::now();
                let status = get_status(&client, &url).await;
                seen.push((known, status, sent.elapsed()));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let mut report = LoadReport {
        mode,
        requests,
        ok: 0,
        not_found: 0,
        failed: 0,
        first_failure: None,
        queries: 0,
        latencies: Vec::with_capacity(requests),
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        let seen = worker.await.expect("a load worker panicked");
        for (known, status, latency) in seen {
            report.latencies.push(latency);
            match (known, status) {
                (true, Ok(StatusCode::OK)) => report.ok += 1,
                (false, Ok(StatusCode::NOT_FOUND)) => report.not_found += 1,
                (_, other) => {
                    report.failed += 1;
                    report.first_failure.get_or_insert_with(|| match other {
                        Ok(status) => format!("HTTP {status}"),
                        Err(e) => e,
                    });
                }
            }
        }
    }
    report.elapsed = start.elapsed();
    progress.abort();
    let _ = progress.await;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K"); // clear the progress line
    }
    report.queries = db.queries() - queries_before;
    report.latencies.sort_unstable();
    report
}

/// Shows the progress of a load run once it has taken more than a second: a line updated every
/// 250 ms on a terminal, otherwise a line per second.
pub(crate) async fn progress(mode: &'static str, total: usize, done: Arc<AtomicUsize>) {
    let terminal = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        ticks += 1;
        if start.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let done = done.load(Ordering::Relaxed);
        if terminal {
            eprint!("\r  {mode}: {done}/{total} requests answered");
            let _ = std::io::stderr().flush();
        } else if ticks.is_multiple_of(4) {
            eprintln!("  {mode}: {done}/{total} requests answered");
        }
    }
}

/// Prints the reports as an aligned table.
pub(crate) fn print_table(reports: &[LoadReport]) {
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let header = [
        "mode",
        "requests",
        "200 OK",
        "404",
        "db queries",
        "p50",
        "p99",
        "failed",
        "took",
    ];
    let rows: Vec<[String; 9]> = reports
        .iter()
        .map(|r| {
            [
                r.mode.to_owned(),
                r.requests.to_string(),
                r.ok.to_string(),
                r.not_found.to_string(),
                r.queries.to_string(),
                ms(r.percentile(50.0)),
                ms(r.percentile(99.0)),
                r.failed.to_string(),
                format!("{:.2} s", r.elapsed.as_secs_f64()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i == 0 {
                out += &format!("{cell:<width$}");
            } else {
                out += &format!("  {cell:>width$}");
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
