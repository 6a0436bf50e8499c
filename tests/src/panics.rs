//! Provoked panics and what tests learn from a panic payload.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use futures_lite::FutureExt;

use crate::EXPECTED_PANIC;

/// Installs (once per test binary) a panic hook that keeps provoked panics (their message
/// contains [`EXPECTED_PANIC`]) of worker threads off stderr. The harness's runners install it;
/// a test that brings its own runtime calls it first.
pub fn quiet_expected_panics() {
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
