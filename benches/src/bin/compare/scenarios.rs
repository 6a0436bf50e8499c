//! The scenarios `compare` measures, one module each, and the rows of a run.

pub(crate) mod herd;
pub(crate) mod solo;
pub(crate) mod spread;
pub(crate) mod timeouts;

use single_flight_benches::peers::Impl;

use crate::go::GoRows;

use self::herd::HerdRow;
use self::solo::SoloRow;
use self::spread::SpreadRow;
use self::timeouts::TimeoutRow;

/// The rows of the scenarios a run measured (`None`: not run).
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) solo: Option<Vec<SoloRow>>,
    pub(crate) single_thread: Option<Vec<SoloRow>>,
    pub(crate) herd: Option<Vec<HerdRow>>,
    pub(crate) spread: Option<Vec<SpreadRow>>,
    pub(crate) timeouts: Option<Vec<TimeoutRow>>,
    /// Go's x/sync, when `go` is installed and the run has the solo or herd scenario.
    pub(crate) go: Option<GoRows>,
}

/// The row of `imp` among `rows` (`get` reads a row's implementation).
pub(crate) fn row<R>(rows: &[R], imp: Impl, get: impl Fn(&R) -> Impl) -> Option<&R> {
    rows.iter().find(|r| get(r) == imp)
}

/// The rows of the implementations that share work, and the floors after them (where a row
/// from outside, Go's, goes between).
pub(crate) fn before_the_floors<R>(rows: &[R], imp: impl Fn(&R) -> Impl) -> (&[R], &[R]) {
    let split = rows.iter().position(|r| !imp(r).deduplicates());
    rows.split_at(split.unwrap_or(rows.len()))
}
