//! The `tracing` feature: the spans and events of a herd, a cancelled driver, a panic and an
//! abandoned flight, captured by a small subscriber that records the span tree.
//!
//! Run with `cargo test -p single-flight --features tracing --test tracing`.

#![cfg(feature = "tracing")]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use futures_lite::future::{block_on, zip};
use single_flight::KeyedGroup;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, Default)]
struct SpanRecord {
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
    handles: usize,
}

#[derive(Debug)]
struct EventRecord {
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Log {
    spans: BTreeMap<u64, SpanRecord>,
    events: Vec<EventRecord>,
    next_id: u64,
}

/// Records every span (with its parent and fields) and every event (with its parent span).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Log>>);

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

fn current() -> Option<u64> {
    ENTERED.with(|stack| stack.borrow().last().copied())
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let parent = if attrs.is_root() {
            None
        } else if let Some(parent) = attrs.parent() {
            Some(parent.into_u64())
        } else {
            current()
        };
        let mut record = SpanRecord {
            name: attrs.metadata().name(),
            parent,
            handles: 1,
            ..SpanRecord::default()
        };
        attrs.record(&mut Fields(&mut record.fields));
        let mut log = self.0.lock().unwrap();
        log.next_id += 1;
        let id = log.next_id;
        log.spans.insert(id, record);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut log = self.0.lock().unwrap();
        let record = log.spans.get_mut(&span.into_u64()).unwrap();
        values.record(&mut Fields(&mut record.fields));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let parent = if event.is_root() {
            None
        } else if let Some(parent) = event.parent() {
            Some(parent.into_u64())
        } else {
            current()
        };
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap()
            .events
            .push(EventRecord { parent, fields });
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|stack| stack.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, _: &Id) {
        ENTERED.with(|stack| stack.borrow_mut().pop());
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.0
            .lock()
            .unwrap()
            .spans
            .get_mut(&id.into_u64())
            .unwrap()
            .handles += 1;
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let mut log = self.0.lock().unwrap();
        let record = log.spans.get_mut(&id.into_u64()).unwrap();
        record.handles -= 1;
        record.handles == 0
    }
}

impl Capture {
    /// Runs `f` with this subscriber, then returns the flight spans and the log.
    fn run(f: impl FnOnce()) -> Log {
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), f);
        let log = std::mem::take(&mut *capture.0.lock().unwrap());
        log
    }
}

impl Log {
    fn flights(&self) -> Vec<(u64, &SpanRecord)> {
        self.spans
            .iter()
            .filter(|(_, span)| span.name == "flight")
            .map(|(id, span)| (*id, span))
            .collect()
    }

    /// The messages of the events whose parent is `span`.
    fn events_of(&self, span: u64) -> Vec<&str> {
        self.events
            .iter()
            .filter(|event| event.parent == Some(span))
            .map(|event| event.fields.get("message").map_or("", String::as_str))
            .collect()
    }
}

async fn yields(n: usize) {
    for _ in 0..n {
        futures_lite::future::yield_now().await;
    }
}

#[test]
fn herd_has_one_flight_span_under_the_callers_span() {
    let group = KeyedGroup::<String, usize>::new().trace_keys();
    let log = Capture::run(|| {
        let request = tracing::info_span!("request");
        let _entered = request.enter();
        let ((a, b), c) = block_on(zip(
            zip(
                group.call_ref("ada", |k: String| async move {
                    yields(10).await;
                    k.len()
                }),
                group.call_ref("ada", |_| async { unreachable!("joins") }),
            ),
            group.call_ref("ada", |_| async { unreachable!("joins") }),
        ));
        assert_eq!((a, b, c), (3, 3, 3));
    });
    let flights = log.flights();
    assert_eq!(flights.len(), 1, "one span per flight");
    let (id, flight) = flights[0];
    let request = log.spans.iter().find(|(_, s)| s.name == "request").unwrap();
    assert_eq!(
        flight.parent,
        Some(*request.0),
        "a child of the starter's span"
    );
    assert_eq!(flight.fields["key"], "\"ada\"");
    assert_eq!(flight.fields["outcome"], "value");
    assert_eq!(flight.fields["callers"], "3");
    assert!(flight.fields.contains_key("duration_us"));
    assert_eq!(flight.handles, 0, "the span closed when the flight ended");
    assert_eq!(log.events_of(id), ["joined", "joined"]);
}

#[test]
fn cancelled_driver_hands_off_in_the_span() {
    let group = KeyedGroup::<u8, u8>::new();
    let log = Capture::run(|| {
        let mut driver = group.do_chan(1, |_| async {
            yields(3).await;
            7
        });
        let follower = group.do_chan(1, |_| async { unreachable!("joins") });
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(std::pin::Pin::new(&mut driver)
            .poll_inner(&mut cx)
            .is_pending());
        drop(driver);
        assert_eq!(block_on(follower), 7);
    });
    let flights = log.flights();
    assert_eq!(flights.len(), 1);
    let (id, flight) = flights[0];
    assert!(
        !flight.fields.contains_key("key"),
        "keys are traced only on request"
    );
    assert_eq!(flight.fields["outcome"], "value");
    assert_eq!(flight.fields["callers"], "1");
    assert_eq!(log.events_of(id), ["joined", "handed off"]);
}

#[test]
fn panic_ends_the_span_with_its_message() {
    let group = KeyedGroup::<u8, u8>::new();
    let log = Capture::run(|| {
        let rx = group.do_chan(1, |_| async { panic!("database is on fire") });
        assert!(catch_unwind(AssertUnwindSafe(|| block_on(rx))).is_err());
    });
    let (id, flight) = log.flights()[0];
    assert_eq!(flight.fields["outcome"], "panicked");
    assert_eq!(log.events_of(id), ["panicked"]);
    let event = log.events.iter().find(|e| e.parent == Some(id)).unwrap();
    assert_eq!(event.fields["message"], "panicked");
    assert_eq!(event.fields["panic"], "database is on fire");
}

#[test]
fn abandoned_flight_ends_its_span() {
    let group = KeyedGroup::<u8, u8>::new();
    let log = Capture::run(|| drop(group.do_chan(1, |_| async { 1 })));
    let (id, flight) = log.flights()[0];
    assert_eq!(flight.fields["outcome"], "abandoned");
    assert_eq!(flight.handles, 0);
    assert_eq!(log.events_of(id), ["abandoned"]);
}

/// Polls a receiver once without the `Future` import noise at the call site.
trait PollInner {
    fn poll_inner(self, cx: &mut std::task::Context<'_>) -> std::task::Poll<u8>;
}

impl PollInner for std::pin::Pin<&mut single_flight::Receiver<u8>> {
    fn poll_inner(self, cx: &mut std::task::Context<'_>) -> std::task::Poll<u8> {
        std::future::Future::poll(self, cx)
    }
}
