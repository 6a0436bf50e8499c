//! The `tracing` feature: one span per flight, with events for what happens to it. Compiled
//! only with the feature, so that without it a flight carries and does nothing more.
//!
//! The span (`single_flight` target, name `flight`, level DEBUG) opens when a caller starts a
//! flight, as a child of that caller's current span, and closes when the flight ends. Its
//! fields: `key` (for groups built with `trace_keys`, where `K: Debug`), `outcome` (`value`,
//! `panicked` or `abandoned`), `callers` (how many got the value), `duration_us`. Events, with
//! the flight's span as parent: `joined` (TRACE), `handed off` (the driver left before the work
//! finished) and `promoted to detached` (DEBUG), `abandoned` (DEBUG) and `panicked` (WARN, the
//! panic's message in field `panic`).

use std::fmt;
use std::time::Instant;

use tracing::field::{debug, Empty};
use tracing::Span;

/// A key's `Debug`, for groups that trace their keys.
pub(crate) type KeyDebug<K> = fn(&K, &mut fmt::Formatter<'_>) -> fmt::Result;

/// Formats a key with the `Debug` of its type, chosen where `K: Debug` was known.
struct DebugWith<'k, K>(&'k K, KeyDebug<K>);

impl<K> fmt::Debug for DebugWith<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.1)(self.0, f)
    }
}

/// The span of one flight and when it started.
pub(crate) struct Trace {
    span: Span,
    started: Instant,
}

/// How a flight ended, as the span's `outcome` field says it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ending {
    Value { callers: usize },
    Panicked,
    Abandoned,
}

impl Trace {
    /// Opens the span of a flight that is starting for `key`.
    pub(crate) fn start<K>(key: &K, key_debug: Option<KeyDebug<K>>) -> Self {
        let span = tracing::debug_span!(
            target: "single_flight",
            "flight",
            key = Empty,
            outcome = Empty,
            callers = Empty,
            duration_us = Empty,
        );
        if let Some(fmt) = key_debug {
            span.record("key", debug(DebugWith(key, fmt)));
        }
        Self {
            span,
            started: Instant::now(),
        }
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records how the flight ended and closes its span (once the last clone is gone).
    pub(crate) fn end(self, ending: Ending) {
        let outcome = match ending {
            Ending::Value { callers } => {
                self.span.record("callers", callers);
                "value"
            }
            Ending::Panicked => "panicked",
            Ending::Abandoned => {
                tracing::debug!(target: "single_flight", parent: &self.span, "abandoned");
                "abandoned"
            }
        };
        self.span.record("outcome", outcome);
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.span.record("duration_us", micros);
    }
}

/// The events a flight's span gets besides its end.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event<'a> {
    Joined,
    /// The driver left before the work finished: another waiter takes its role.
    HandedOff,
    PromotedToDetached,
    Panicked {
        message: &'a str,
    },
}

pub(crate) fn event(span: &Span, event: Event<'_>) {
    match event {
        Event::Joined => tracing::trace!(target: "single_flight", parent: span, "joined"),
        Event::HandedOff => tracing::debug!(target: "single_flight", parent: span, "handed off"),
        Event::PromotedToDetached => {
            tracing::debug!(target: "single_flight", parent: span, "promoted to detached")
        }
        Event::Panicked { message } => {
            tracing::warn!(target: "single_flight", parent: span, panic = message, "panicked")
        }
    }
}
