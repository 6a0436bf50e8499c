//! What the runtime adapters (`single-flight-tokio`, `-smol`, `-async-std`) share; not a
//! public API (hidden from the docs, it may change in any release).
//!
//! An adapter implements [`Timer`] (its clock and timer) and a `spawn(Detached<V>)` for its
//! runtime, and invokes the three macros [`keyed_group_ext!`](crate::keyed_group_ext),
//! [`group_ext!`](crate::group_ext) and [`receiver_ext!`](crate::receiver_ext) with its own
//! documentation for each item. Everything else is written here once: the timeout in which the
//! value wins a tie, the deadline arithmetic, the seal, and the extension traits' signatures and
//! method bodies.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Elapsed;

/// What an adapter's timeouts take from its runtime: a clock and a timer on it.
pub trait Timer {
    /// The runtime's clock, as a `std` instant: the system clock unless the runtime has its
    /// own (tokio's may be paused).
    fn now() -> Instant {
        Instant::now()
    }

    /// A timer that completes at `deadline`. Called when the timeout is first polled, so it
    /// may need to run inside the runtime.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;
}

/// When a timed wait ends (`None`: too far away to represent, so never) and how long it was
/// allowed, for the error.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Option<Instant>,
    waited: Duration,
}

impl Deadline {
    /// A wait of `duration` from now.
    fn after<R: Timer>(duration: Duration) -> Self {
        Self {
            at: R::now().checked_add(duration),
            waited: duration,
        }
    }

    /// A wait until `deadline`; it was allowed the time from now to then.
    fn at<R: Timer>(deadline: Instant) -> Self {
        Self {
            at: Some(deadline),
            waited: deadline.saturating_duration_since(R::now()),
        }
    }
}

/// Waits for `future` for at most `duration`, counted from this call.
pub fn timeout<R: Timer, T>(
    duration: Duration,
    future: impl Future<Output = T> + Send,
) -> impl Future<Output = Result<T, Elapsed>> + Send {
    race::<R, T>(Deadline::after::<R>(duration), future)
}

/// Waits for `future` until `deadline` (an instant of the runtime's clock).
pub fn timeout_at<R: Timer, T>(
    deadline: impl Into<Instant>,
    future: impl Future<Output = T> + Send,
) -> impl Future<Output = Result<T, Elapsed>> + Send {
    race::<R, T>(Deadline::at::<R>(deadline.into()), future)
}

/// Races `future` against the deadline's timer, which is created at the first poll; the value
/// wins if both are ready.
async fn race<R: Timer, T>(
    deadline: Deadline,
    future: impl Future<Output = T>,
) -> Result<T, Elapsed> {
    let Some(at) = deadline.at else {
        return Ok(future.await);
    };
    let value = async { Ok(future.await) };
    let elapsed = async {
        R::sleep_until(at).await;
        Err(Elapsed::new(deadline.waited))
    };
    futures_lite::future::or(value, elapsed).await
}

/// Keeps the extension traits implementable by the core's types only, so that methods can be
/// added to them without breaking anyone.
pub trait Sealed {}

impl<K, V, S> Sealed for crate::KeyedGroup<K, V, S> {}
impl<V> Sealed for crate::Group<V> {}
impl<V> Sealed for crate::Receiver<V> {}

/// Brings the core's public types into scope for the docs' links of the items a macro below
/// defines (so each macro is invoked in a module of its own).
#[macro_export]
#[doc(hidden)]
macro_rules! doc_links {
    () => {
        #[cfg(doc)]
        #[allow(unused_imports)]
        use $crate::{Detached, Elapsed, Group, KeyedGroup, Panicked, Receiver};
    };
}

/// The docs of a `_with_role` form of an adapter's method `$plain`, up to its example: what
/// it adds, and `# Cancellation` and `# Panics` as for `$plain`. `$who` is "caller" or
/// "receiver".
#[macro_export]
#[doc(hidden)]
macro_rules! with_role_doc {
    ($plain:literal, $who:literal) => {
        concat!(
            "Like [`",
            $plain,
            "`](Self::",
            $plain,
            "), and also tells this ",
            $who,
            "'s [`Role`]: it\nstarted the flight or joined it, with how many callers got the ",
            "value (an [`Outcome`]).\n\n",
            "# Cancellation\n\nAs for [`",
            $plain,
            "`](Self::",
            $plain,
            ").\n\n",
            "# Panics\n\nAs for [`",
            $plain,
            "`](Self::",
            $plain,
            ").\n\n",
            "[`Role`]: single_flight::Role\n[`Outcome`]: single_flight::Outcome\n\n",
            "# Examples\n",
        )
    };
}

/// Defines an adapter's `KeyedGroupExt` trait and its implementation for `KeyedGroup`.
///
/// The adapter passes the docs of the trait and of each method, and after `where` its
/// [`Timer`], the instant type its deadlines take, its spawn function (`fn(Detached<V>)`), and
/// `examples = ("crate_name", "first line(s)", "last line")`: the adapter's crate and the hidden
/// lines that run a doc example on its runtime, for the methods whose docs the macro writes
/// itself (`call_timeout_with_role`).
/// `do_chan_spawned` may carry a `#[cfg(..)]` after its docs, and an adapter whose runtime has
/// executors as values adds `fn do_chan_spawned_on(&Executor) = spawn_on;` with
/// `spawn_on(&Executor, Detached<V>)`.
#[macro_export]
#[doc(hidden)]
macro_rules! keyed_group_ext {
    (
        $(#[doc = $doc:expr])*
        pub trait KeyedGroupExt where timer = $rt:ty, instant = $instant:ty, spawn = $spawn:path, examples = ($krate:literal, $start:literal, $end:literal) {
            $(#[doc = $call_timeout:expr])* fn call_timeout;
            $(#[doc = $call_deadline:expr])* fn call_deadline;
            $(#[doc = $spawned:expr])* $(#[cfg($cfg:meta)])? fn do_chan_spawned;
            $($(#[doc = $spawned_on:expr])* fn do_chan_spawned_on(&$executor:ty) = $spawn_on:path;)?
        }
    ) => {
        $crate::adapter::doc_links!();

        $(#[doc = $doc])*
        pub trait KeyedGroupExt<K, V>: $crate::adapter::Sealed {
            #[doc = $crate::adapter::with_role_doc!("call_timeout", "caller")]
            #[doc = concat!(
                "```\n",
                "use std::time::Duration;\n",
                "use single_flight::{KeyedGroup, Role};\n",
                "use ", $krate, "::KeyedGroupExt;\n\n",
                $start, "\n",
                "let group: KeyedGroup<u8, u8> = KeyedGroup::new();\n",
                "let outcome = group.call_timeout_with_role(1, Duration::from_secs(1), |k| async move { k });\n",
                "let outcome = outcome.await.unwrap();\n",
                "assert_eq!((outcome.value, outcome.role, outcome.callers), (1, Role::Started, 1));\n",
                $end, "\n",
                "```",
            )]
            fn call_timeout_with_role<F, Fut>(
                &self,
                key: K,
                duration: ::std::time::Duration,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<$crate::Outcome<V>, $crate::Elapsed>> + Send
            where
                Self: Sync,
                F: FnOnce(K) -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static;

            $(#[doc = $call_timeout])*
            fn call_timeout<F, Fut>(
                &self,
                key: K,
                duration: ::std::time::Duration,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send
            where
                Self: Sync,
                F: FnOnce(K) -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static;

            $(#[doc = $call_deadline])*
            fn call_deadline<F, Fut>(
                &self,
                key: K,
                deadline: $instant,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send
            where
                Self: Sync,
                F: FnOnce(K) -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static;

            $(#[doc = $spawned])*
            $(#[cfg($cfg)])?
            fn do_chan_spawned<F, Fut>(&self, key: K, work: F) -> $crate::Receiver<V>
            where
                K: 'static,
                F: FnOnce(K) -> Fut,
                Fut: ::std::future::Future<Output = V> + Send + 'static;

            $(
                $(#[doc = $spawned_on])*
                fn do_chan_spawned_on<F, Fut>(
                    &self,
                    executor: &$executor,
                    key: K,
                    work: F,
                ) -> $crate::Receiver<V>
                where
                    K: 'static,
                    F: FnOnce(K) -> Fut,
                    Fut: ::std::future::Future<Output = V> + Send + 'static;
            )?
        }

        impl<K, V, S> KeyedGroupExt<K, V> for $crate::KeyedGroup<K, V, S>
        where
            K: ::std::hash::Hash + Eq + Clone + Send,
            V: Clone + Send + 'static,
            S: ::std::hash::BuildHasher,
        {
            fn call_timeout_with_role<F, Fut>(
                &self,
                key: K,
                duration: ::std::time::Duration,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<$crate::Outcome<V>, $crate::Elapsed>> + Send
            where
                Self: Sync,
                F: FnOnce(K) -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static,
            {
                $crate::adapter::timeout::<$rt, $crate::Outcome<V>>(
                    duration,
                    self.call_with_role(key, work),
                )
            }

            fn call_timeout<F, Fut>(
                &self,
                key: K,
                duration: ::std::time::Duration,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send
            where
                Self: Sync,
                F: FnOnce(K) -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static,
            {
                $crate::adapter::timeout::<$rt, V>(duration, self.call(key, work))
            }

            fn call_deadline<F, Fut>(
                &self,
                key: K,
                deadline: $instant,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send
            where
                Self: Sync,
                F: FnOnce(K) -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static,
            {
                $crate::adapter::timeout_at::<$rt, V>(deadline, self.call(key, work))
            }

            $(#[cfg($cfg)])?
            fn do_chan_spawned<F, Fut>(&self, key: K, work: F) -> $crate::Receiver<V>
            where
                K: 'static,
                F: FnOnce(K) -> Fut,
                Fut: ::std::future::Future<Output = V> + Send + 'static,
            {
                self.do_chan_detached(key, work, $spawn)
            }

            $(
                fn do_chan_spawned_on<F, Fut>(
                    &self,
                    executor: &$executor,
                    key: K,
                    work: F,
                ) -> $crate::Receiver<V>
                where
                    K: 'static,
                    F: FnOnce(K) -> Fut,
                    Fut: ::std::future::Future<Output = V> + Send + 'static,
                {
                    self.do_chan_detached(key, work, |task| $spawn_on(executor, task))
                }
            )?
        }
    };
}

/// Defines an adapter's `GroupExt` trait and its implementation for `Group`; the input is that
/// of [`keyed_group_ext!`](crate::keyed_group_ext).
#[macro_export]
#[doc(hidden)]
macro_rules! group_ext {
    (
        $(#[doc = $doc:expr])*
        pub trait GroupExt where timer = $rt:ty, instant = $instant:ty, spawn = $spawn:path, examples = ($krate:literal, $start:literal, $end:literal) {
            $(#[doc = $call_timeout:expr])* fn call_timeout;
            $(#[doc = $call_deadline:expr])* fn call_deadline;
            $(#[doc = $spawned:expr])* $(#[cfg($cfg:meta)])? fn do_chan_spawned;
            $($(#[doc = $spawned_on:expr])* fn do_chan_spawned_on(&$executor:ty) = $spawn_on:path;)?
        }
    ) => {
        $crate::adapter::doc_links!();

        $(#[doc = $doc])*
        pub trait GroupExt<V>: $crate::adapter::Sealed {
            #[doc = $crate::adapter::with_role_doc!("call_timeout", "caller")]
            #[doc = concat!(
                "```\n",
                "use std::time::Duration;\n",
                "use single_flight::{Group, Role};\n",
                "use ", $krate, "::GroupExt;\n\n",
                $start, "\n",
                "let group: Group<u8> = Group::new();\n",
                "let outcome = group.call_timeout_with_role(Duration::from_secs(1), || async { 1 });\n",
                "let outcome = outcome.await.unwrap();\n",
                "assert_eq!((outcome.value, outcome.role, outcome.callers), (1, Role::Started, 1));\n",
                $end, "\n",
                "```",
            )]
            fn call_timeout_with_role<F, Fut>(
                &self,
                duration: ::std::time::Duration,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<$crate::Outcome<V>, $crate::Elapsed>> + Send
            where
                F: FnOnce() -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static;

            $(#[doc = $call_timeout])*
            fn call_timeout<F, Fut>(
                &self,
                duration: ::std::time::Duration,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send
            where
                F: FnOnce() -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static;

            $(#[doc = $call_deadline])*
            fn call_deadline<F, Fut>(
                &self,
                deadline: $instant,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send
            where
                F: FnOnce() -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static;

            $(#[doc = $spawned])*
            $(#[cfg($cfg)])?
            fn do_chan_spawned<F, Fut>(&self, work: F) -> $crate::Receiver<V>
            where
                F: FnOnce() -> Fut,
                Fut: ::std::future::Future<Output = V> + Send + 'static;

            $(
                $(#[doc = $spawned_on])*
                fn do_chan_spawned_on<F, Fut>(&self, executor: &$executor, work: F) -> $crate::Receiver<V>
                where
                    F: FnOnce() -> Fut,
                    Fut: ::std::future::Future<Output = V> + Send + 'static;
            )?
        }

        impl<V: Clone + Send + 'static> GroupExt<V> for $crate::Group<V> {
            fn call_timeout_with_role<F, Fut>(
                &self,
                duration: ::std::time::Duration,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<$crate::Outcome<V>, $crate::Elapsed>> + Send
            where
                F: FnOnce() -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static,
            {
                $crate::adapter::timeout::<$rt, $crate::Outcome<V>>(duration, self.call_with_role(work))
            }

            fn call_timeout<F, Fut>(
                &self,
                duration: ::std::time::Duration,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send
            where
                F: FnOnce() -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static,
            {
                $crate::adapter::timeout::<$rt, V>(duration, self.call(work))
            }

            fn call_deadline<F, Fut>(
                &self,
                deadline: $instant,
                work: F,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send
            where
                F: FnOnce() -> Fut + Send,
                Fut: ::std::future::Future<Output = V> + Send + 'static,
            {
                $crate::adapter::timeout_at::<$rt, V>(deadline, self.call(work))
            }

            $(#[cfg($cfg)])?
            fn do_chan_spawned<F, Fut>(&self, work: F) -> $crate::Receiver<V>
            where
                F: FnOnce() -> Fut,
                Fut: ::std::future::Future<Output = V> + Send + 'static,
            {
                self.do_chan_detached(work, $spawn)
            }

            $(
                fn do_chan_spawned_on<F, Fut>(&self, executor: &$executor, work: F) -> $crate::Receiver<V>
                where
                    F: FnOnce() -> Fut,
                    Fut: ::std::future::Future<Output = V> + Send + 'static,
                {
                    self.do_chan_detached(work, |task| $spawn_on(executor, task))
                }
            )?
        }
    };
}

/// Defines an adapter's `ReceiverExt` trait and its implementation for `Receiver`; the input is
/// that of [`keyed_group_ext!`](crate::keyed_group_ext) without the spawn, with the methods
/// `recv_timeout`, `recv_deadline` and `recv_timeout_with_role`.
#[macro_export]
#[doc(hidden)]
macro_rules! receiver_ext {
    (
        $(#[doc = $doc:expr])*
        pub trait ReceiverExt where timer = $rt:ty, instant = $instant:ty, examples = ($krate:literal, $start:literal, $end:literal) {
            $(#[doc = $recv_timeout:expr])* fn recv_timeout;
            $(#[doc = $recv_deadline:expr])* fn recv_deadline;
        }
    ) => {
        $crate::adapter::doc_links!();

        $(#[doc = $doc])*
        pub trait ReceiverExt<V>: $crate::adapter::Sealed {
            #[doc = $crate::adapter::with_role_doc!("recv_timeout", "receiver")]
            #[doc = concat!(
                "```\n",
                "use std::time::Duration;\n",
                "use single_flight::{KeyedGroup, Role};\n",
                "use ", $krate, "::ReceiverExt;\n\n",
                $start, "\n",
                "let group: KeyedGroup<u8, u8> = KeyedGroup::new();\n",
                "let first = group.do_chan(1, |k| async move { k });\n",
                "let second = group.do_chan(1, |_| async { unreachable!(\"joins\") });\n",
                "let second = second.recv_timeout_with_role(Duration::from_secs(1)).await.unwrap();\n",
                "assert_eq!((second.value, second.role, second.callers), (1, Role::Joined, 2));\n",
                "drop(first);\n",
                $end, "\n",
                "```",
            )]
            fn recv_timeout_with_role(
                self,
                duration: ::std::time::Duration,
            ) -> impl ::std::future::Future<Output = Result<$crate::Outcome<V>, $crate::Elapsed>>
                   + Send
                   + 'static;

            $(#[doc = $recv_timeout])*
            fn recv_timeout(
                self,
                duration: ::std::time::Duration,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send + 'static;

            $(#[doc = $recv_deadline])*
            fn recv_deadline(
                self,
                deadline: $instant,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send + 'static;
        }

        impl<V: Clone + Send + 'static> ReceiverExt<V> for $crate::Receiver<V> {
            fn recv_timeout_with_role(
                self,
                duration: ::std::time::Duration,
            ) -> impl ::std::future::Future<Output = Result<$crate::Outcome<V>, $crate::Elapsed>>
                   + Send
                   + 'static {
                $crate::adapter::timeout::<$rt, $crate::Outcome<V>>(duration, self.with_role())
            }

            fn recv_timeout(
                self,
                duration: ::std::time::Duration,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send + 'static
            {
                $crate::adapter::timeout::<$rt, V>(duration, self)
            }

            fn recv_deadline(
                self,
                deadline: $instant,
            ) -> impl ::std::future::Future<Output = Result<V, $crate::Elapsed>> + Send + 'static
            {
                $crate::adapter::timeout_at::<$rt, V>(deadline, self)
            }
        }
    };
}

pub use crate::{doc_links, group_ext, keyed_group_ext, receiver_ext, with_role_doc};
