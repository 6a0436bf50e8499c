//! Cross-runtime integration and acceptance tests for the single-flight workspace.
//!
//! The library part holds the helpers the test files share:
//!
//! * [`Rt`] and [`all_runtimes!`]: one async test body, one `#[test]` per supported runtime
//!   (tokio current-thread, tokio multi-thread with 2 workers, smol with a 2-thread executor,
//!   async-std, plain `futures_lite::future::block_on` on OS threads);
//! * [`Gate`] (an async latch that opens once), [`Latch`] (an async count-up latch), [`Counter`]
//!   (executions), [`DropFlag`] (observes the drop of a work future);
//! * [`within`], a hang detector: it fails the test with a message instead of hanging. Its bound
//!   ([`HANG_BOUND`]) is generous on purpose; it is never a timing assertion.
//!
//! No helper sleeps "to let things happen": tests wait on gates and latches.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use event_listener::{listener, Event};
use futures_lite::FutureExt;

/// The bound [`within`] and every test body run under: a hang detector, not a timing assertion.
pub const HANG_BOUND: Duration = Duration::from_secs(10);

/// Put this in the message of a panic a test provokes on purpose: the panic hook installed by
/// [`Rt::run_test`] keeps such panics (and the core's re-entrancy panic) off stderr, so that
/// panics on worker threads do not drown real failures.
pub const EXPECTED_PANIC: &str = "expected test panic";

/// The runtimes every behaviour test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    /// `tokio` current-thread runtime: every task shares the test's thread.
    TokioCurrentThread,
    /// `tokio` multi-thread runtime with 2 workers.
    TokioMultiThread,
    /// `smol::block_on` for the test body, tasks on a `smol::Executor` run by 2 threads.
    Smol,
    /// `async_std::task::block_on`, tasks on async-std's global executor.
    AsyncStd,
    /// `futures_lite::future::block_on`; every spawned task gets its own OS thread.
    Threads,
}

impl Rt {
    /// Every runtime, in the order [`all_runtimes!`] generates tests.
    pub const ALL: [Rt; 5] = [
        Rt::TokioCurrentThread,
        Rt::TokioMultiThread,
        Rt::Smol,
        Rt::AsyncStd,
        Rt::Threads,
    ];

    /// Runs `fut` to completion on this runtime, from the calling (non-runtime) thread.
    pub fn block_on<F: Future>(self, fut: F) -> F::Output {
        match self {
            Rt::TokioCurrentThread => tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("build a tokio current-thread runtime")
                .block_on(fut),
            Rt::TokioMultiThread => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .expect("build a tokio multi-thread runtime")
                .block_on(fut),
            Rt::Smol => {
                smol_executor();
                smol::block_on(fut)
            }
            Rt::AsyncStd => async_std::task::block_on(fut),
            Rt::Threads => futures_lite::future::block_on(fut),
        }
    }

    /// Spawns `fut` as a task of this runtime (must be called from inside [`Rt::block_on`] for
    /// the tokio runtimes). The task is detached: dropping the handle does not cancel it.
    ///
    /// The handle resolves to `Err(payload)` if the task panicked (or was cancelled by its
    /// runtime, with a `&str` payload saying so).
    pub fn spawn<F>(self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = smol::channel::bounded(1);
        let task = async move {
            let result = AssertUnwindSafe(fut).catch_unwind().await;
            let _ = tx.try_send(result);
        };
        match self {
            Rt::TokioCurrentThread | Rt::TokioMultiThread => {
                drop(tokio::spawn(task));
            }
            Rt::Smol => smol_executor().spawn(task).detach(),
            Rt::AsyncStd => {
                drop(async_std::task::spawn(task));
            }
            Rt::Threads => {
                std::thread::Builder::new()
                    .name("single-flight-test-task".into())
                    .spawn(move || futures_lite::future::block_on(task))
                    .expect("spawn a task thread");
            }
        }
        JoinHandle {
            result: Box::pin(async move {
                rx.recv().await.unwrap_or_else(|_| {
                    Err(Box::new("the task was cancelled by its runtime") as Box<dyn Any + Send>)
                })
            }),
        }
    }

    /// Runs one test body on this runtime under the hang detector ([`HANG_BOUND`]).
    pub fn run_test<B, Fut>(self, name: &str, body: B)
    where
        B: FnOnce(Rt) -> Fut,
        Fut: Future<Output = ()>,
    {
        quiet_expected_panics();
        let what = format!("test `{name}` on {self:?}");
        self.block_on(within_named(HANG_BOUND, &what, body(self)));
    }
}

/// The executor [`Rt::Smol`] spawns on, run by two threads of its own.
fn smol_executor() -> &'static smol::Executor<'static> {
    static EXECUTOR: smol::Executor<'static> = smol::Executor::new();
    static THREADS: Once = Once::new();
    THREADS.call_once(|| {
        for i in 0..2 {
            std::thread::Builder::new()
                .name(format!("smol-test-executor-{i}"))
                .spawn(|| smol::block_on(EXECUTOR.run(std::future::pending::<()>())))
                .expect("spawn a smol executor thread");
        }
    });
    &EXECUTOR
}

/// Installs (once per test binary) a panic hook that keeps provoked panics of worker threads
/// off stderr.
fn quiet_expected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            let expected = payload.is::<NonStringPayload>()
                || message.contains(EXPECTED_PANIC)
                || message.contains("single-flight: re-entrant call")
                || message.contains("single-flight: Receiver polled after");
            // The test's own thread (named after the test, `module::runtime`) reports
            // everything: its output is captured and shown only if the test fails.
            let test_thread = std::thread::current()
                .name()
                .is_some_and(|name| name.contains("::"));
            if test_thread || !expected {
                default(info);
            }
        }));
    });
}

/// A spawned task's outcome: `Ok(output)`, or `Err(payload)` if it panicked.
pub type TaskResult<T> = Result<T, Box<dyn Any + Send>>;

/// A spawned task's handle: a future of its [`TaskResult`].
pub struct JoinHandle<T> {
    result: Pin<Box<dyn Future<Output = TaskResult<T>> + Send>>,
}

impl<T> JoinHandle<T> {
    /// Waits for the task and returns its output, resuming its panic if it panicked.
    pub async fn value(self) -> T {
        match self.await {
            Ok(value) => value,
            Err(payload) => resume_unwind(payload),
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = TaskResult<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.result.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").finish_non_exhaustive()
    }
}

/// Expands to one `#[test]` per runtime of [`Rt::ALL`], each running the same body
/// (`|rt: Rt| async move { ... }`) under the hang detector, in a module named after the test:
/// `name::tokio_current_thread`, `name::tokio_multi_thread`, `name::smol`, `name::async_std`,
/// `name::threads`. Attributes written before the name (say `#[ignore = "..."]`) go on every
/// generated test.
#[macro_export]
macro_rules! all_runtimes {
    ($(#[$attr:meta])* $name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            $(#[$attr])*
            fn tokio_current_thread() {
                $crate::Rt::TokioCurrentThread.run_test(stringify!($name), $body)
            }

            #[test]
            $(#[$attr])*
            fn tokio_multi_thread() {
                $crate::Rt::TokioMultiThread.run_test(stringify!($name), $body)
            }

            #[test]
            $(#[$attr])*
            fn smol() {
                $crate::Rt::Smol.run_test(stringify!($name), $body)
            }

            #[test]
            $(#[$attr])*
            fn async_std() {
                $crate::Rt::AsyncStd.run_test(stringify!($name), $body)
            }

            #[test]
            $(#[$attr])*
            fn threads() {
                $crate::Rt::Threads.run_test(stringify!($name), $body)
            }
        }
    };
}

/// Awaits `fut`, failing the test if it does not finish within `bound`: a hang detector, never
/// a timing assertion (use a generous bound such as [`HANG_BOUND`]).
pub async fn within<F: Future>(bound: Duration, fut: F) -> F::Output {
    within_named(bound, "a future awaited with `within`", fut).await
}

/// [`within`] with a description of what is awaited, for the failure message.
pub async fn within_named<F: Future>(bound: Duration, what: &str, fut: F) -> F::Output {
    let timer = async {
        smol::Timer::after(bound).await;
        None
    };
    match async { Some(fut.await) }.or(timer).await {
        Some(value) => value,
        None => panic!("hang: {what} did not finish within {bound:?}"),
    }
}

/// An async latch that opens once and stays open: work waits on it until the test has every
/// caller in place.
#[derive(Debug, Default)]
pub struct Gate {
    open: AtomicBool,
    event: Event,
}

impl Gate {
    /// A closed gate.
    pub const fn new() -> Self {
        Self {
            open: AtomicBool::new(false),
            event: Event::new(),
        }
    }

    /// A closed gate behind an `Arc`, to share with work futures.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Opens the gate and wakes everyone waiting on it.
    pub fn open(&self) {
        self.open.store(true, SeqCst);
        self.event.notify(usize::MAX);
    }

    /// Whether the gate has been opened.
    pub fn is_open(&self) -> bool {
        self.open.load(SeqCst)
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        loop {
            if self.is_open() {
                return;
            }
            listener!(self.event => listener);
            if self.is_open() {
                return;
            }
            listener.await;
        }
    }
}

/// An async count-up latch: callers [`arrive`](Latch::arrive), someone waits for `n` arrivals.
#[derive(Debug, Default)]
pub struct Latch {
    count: AtomicUsize,
    event: Event,
}

impl Latch {
    /// A latch with no arrival yet.
    pub const fn new() -> Self {
        Self {
            count: AtomicUsize::new(0),
            event: Event::new(),
        }
    }

    /// A latch behind an `Arc`.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Counts one arrival; returns the new count.
    pub fn arrive(&self) -> usize {
        let count = self.count.fetch_add(1, SeqCst) + 1;
        self.event.notify(usize::MAX);
        count
    }

    /// Arrivals so far.
    pub fn count(&self) -> usize {
        self.count.load(SeqCst)
    }

    /// Waits until at least `n` arrivals have been counted.
    pub async fn wait_for(&self, n: usize) {
        loop {
            if self.count() >= n {
                return;
            }
            listener!(self.event => listener);
            if self.count() >= n {
                return;
            }
            listener.await;
        }
    }
}

/// Polls `fut` once (for `call`, that registers the caller with its flight: it starts or joins
/// it), counts an arrival on `latch`, then awaits the rest of `fut`.
///
/// With work that waits for `latch` to reach N, this holds a flight until all N callers joined.
pub async fn arrive_then<F: Future>(latch: &Latch, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let first = futures_lite::future::poll_once(fut.as_mut()).await;
    latch.arrive();
    match first {
        Some(value) => value,
        None => fut.await,
    }
}

/// Counts executions (or any event) across threads.
#[derive(Debug, Default)]
pub struct Counter(AtomicUsize);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    /// A counter at zero behind an `Arc`.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Counts one more; returns the new count.
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, SeqCst) + 1
    }

    /// The count.
    pub fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// Records when the guards it hands out are dropped: capture a [`DropGuard`] in a work future to
/// observe when the flight drops the work.
#[derive(Clone, Debug, Default)]
pub struct DropFlag(Arc<DropState>);

#[derive(Debug, Default)]
struct DropState {
    drops: AtomicUsize,
    dropped: Gate,
}

impl DropFlag {
    /// A flag with no guard dropped yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard to move into the observed future.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    /// Whether a guard has been dropped.
    pub fn is_dropped(&self) -> bool {
        self.drops() > 0
    }

    /// How many guards have been dropped.
    pub fn drops(&self) -> usize {
        self.0.drops.load(SeqCst)
    }

    /// Waits until a guard has been dropped.
    pub async fn wait(&self) {
        self.0.dropped.wait().await;
    }
}

/// Sets its [`DropFlag`] when dropped.
#[derive(Debug)]
pub struct DropGuard(Arc<DropState>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.drops.fetch_add(1, SeqCst);
        self.0.dropped.open();
    }
}

/// Polls `fut` once with a waker that does nothing: a future "kept alive but not polled" after
/// this is a waiter that will never be woken.
pub fn poll_noop<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Yields to the executor `n` times.
pub async fn yield_many(n: usize) {
    for _ in 0..n {
        futures_lite::future::yield_now().await;
    }
}

/// The message of a panic payload: `&str`, `String` or the core's [`single_flight::Panicked`].
pub fn panic_message(payload: &(dyn Any + Send)) -> Option<String> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Some((*s).to_owned())
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Some(s.clone())
    } else {
        payload
            .downcast_ref::<single_flight::Panicked>()
            .map(|p| p.message().to_owned())
    }
}

/// How a waiter of a panicked flight unwound.
#[derive(Debug, PartialEq, Eq)]
pub enum PanicKind {
    /// With the work's original payload (a `&str` or `String`), carrying this message.
    Original(String),
    /// With a [`single_flight::Panicked`] carrying this message.
    Follower(String),
    /// With something else (the test fails on it).
    Other,
}

/// Classifies a panic payload; see [`PanicKind`].
pub fn panic_kind(payload: &(dyn Any + Send)) -> PanicKind {
    if let Some(p) = payload.downcast_ref::<single_flight::Panicked>() {
        PanicKind::Follower(p.message().to_owned())
    } else {
        match panic_message(payload) {
            Some(message) => PanicKind::Original(message),
            None => PanicKind::Other,
        }
    }
}

/// Catches a panic of a future (as a spawned task would).
pub async fn catch<F: Future>(fut: F) -> Result<F::Output, Box<dyn Any + Send>> {
    AssertUnwindSafe(fut).catch_unwind().await
}

/// Panics with a message that contains [`EXPECTED_PANIC`] and `what`; returns any type, so that
/// it can stand for a work future or a value.
#[track_caller]
pub fn provoke_panic<T>(what: &str) -> T {
    panic!("{EXPECTED_PANIC}: {what}")
}

/// The message [`provoke_panic`] panics with.
pub fn provoked_message(what: &str) -> String {
    format!("{EXPECTED_PANIC}: {what}")
}

/// A panic payload that is not a string (`std::panic::panic_any(NonStringPayload(..))`); the
/// quiet panic hook keeps it off stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonStringPayload(pub u32);

// The workspace README's Rust examples are compiled and run as doctests of this crate, so the
// README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;
