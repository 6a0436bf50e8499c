//! The wire: everything that talks to Redis, one file per concern. `conn.rs` is the connection
//! (one server or a cluster) and its subscriptions, `scripts.rs` the server-side scripts (the
//! Lua itself is in `lua/`), `dispatch.rs` routes pub/sub messages to the flights that wait
//! for them, and `jobs.rs` what a `Drop` hands to the group's background task. Timers and
//! spawns are the group's `single_flight::runtime::Runtime`. What the messages and answers
//! mean is decided in `protocol/`.

mod conn;
mod dispatch;
mod jobs;
mod scripts;

pub(crate) use conn::Conn;
pub(crate) use dispatch::{Dispatcher, Link, Watch};
pub(crate) use jobs::{hand_over, Job, Jobs};
pub(crate) use scripts::Scripts;

#[cfg(not(any(feature = "tokio", feature = "smol")))]
compile_error!(
    "single-flight-redis needs redis-rs's async I/O for a runtime: enable the feature `tokio` or `smol`"
);

/// Waits for `duration` on `R`'s clock (for ever if the deadline is out of reach).
pub(crate) async fn sleep<R: single_flight::runtime::Runtime>(duration: std::time::Duration) {
    match R::now().checked_add(duration) {
        Some(deadline) => R::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
