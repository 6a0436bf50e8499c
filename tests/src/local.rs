//! The thread-local executors the `!Send` scenarios run on (`single_flight::local`), their
//! `spawn_local`, and [`local_runtimes!`](crate::local_runtimes).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::panics::quiet_expected_panics;
use crate::runtime::{within_named, Watchdog, HANG_BOUND, WATCHDOG_GRACE};

/// The thread-local executors: every task shares the test's thread, and nothing is `Send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalRt {
    /// A tokio current-thread runtime running a `LocalSet`; tasks by `tokio::task::spawn_local`.
    TokioLocalSet,
    /// smol's `LocalExecutor`, run by `smol::block_on` on the test's thread.
    SmolLocal,
}

std::thread_local! {
    /// The executor [`LocalRt::SmolLocal`] spawns on: one per test thread.
    static SMOL_LOCAL: Rc<smol::LocalExecutor<'static>> = Rc::new(smol::LocalExecutor::new());
}

impl LocalRt {
    /// Runs `fut` (which need not be `Send`) to completion on this executor.
    pub fn block_on<F: Future>(self, fut: F) -> F::Output {
        match self {
            LocalRt::TokioLocalSet => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("build a tokio current-thread runtime");
                tokio::task::LocalSet::new().block_on(&rt, fut)
            }
            LocalRt::SmolLocal => {
                let executor = SMOL_LOCAL.with(Rc::clone);
                smol::block_on(executor.run(fut))
            }
        }
    }

    /// Spawns a `!Send` task on this executor (from inside [`LocalRt::block_on`]), detached.
    pub fn spawn_local(self, fut: impl Future<Output = ()> + 'static) {
        match self {
            LocalRt::TokioLocalSet => drop(tokio::task::spawn_local(fut)),
            LocalRt::SmolLocal => SMOL_LOCAL.with(|executor| executor.spawn(fut).detach()),
        }
    }

    /// A spawner for `local::KeyedGroup::do_chan_detached`.
    pub fn spawner<T: Future<Output = ()> + 'static>(self) -> impl FnOnce(T) {
        move |task| self.spawn_local(task)
    }

    /// Runs one test body on this executor under the hang bound ([`HANG_BOUND`]) and a
    /// [`Watchdog`].
    pub fn run_test<B, Fut>(self, name: &str, body: B)
    where
        B: FnOnce(LocalRt) -> Fut,
        Fut: Future<Output = ()>,
    {
        quiet_expected_panics();
        let what = format!("test `{name}` on {self:?}");
        let _watchdog = Watchdog::arm(&what, HANG_BOUND + WATCHDOG_GRACE);
        self.block_on(within_named(HANG_BOUND, &what, body(self)));
    }
}

/// A boxed `!Send` future, for tests that keep callers in a collection.
pub type LocalBoxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Expands to one `#[test]` per thread-local executor, each running the same body
/// (`|rt: LocalRt| async move { ... }`) under the hang bound, in a module named after the test:
/// `name::tokio_local_set` and `name::smol_local`.
#[macro_export]
macro_rules! local_runtimes {
    ($name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn tokio_local_set() {
                $crate::LocalRt::TokioLocalSet.run_test(stringify!($name), $body)
            }

            #[test]
            fn smol_local() {
                $crate::LocalRt::SmolLocal.run_test(stringify!($name), $body)
            }
        }
    };
}
