//! async-std adapter for [`single_flight`]: timeouts with [`async_std::future::timeout`] and
//! detached flights spawned with [`async_std::task::spawn`].
//!
//! The core crate shares one execution among every caller of a key and depends on no runtime.
//! What needs a runtime lives here, as extension traits on the core's types:
//!
//! * **Timeouts** ([`KeyedGroupExt::call_timeout`], [`ReceiverExt::recv_timeout`], and their
//!   `_deadline` forms on [`std::time::Instant`]) bound one caller's wait and nothing else: a
//!   caller that gives up gets [`Elapsed`], and the flight goes on for the others.
//! * **Detached flights** ([`KeyedGroupExt::do_chan_spawned`]) run the work on its own task: it
//!   runs to completion even if every caller leaves, new callers join it while it runs, and a
//!   panic in it still reaches its waiters. This is Go's `DoChan`.
//! * **The runtime** ([`AsyncStd`]): this crate's implementation of
//!   [`single_flight::runtime::Runtime`], on which the core writes the timeouts and spawned
//!   flights once for every runtime; the extension traits above are names for its methods.
//!
//! A timeout on a detached flight, Go's `select` on `DoChan` and `time.After`, is
//! `group.do_chan_spawned(key, work).recv_timeout(duration)`.
//!
//! async-std has been discontinued by its authors in favour of smol; new code should prefer
//! `single-flight-smol`, which has the same API.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use single_flight::KeyedGroup;
//! use single_flight_async_std::KeyedGroupExt;
//!
//! static PROFILES: KeyedGroup<u64, String> = KeyedGroup::new();
//!
//! # async_std::task::block_on(async {
//! let (reply, backend) = async_std::channel::bounded::<&str>(1); // a slow backend
//! let fetch = move |id: u64| async move { format!("{} {id}", backend.recv().await.unwrap()) };
//!
//! // The fetch runs on its own task to its end, whoever waits for it.
//! let rx = PROFILES.do_chan_spawned(7, fetch);
//! // A caller that gives up after 10 ms leaves it running for the others.
//! let hurried = PROFILES.call_timeout(7, Duration::from_millis(10), |_| async { unreachable!() });
//! assert!(hurried.await.is_err());
//!
//! reply.send("profile").await.unwrap();
//! assert_eq!(rx.await, "profile 7");
//! assert_eq!(PROFILES.in_flight(), 0);
//! # });
//! ```
//!
//! # Features
//!
//! This crate has no optional features. It needs async-std's default features (its runtime).

#![forbid(unsafe_code)]

mod group;
mod keyed;
mod receiver;
mod runtime;
mod sealed;

pub use crate::group::GroupExt;
pub use crate::keyed::KeyedGroupExt;
pub use crate::receiver::ReceiverExt;
pub use crate::runtime::AsyncStd;
pub use single_flight::Elapsed;

// The README's example is compiled and run as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
