//! Hostile inputs: keys whose `Hash`, `Eq` or `Clone` panic, values whose `Clone` panics, work
//! that panics (on its first poll, after some polls, in its closure, in its `Drop`), work that
//! never completes, re-entrant calls, misuse of a `Receiver`, a spawn hook that panics, keys that
//! lie about their identity, and groups dropped while their flights run.
//!
//! Each case must end in a clear panic or error, never a hang (every test body runs under a
//! bound that fails the test), never a poisoned lock or a wedged key: after each hostile event
//! the group must still work (a normal call for the same key and for another key returns its
//! value, and `in_flight() == 0`). Every case runs on plain `futures_lite::future::block_on`, on
//! a tokio multi-thread runtime and on smol.

use std::any::Any;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::{poll_once, yield_now};
use futures_lite::FutureExt;
use single_flight::{Group, KeyedGroup, Panicked, Receiver};
use single_flight_tests::{
    catch, panic_message, DropFlag, Gate, NonStringPayload, Rt, EXPECTED_PANIC,
};

/// The panics this file provokes carry this tag; the harness's panic hook keeps them off stderr.
const TAG: &str = EXPECTED_PANIC;
/// The message of the core's re-entrancy panic.
const REENTRANT: &str = "re-entrant";

// ---------------------------------------------------------------------------------------------
// Runtimes.

/// One `#[test]` per runtime (plain `block_on` threads, tokio multi-thread, smol), each running
/// `$body` (`|rt: Rt| async move { ... }`) under the harness's hang bound.
macro_rules! hostile {
    ($(#[$attr:meta])* $name:ident, $body:expr) => {
        single_flight_tests::test_on! {
            [block_on = Threads, tokio = TokioMultiThread, smol = Smol]
            $(#[$attr])* $name, $body
        }
    };
}

mod fixture;
mod keys;
mod misuse;
mod values;
mod waiters;
mod work;

use crate::fixture::*;

// ---------------------------------------------------------------------------------------------
// Panics.

/// Panics with [`TAG`] and `what`; stands for a value of any type.
#[track_caller]
fn provoke<T>(what: &str) -> T {
    panic!("{TAG} {what}")
}

/// A waiter's outcome: its value's number, or its panic.
type Outcome = Result<Option<u32>, Box<dyn Any + Send>>;

/// Awaits a waiter, catching its panic.
async fn waiter(fut: impl Future<Output = HVal>) -> Outcome {
    catch(fut).await.map(|v| Some(v.v))
}

/// Awaits `fut` for a short while; `None` if it gave up (and dropped `fut`).
async fn give_up<F: Future>(fut: F) -> Option<F::Output> {
    async { Some(fut.await) }
        .or(async {
            smol::Timer::after(Duration::from_millis(20)).await;
            None
        })
        .await
}

/// Asserts that `result` is a panic whose message contains `needle`; returns the payload.
#[track_caller]
fn expect_panic<T>(result: Result<T, Box<dyn Any + Send>>, needle: &str) -> Box<dyn Any + Send> {
    match result {
        Ok(_) => panic!("expected a panic containing {needle:?}, got a value"),
        Err(payload) => {
            let message = panic_message(&*payload).unwrap_or_else(|| {
                panic!("expected a panic containing {needle:?}, got a payload without a message")
            });
            assert!(
                message.contains(needle),
                "expected a panic containing {needle:?}, got {message:?}"
            );
            payload
        }
    }
}

/// Asserts that `result` is a follower's panic: a [`Panicked`] carrying `needle`.
#[track_caller]
fn expect_follower_panic<T>(result: Result<T, Box<dyn Any + Send>>, needle: &str) {
    let payload = expect_panic(result, needle);
    let panicked = payload
        .downcast_ref::<Panicked>()
        .unwrap_or_else(|| panic!("a follower must unwind with `Panicked`"));
    assert!(
        panicked.to_string().contains(needle),
        "`Panicked` displays its message"
    );
}

// ---------------------------------------------------------------------------------------------
// Small async helpers.

/// Polls every future of `futs` (in order) until all are done; returns their outputs.
async fn join_all<T>(futs: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut futs: Vec<_> = futs.into_iter().map(|f| (f, None)).collect();
    futures_lite::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, out) in &mut futs {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(value) => *out = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    futs.into_iter()
        .map(|(_, out)| out.expect("every future finished"))
        .collect()
}
