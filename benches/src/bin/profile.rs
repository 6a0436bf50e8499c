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
//! * `sizes`: the size of every implementation's call future (it is copied into each spawned
//!   task that awaits it, so it weighs on every spawn-heavy workload).
//!
//! `IMPL`: `keyed`, `keyed-foldhash`, `group`, `local-keyed` and `local-group` (the groups of
//! `single_flight::local`, for `!Send` work: solo only, with the same ready work), `oncecell`, `shared`, `rs-singleflight`,
//! `singleflight-async`, `async_singleflight`, `nodedup`, `floor` (the safe floor of a solo call,
//! `single_flight_benches::floor`: its solo figures only). Take the difference of two runs (`N` and `2N`) to drop the
//! start-up cost.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use single_flight_benches::gate::Latch;
use single_flight_benches::peers::{Coalescer, Impl, Visit};

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

struct Size;

impl Visit for Size {
    type Output = usize;

    fn visit<C: Coalescer>(self) -> usize {
        let group = C::new();
        let call = group.call(1, ready);
        std::mem::size_of_val(&call)
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

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let herd = match args.next().as_deref() {
        Some("solo") => false,
        Some("herd") => true,
        Some("sizes") => {
            for imp in Impl::ALL {
                println!("{:5} bytes  {}", imp.visit(Size), imp.name());
            }
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("usage: profile solo|herd IMPL [N] | profile sizes");
            return ExitCode::from(2);
        }
    };
    let imp_name = args.next();
    if let Some(local @ ("local-keyed" | "local-group")) = imp_name.as_deref() {
        if herd {
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
    let imp = match imp_name.as_deref() {
        None | Some("keyed") => Impl::SingleFlightKeyed,
        Some("keyed-foldhash") => Impl::SingleFlightKeyedFoldhash,
        Some("group") => Impl::SingleFlightGroup,
        Some("oncecell") => Impl::OnceCellMap,
        Some("shared") => Impl::SharedMap,
        Some("rs-singleflight") => Impl::RsSingleflight,
        Some("singleflight-async") => Impl::SingleflightAsync,
        Some("async_singleflight") => Impl::AsyncSingleflight,
        Some("nodedup") => Impl::NoDedup,
        Some("floor") => Impl::Floor,
        Some(other) => {
            eprintln!("profile: unknown implementation `{other}`");
            return ExitCode::from(2);
        }
    };
    let calls = match args.next().map(|n| n.parse::<u64>()) {
        None => 100_000,
        Some(Ok(n)) => n,
        Some(Err(err)) => {
            eprintln!("profile: N: {err}");
            return ExitCode::from(2);
        }
    };
    if herd {
        imp.visit(Herd { herds: calls });
    } else {
        imp.visit(Solo {
            calls,
            warmup: 1_000,
        });
    }
    ExitCode::SUCCESS
}
