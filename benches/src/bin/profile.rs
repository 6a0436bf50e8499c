//! `profile`: one implementation's solo or herd path, alone, for `valgrind --tool=callgrind`.
//!
//! ```text
//! cargo build --release -p single-flight-benches --bin profile
//! valgrind --tool=callgrind target/release/profile solo keyed 100000
//! valgrind --tool=callgrind target/release/profile herd keyed 100
//! ```
//!
//! No runtime: every future is polled by hand with a no-op waker, on one thread, so that only the
//! implementation's own instructions are counted, and counted repeatably.
//!
//! * `solo IMPL N`: `N` sequential calls with a fresh key each and ready work.
//! * `herd IMPL N`: `N` herds of 1,000 callers on one key: every caller is polled once (the
//!   first starts the flight, the others join), then the work is released and every caller is
//!   polled to completion, the starter first. The callers' futures are boxed by the harness (the
//!   same for every implementation: subtract `herd nodedup N`).
//!
//! * `solo-str IMPL N`: as `solo` with short `String` keys (`"user:000123"`, 11 bytes), for
//!   `keyed`, `keyed-HASHER` and `floor-HASHER` only (the hasher comparison). Each call is given a
//!   clone of one of 1,024 prepared keys: the clone is the harness's and the same in every row.
//!
//! `IMPL`: the short names of `compare --impls` (`keyed`, `keyed-foldhash`, `uniflight`,
//! `floor-siphash`, ...; `floor` is the safe floor on `KeyedGroup::new()`'s hasher, solo figures
//! only; `local-keyed` and `local-group`, the groups of `single_flight::local` for `!Send`
//! work, solo only). Take the difference of two runs (`N` and `2N`) to drop the start-up cost.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use single_flight::KeyedGroup;
use single_flight_benches::floor::SafeFloor;
use single_flight_benches::gate::Latch;
use single_flight_benches::hashers::RowHasher;
use single_flight_benches::peers::{Coalescer, Impl, Visit, VisitHasher};

async fn ready(key: u64) -> u64 {
    key
}

struct Solo {
    calls: u64,
    warmup: u64,
}

impl Visit for Solo {
    type Output = ();

    fn visit<C: Coalescer>(self) {
        let group = C::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut one = |key: u64| {
            let call = pin!(group.call(key, ready));
            match call.poll(&mut cx) {
                Poll::Ready(value) => black_box(value),
                Poll::Pending => panic!("a solo call with ready work returned Pending"),
            };
        };
        for key in 0..self.warmup {
            one(u64::MAX - key);
        }
        for key in 0..self.calls {
            one(black_box(key));
        }
    }
}

/// Work that is pending until the latch opens (and wakes it: a future that returned `Pending`
/// is polled again only once woken, and single-flight keeps to that).
async fn held(latch: Arc<Latch>, key: u64) -> u64 {
    latch.wait().await;
    key
}

const HERD: usize = 1_000;

struct Herd {
    herds: u64,
}

impl Visit for Herd {
    type Output = ();

    fn visit<C: Coalescer>(self) {
        let group = C::new();
        let mut cx = Context::from_waker(Waker::noop());
        for key in 0..self.herds + 2 {
            let latch = Arc::new(Latch::new());
            let mut callers: Vec<_> = (0..HERD)
                .map(|_| {
                    let latch = latch.clone();
                    Some(Box::pin(group.call(key, move |key| held(latch, key))))
                })
                .collect();
            for caller in callers.iter_mut().flatten() {
                assert!(caller.as_mut().poll(&mut cx).is_pending());
            }
            latch.open();
            let mut left = HERD;
            while left > 0 {
                for slot in &mut callers {
                    let Some(caller) = slot else { continue };
                    if let Poll::Ready(value) = caller.as_mut().poll(&mut cx) {
                        assert_eq!(black_box(value), key);
                        *slot = None;
                        left -= 1;
                    }
                }
            }
            drop(callers);
        }
    }
}

/// A registry of `String` keys, for `solo-str`.
trait StrRegistry {
    fn make() -> Self;
    fn call(&self, key: String) -> impl Future<Output = u64> + '_;
}

async fn len(key: String) -> u64 {
    key.len() as u64
}

impl StrRegistry for KeyedGroup<String, u64> {
    fn make() -> Self {
        KeyedGroup::new()
    }
    fn call(&self, key: String) -> impl Future<Output = u64> + '_ {
        KeyedGroup::call(self, key, len)
    }
}

/// `KeyedGroup::with_hasher(S)`, apart from `KeyedGroup::new()` even when `S` is its hasher.
struct With<S>(KeyedGroup<String, u64, S>);

impl<S: RowHasher> StrRegistry for With<S> {
    fn make() -> Self {
        With(KeyedGroup::with_hasher(S::seeded()))
    }
    fn call(&self, key: String) -> impl Future<Output = u64> + '_ {
        self.0.call(key, len)
    }
}

impl<S: RowHasher> StrRegistry for SafeFloor<String, S> {
    fn make() -> Self {
        SafeFloor::new()
    }
    fn call(&self, key: String) -> impl Future<Output = u64> + '_ {
        self.call_key(key, len)
    }
}

fn solo_str<R: StrRegistry>(calls: u64) {
    let keys: Vec<String> = (0..1_024).map(|i| format!("user:{i:06}")).collect();
    let group = R::make();
    let mut cx = Context::from_waker(Waker::noop());
    for i in 0..1_000 + calls {
        let call = pin!(group.call(keys[i as usize % keys.len()].clone()));
        match call.poll(&mut cx) {
            Poll::Ready(value) => black_box(value),
            Poll::Pending => panic!("a solo call with ready work returned Pending"),
        };
    }
}

struct StrRow {
    floor: bool,
    calls: u64,
}

impl VisitHasher for StrRow {
    type Output = ();
    fn visit<S: RowHasher>(self) {
        if self.floor {
            solo_str::<SafeFloor<String, S>>(self.calls);
        } else {
            solo_str::<With<S>>(self.calls);
        }
    }
}

/// The solo path of `single_flight::local::KeyedGroup`, written as [`Solo`] writes it for the
/// others (the same closure and loop, so that the harness costs the same). Not a
/// [`Coalescer`]: a local group is neither `Send` nor `Sync`.
fn solo_local_keyed(calls: u64) {
    let group = single_flight::local::KeyedGroup::<u64, u64>::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut one = |key: u64| {
        let call = pin!(group.call(key, ready));
        match call.poll(&mut cx) {
            Poll::Ready(value) => black_box(value),
            Poll::Pending => panic!("a solo call with ready work returned Pending"),
        };
    };
    for key in 0..1_000 {
        one(u64::MAX - key);
    }
    for key in 0..calls {
        one(black_box(key));
    }
}

/// The solo path of `single_flight::local::Group`, as [`solo_local_keyed`].
fn solo_local_group(calls: u64) {
    let group = single_flight::local::Group::<u64>::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut one = |key: u64| {
        let call = pin!(group.call(move || ready(key)));
        match call.poll(&mut cx) {
            Poll::Ready(value) => black_box(value),
            Poll::Pending => panic!("a solo call with ready work returned Pending"),
        };
    };
    for key in 0..1_000 {
        one(u64::MAX - key);
    }
    for key in 0..calls {
        one(black_box(key));
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Solo,
    SoloStr,
    Herd,
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("solo") => Mode::Solo,
        Some("solo-str") => Mode::SoloStr,
        Some("herd") => Mode::Herd,
        _ => {
            eprintln!("usage: profile solo|solo-str|herd IMPL [N]");
            return ExitCode::from(2);
        }
    };
    let name = args.next().unwrap_or_else(|| "keyed".into());
    if let local @ ("local-keyed" | "local-group") = name.as_str() {
        if !matches!(mode, Mode::Solo) {
            eprintln!("profile: `{local}` has a solo path only");
            return ExitCode::from(2);
        }
        let calls = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
        if local == "local-keyed" {
            solo_local_keyed(calls);
        } else {
            solo_local_group(calls);
        }
        return ExitCode::SUCCESS;
    }
    let Some(imp) = Impl::from_short(&name) else {
        eprintln!(
            "profile: unknown implementation `{name}` (one of {})",
            Impl::shorts()
        );
        return ExitCode::from(2);
    };
    let calls = match args.next().map(|n| n.parse::<u64>()) {
        None => 100_000,
        Some(Ok(n)) => n,
        Some(Err(err)) => {
            eprintln!("profile: N: {err}");
            return ExitCode::from(2);
        }
    };
    match (mode, imp) {
        (Mode::Solo, _) => imp.visit(Solo {
            calls,
            warmup: 1_000,
        }),
        (Mode::Herd, _) => imp.visit(Herd { herds: calls }),
        (Mode::SoloStr, Impl::SingleFlightKeyed) => solo_str::<KeyedGroup<String, u64>>(calls),
        (Mode::SoloStr, Impl::KeyedWith(hasher)) => hasher.visit(StrRow {
            floor: false,
            calls,
        }),
        (Mode::SoloStr, Impl::Floor(hasher)) => hasher.visit(StrRow { floor: true, calls }),
        (Mode::SoloStr, _) => {
            eprintln!("profile: solo-str measures keyed, keyed-HASHER and floor-HASHER only");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
