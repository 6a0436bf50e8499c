//! What a `Drop` hands to its group's background task instead of spawning it: a drop may run
//! on any thread, outside the runtime (where a static spawn such as `tokio::spawn` panics),
//! while the background task runs on the group's runtime and spawns from there.

use crate::protocol::FlightNames;

use super::dispatch::Unlisten;

/// A piece of clean-up that needs Redis, handed over by a `Drop`.
pub(crate) enum Job {
    /// An owner's work was dropped unfinished (every local caller left): release its lease
    /// now, so that a waiting process takes over without waiting for it to expire.
    Abandon { names: FlightNames, token: String },
    /// The last watch of a channel went: unsubscribe it.
    Unlisten(Unlisten),
}

/// Where drops hand their jobs: the sending end of the background task's queue.
pub(crate) type Jobs = async_channel::Sender<Job>;

/// Hands `job` to the background task; if it has ended (the group is being dropped, or its
/// runtime shut down), the job is dropped: every key it would touch has a TTL.
pub(crate) fn hand_over(jobs: &Jobs, job: Job) {
    let _ = jobs.try_send(job);
}
