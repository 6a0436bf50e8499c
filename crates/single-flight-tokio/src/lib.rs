//! tokio adapter for [`single_flight`]: timeouts on tokio's clock and detached flights spawned
//! with `tokio::spawn`.
//!
//! The core crate shares one execution among every caller of a key and depends on no runtime.
//! What needs a runtime lives here, as extension traits on the core's types:
//!
//! * **Timeouts** ([`KeyedGroupExt::call_timeout`], [`ReceiverExt::recv_timeout`], and their
//!   `_deadline` forms on [`tokio::time::Instant`]) bound one caller's wait and nothing else: a
//!   caller that gives up gets [`Elapsed`], and the flight goes on for the others.
//! * **Detached flights** ([`KeyedGroupExt::do_chan_spawned`]) hand the work to `tokio::spawn`:
//!   it runs to completion even if every caller leaves, new callers join it while it runs, and a
//!   panic in it still reaches its waiters. This is Go's `DoChan`.
//! * **The runtime** ([`Tokio`]): this crate's implementation of
//!   [`single_flight::runtime::Runtime`], on which the core writes the timeouts and spawned
//!   flights once for every runtime; the extension traits above are names for its methods.
//!   It also spawns the flights of `single_flight::local` groups in a `LocalSet`
//!   (`Tokio::on(&local_group).do_chan_spawned(..)`).
//!
//! A timeout on a detached flight, Go's `select` on `DoChan` and `time.After`, is
//! `group.do_chan_spawned(key, work).recv_timeout(duration)`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use single_flight::KeyedGroup;
//! use single_flight_tokio::{KeyedGroupExt, ReceiverExt};
//!
//! static PROFILES: KeyedGroup<u64, String> = KeyedGroup::new();
//!
//! async fn fetch_profile(id: u64) -> String {
//!     tokio::time::sleep(Duration::from_millis(200)).await; // a slow backend
//!     format!("profile {id}")
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // This caller gives up after 50 ms; had it been alone, the fetch would be dropped with it.
//! let hurried = PROFILES.call_timeout(7, Duration::from_millis(50), fetch_profile);
//! // This one lets the fetch run to completion on the runtime, whoever waits for it.
//! let patient = PROFILES.do_chan_spawned(7, fetch_profile).recv_timeout(Duration::from_secs(1));
//!
//! let (hurried, patient) = tokio::join!(hurried, patient);
//! assert!(hurried.is_err());
//! assert_eq!(patient.unwrap(), "profile 7");
//! assert_eq!(PROFILES.in_flight(), 0);
//! # }
//! ```
//!
//! # Features
//!
//! This crate has no optional features. It enables tokio's `rt` (for `tokio::spawn`) and `time`
//! features; the runtime that polls a timeout must have its time driver enabled
//! (`#[tokio::main]` and [`Builder::enable_all`] do that).
//!
//! [`Builder::enable_all`]: tokio::runtime::Builder::enable_all

#![forbid(unsafe_code)]

mod group;
mod keyed;
mod receiver;
mod runtime;
mod sealed;

pub use crate::group::GroupExt;
pub use crate::keyed::KeyedGroupExt;
pub use crate::receiver::ReceiverExt;
pub use crate::runtime::Tokio;
pub use single_flight::Elapsed;

// The README's example is compiled and run as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
