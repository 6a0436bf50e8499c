//! The runtimes every behaviour test runs on, their spawn and timer, and the hang bound: a
//! timer raced on the test's executor, backed by a watchdog thread that ends the process if
//! the executor itself is blocked.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io::Write;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::Once;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::FutureExt;

use crate::panics::quiet_expected_panics;

/// The bound [`within`] and every test body run under: a hang detector, not a timing assertion.
pub const HANG_BOUND: Duration = Duration::from_secs(10);

/// How long after [`HANG_BOUND`] a test's [`Watchdog`] ends the process: the time the test's own
/// timer had to report the hang as an ordinary failure, had its executor been able to run it.
pub const WATCHDOG_GRACE: Duration = Duration::from_secs(5);

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
    /// Every runtime, in the order [`all_runtimes!`](crate::all_runtimes) generates tests.
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
        let _watchdog = Watchdog::arm(&what, HANG_BOUND + WATCHDOG_GRACE);
        self.block_on(within_named(HANG_BOUND, &what, body(self)));
    }

    /// Bounds `fut` by a timer that runs under this runtime; `None` if it timed out (and `fut`
    /// was dropped).
    ///
    /// async-std's own timer on async-std; elsewhere async-io's (`smol::Timer`), which runs on
    /// its own driver thread under any executor (tokio's timer would need tokio's `time`
    /// feature and a runtime built with it).
    pub async fn timeout<F: Future>(self, after: Duration, fut: F) -> Option<F::Output> {
        match self {
            Rt::AsyncStd => async_std::future::timeout(after, fut).await.ok(),
            Rt::TokioCurrentThread | Rt::TokioMultiThread | Rt::Smol | Rt::Threads => {
                async { Some(fut.await) }
                    .or(async {
                        smol::Timer::after(after).await;
                        None
                    })
                    .await
            }
        }
    }
}

/// The hang bound that holds even when an executor thread is blocked (a deadlock inside a
/// wakeup, say): a thread of its own that ends the process, naming the test, unless the
/// watchdog is dropped within its bound. Every test body runs under one
/// ([`Rt::run_test`], [`run_bounded`]).
#[derive(Debug)]
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the watchdog of `what` (a test's name), which ends the process after `bound`.
    pub fn arm(what: &str, bound: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let what = what.to_owned();
        let thread = std::thread::Builder::new()
            .name("test-watchdog".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(bound) {
                    // Straight to the process's stderr: the test harness's capture of
                    // `eprintln!` would be lost with the process.
                    let _ = writeln!(
                        std::io::stderr(),
                        "hang: {what} did not finish within {bound:?}, and its executor could \
                         not report it (a blocked thread?): ending the test process"
                    );
                    std::process::abort();
                }
            })
            .expect("spawn a watchdog thread");
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs a test body that brings its own runtime (`block_on`) under the hang bound: a
/// [`Watchdog`] of [`HANG_BOUND`] plus [`WATCHDOG_GRACE`], and the quiet panic hook.
pub fn run_bounded<T>(name: &str, body: impl FnOnce() -> T) -> T {
    quiet_expected_panics();
    let _watchdog = Watchdog::arm(&format!("test `{name}`"), HANG_BOUND + WATCHDOG_GRACE);
    body()
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
/// (`|rt: Rt| async move { ... }`) under the hang bound, in a module named after the test:
/// `name::tokio_current_thread`, `name::tokio_multi_thread`, `name::smol`, `name::async_std`,
/// `name::threads`. Attributes written before the name (say `#[ignore = "..."]`) go on every
/// generated test.
#[macro_export]
macro_rules! all_runtimes {
    ($(#[$attr:meta])* $name:ident, $body:expr $(,)?) => {
        $crate::test_on! {
            [
                tokio_current_thread = TokioCurrentThread,
                tokio_multi_thread = TokioMultiThread,
                smol = Smol,
                async_std = AsyncStd,
                threads = Threads,
            ]
            $(#[$attr])* $name, $body
        }
    };
}

/// [`all_runtimes!`](crate::all_runtimes) on the runtimes listed first, each as `test_name = RtVariant`:
/// `test_on!([threads = Threads, smol = Smol] name, |rt: Rt| async move { ... })`.
#[macro_export]
macro_rules! test_on {
    ([$($test:ident = $rt:ident),+ $(,)?] $(#[$attr:meta])* $name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::test_on!(@tests $name, $body, [$(#[$attr])*] $($test = $rt),+);
        }
    };
    (@tests $name:ident, $body:expr, [$($attr:tt)*] $test:ident = $rt:ident $(, $more:ident = $more_rt:ident)*) => {
        #[test]
        $($attr)*
        fn $test() {
            $crate::Rt::$rt.run_test(stringify!($name), $body)
        }

        $crate::test_on!(@tests $name, $body, [$($attr)*] $($more = $more_rt),*);
    };
    (@tests $name:ident, $body:expr, [$($attr:tt)*]) => {};
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
