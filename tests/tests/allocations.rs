//! Heap allocations per flight and per caller (the `# Costs` section of the core's crate docs),
//! counted by a `#[global_allocator]` that wraps the system allocator and counts the
//! allocations (and reallocations) of the current thread only, so that the tests of this binary
//! may run in parallel. Everything runs on `futures_lite::future::block_on` on the test thread;
//! each measure warms up first (the group's table, its recycled flight states and their
//! `Event`s, block_on's cached waker), then counts over `ITERATIONS` flights and asserts the
//! exact count per iteration.
//!
//! Work futures capture a `u64` on purpose: a zero-sized future is boxed without allocating,
//! which would hide the one allocation every flight is expected to make (its boxed work).

use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use futures_lite::future::block_on;
use single_flight::{Group, KeyedGroup};
use single_flight_tests::alloc::{thread_allocations, CountingAllocator};
use single_flight_tests::{poll_noop, Gate, Watchdog, HANG_BOUND, WATCHDOG_GRACE};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by this thread so far.
fn allocations() -> u64 {
    thread_allocations()
}

/// The harness's hang bound for a measure: its watchdog thread allocates on its own thread, and
/// the test thread's allocations for it happen before the counting starts.
fn hang_bound(what: &str) -> Watchdog {
    Watchdog::arm(&format!("measure `{what}`"), HANG_BOUND + WATCHDOG_GRACE)
}

const WARM_UP: u64 = 100;
const ITERATIONS: u64 = 1000;

/// Runs `f(i)` for `WARM_UP` iterations, then counts the allocations of `ITERATIONS` more and
/// returns them per iteration (the total must divide evenly, or the test fails).
fn per_iteration(what: &str, mut f: impl FnMut(u64)) -> u64 {
    let _hang_bound = hang_bound(what);
    for i in 0..WARM_UP {
        f(i);
    }
    let before = allocations();
    for i in WARM_UP..WARM_UP + ITERATIONS {
        f(i);
    }
    let total = allocations() - before;
    println!(
        "{what}: {total} allocations over {ITERATIONS} iterations = {} per iteration",
        total as f64 / ITERATIONS as f64
    );
    assert_eq!(
        total % ITERATIONS,
        0,
        "{what}: {total} allocations over {ITERATIONS} iterations is not a whole number per iteration"
    );
    total / ITERATIONS
}

#[test]
fn solo_keyed_call_allocates_the_boxed_work_only() {
    let g: KeyedGroup<u64, u64> = KeyedGroup::new();
    let n = per_iteration("solo KeyedGroup::call, fresh key, ready work", |i| {
        // The work captures `k` (a u64): its box really allocates.
        let v = block_on(g.call(i, |k| async move { k * 2 }));
        assert_eq!(v, i * 2);
    });
    assert_eq!(g.in_flight(), 0);
    assert_eq!(n, 1, "one allocation per flight: the boxed work");

    let n = per_iteration("solo KeyedGroup::call, fresh key, work yields once", |i| {
        // Polled twice, with the flight's own waker in between: that waker allocates nothing.
        let v = block_on(g.call(i, |k| async move {
            futures_lite::future::yield_now().await;
            k * 3
        }));
        assert_eq!(v, i * 3);
    });
    assert_eq!(g.in_flight(), 0);
    assert_eq!(
        n, 1,
        "one allocation per flight, however often the work is polled"
    );
}

#[test]
fn solo_group_call_allocates_the_boxed_work_only() {
    let g: Group<u64> = Group::new();
    let n = per_iteration("solo Group::call, ready work", |i| {
        // The work captures `i` (a u64): its box really allocates.
        let v = block_on(g.call(|| async move { i + 1 }));
        assert_eq!(v, i + 1);
    });
    assert_eq!(g.in_flight(), 0);
    assert_eq!(n, 1, "one allocation per flight: the boxed work");
}

/// Counts the allocations of a joining `call` (the follower) only, over `ITERATIONS` flights
/// after `WARM_UP`; `flight(i)` runs one flight and returns the follower's allocations.
fn follower_per_flight(what: &str, mut flight: impl FnMut(u64) -> u64) -> u64 {
    let _hang_bound = hang_bound(what);
    for i in 0..WARM_UP {
        flight(i);
    }
    let total: u64 = (WARM_UP..WARM_UP + ITERATIONS).map(&mut flight).sum();
    println!("{what}: {total} allocations over {ITERATIONS} flights (follower only)");
    total
}

/// A joining `call` registers (its listener lives in its own future, on the stack here), waits
/// while the leader drives, and takes its share of the value: it allocates nothing.
#[test]
fn joining_call_allocates_nothing() {
    let g: KeyedGroup<u64, u64> = KeyedGroup::new();
    let total = follower_per_flight("joining KeyedGroup::call, leader drives", |i| {
        let gate = Arc::new(Gate::new());
        // The work captures `i` and a gate: the follower joins while it waits.
        let mut leader = Box::pin(g.call(i, {
            let gate = gate.clone();
            move |k| async move {
                gate.wait().await;
                k + i
            }
        }));
        assert!(poll_noop(leader.as_mut()).is_pending());

        let before = allocations();
        let mut follower = pin!(g.call(i, |_| async { unreachable!("joins") }));
        assert!(poll_noop(follower.as_mut()).is_pending(), "listening");
        let mut spent = allocations() - before;

        gate.open();
        assert_eq!(poll_noop(leader.as_mut()), Poll::Ready(2 * i));

        let before = allocations();
        assert_eq!(poll_noop(follower.as_mut()), Poll::Ready(2 * i));
        spent += allocations() - before;
        spent
    });
    assert_eq!(g.in_flight(), 0);
    assert_eq!(total, 0, "a joining call allocates nothing");
}

/// A joining `call` that finds the work due for a poll takes over, drives the work to its end
/// and publishes the value: still nothing allocated by the follower.
#[test]
fn joining_call_that_drives_allocates_nothing() {
    let g: KeyedGroup<u64, u64> = KeyedGroup::new();
    let total = follower_per_flight("joining KeyedGroup::call, follower drives", |i| {
        // The work captures `i` and yields once (waking itself): the follower's first poll
        // takes the due poll over and finishes the flight.
        let mut leader = Box::pin(g.call(i, move |k| async move {
            futures_lite::future::yield_now().await;
            k + i
        }));
        assert!(poll_noop(leader.as_mut()).is_pending());

        let before = allocations();
        let mut follower = pin!(g.call(i, |_| async { unreachable!("joins") }));
        assert_eq!(poll_noop(follower.as_mut()), Poll::Ready(2 * i));
        let spent = allocations() - before;

        assert_eq!(poll_noop(leader.as_mut()), Poll::Ready(2 * i));
        spent
    });
    assert_eq!(g.in_flight(), 0);
    assert_eq!(
        total, 0,
        "a joining call allocates nothing, even when it drives"
    );
}

#[test]
fn do_chan_receivers() {
    let g: KeyedGroup<u64, u64> = KeyedGroup::new();
    let starter = per_iteration("do_chan, solo receiver (starts the flight)", |i| {
        // The work captures `k` (a u64): its box really allocates.
        let rx = g.do_chan(i, |k| async move { k + 3 });
        assert_eq!(block_on(rx), i + 3);
    });
    assert_eq!(starter, 2, "the boxed work and the receiver's boxed wait");

    let mut joiner_allocations = 0;
    let mut flight = |i: u64, count: bool| {
        let leader = g.do_chan(i, |k| async move { k + 4 });
        let before = allocations();
        let joiner = g.do_chan(i, |_| async { unreachable!("joins") });
        let v = block_on(joiner);
        if count {
            joiner_allocations += allocations() - before;
        }
        assert_eq!(v, i + 4);
        assert_eq!(block_on(leader), i + 4);
    };
    for i in 0..WARM_UP {
        flight(i, false);
    }
    for i in WARM_UP..WARM_UP + ITERATIONS {
        flight(i, true);
    }
    println!(
        "do_chan, joining receiver: {joiner_allocations} allocations over {ITERATIONS} flights = {} per receiver",
        joiner_allocations as f64 / ITERATIONS as f64
    );
    assert_eq!(g.in_flight(), 0);
    assert_eq!(
        joiner_allocations, ITERATIONS,
        "a joining receiver keeps one allocation: its boxed wait"
    );
}

/// Runs `body(thread index)` on `threads` threads at once (after a warm-up run of the same
/// body on each) and returns the allocations they made in the measured run, summed.
fn on_threads(threads: usize, body: impl Fn(usize, bool) + Sync) -> u64 {
    let start = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start, body) = (&start, &body);
                scope.spawn(move || {
                    body(t, false);
                    start.wait();
                    let before = allocations();
                    body(t, true);
                    allocations() - before
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Herds on several threads: every thread calls the same key in each round, while the work
/// yields a few times, so that followers join and still hold the finished flight while the next
/// round starts. The flight states are recycled anyway: one allocation per flight (the boxed
/// work), none per joining caller. Besides, each recycled flight's event may grow its list of
/// listeners once or twice the first time a herd of its size listens (a few bytes, kept with
/// the flight): at most `GROWTH` allocations in all.
#[test]
fn herds_on_threads_allocate_once_per_flight() {
    const THREADS: usize = 4;
    const ROUNDS: u64 = 500;
    /// The group's pool holds 16 flights; each event's list grows at most twice for 4 waiters.
    const GROWTH: u64 = 32;
    let g: KeyedGroup<u64, u64> = KeyedGroup::new();
    let measured_flights = std::sync::atomic::AtomicU64::new(0);
    let rounds = std::sync::Barrier::new(THREADS);
    // Callers that have arrived at each round's call: the work waits for all of them (and a
    // little longer, for the last ones to join), so that every round is a herd.
    let arrived: Arc<Vec<_>> = Arc::new(
        (0..2 * ROUNDS)
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect(),
    );
    let allocated = on_threads(THREADS, |_, measured| {
        for round in 0..ROUNDS {
            let key = round + if measured { ROUNDS } else { 0 };
            rounds.wait();
            arrived[key as usize].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let v = block_on(g.call(key, |k| {
                if measured {
                    measured_flights.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let arrived = arrived.clone();
                async move {
                    while arrived[k as usize].load(std::sync::atomic::Ordering::SeqCst) < THREADS {
                        futures_lite::future::yield_now().await;
                    }
                    for _ in 0..20 {
                        futures_lite::future::yield_now().await;
                    }
                    k + 1
                }
            }));
            assert_eq!(v, key + 1);
        }
    });
    let flights = measured_flights.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "herds on {THREADS} threads: {allocated} allocations over {flights} flights of {} calls",
        THREADS as u64 * ROUNDS
    );
    assert_eq!(g.in_flight(), 0);
    assert!(
        flights < THREADS as u64 * ROUNDS,
        "no caller ever joined a flight: the test measured no herd"
    );
    assert!(
        allocated >= flights,
        "every flight allocates its boxed work"
    );
    assert!(
        allocated <= flights + GROWTH,
        "{allocated} allocations for {flights} flights: flight states are not recycled"
    );
}

/// Makes `g`'s pool hold `threads` free flight states: `threads` flights run at once (their
/// work waits until all have started), so that many states exist when they end. The pool only
/// grows when a start finds no free state, so without this a warm-up whose threads happened
/// not to overlap leaves a single state, and the measured run allocates the second one the
/// first time two calls overlap.
fn warm_pool(g: &KeyedGroup<u64, u64>, threads: usize, first_key: u64) {
    let all_started = Arc::new(std::sync::Barrier::new(threads));
    std::thread::scope(|scope| {
        for t in 0..threads as u64 {
            let all_started = all_started.clone();
            scope.spawn(move || {
                let v = block_on(g.call(first_key + t, |k| async move {
                    all_started.wait(); // every flight is live now
                    k
                }));
                assert_eq!(v, first_key + t);
            });
        }
    });
    assert_eq!(g.in_flight(), 0);
}

/// Solo calls of `calls` distinct keys each, on two threads at once, from `base_key` on.
fn solo_calls_on_two_threads(g: &KeyedGroup<u64, u64>, calls: u64, base_key: u64) -> u64 {
    on_threads(2, |t, measured| {
        let base = base_key + (t as u64 * 2 + u64::from(measured)) * calls;
        for key in base..base + calls {
            let v = block_on(g.call(key, |k| async move {
                futures_lite::future::yield_now().await;
                k * 2
            }));
            assert_eq!(v, key * 2);
        }
    })
}

/// Solo calls on two threads at once, each on its own keys: the flight states go back and forth
/// between the threads through the group's pool, and each flight allocates only its work.
///
/// The pool promises reuse, not foresight: it holds as many states as were ever live at once.
/// Two threads that each run one call at a time hold at most one state each (the running
/// flight, or the finished one whose handle the caller is still dropping, already back in the
/// pool), so once the pool has two free states no start ever finds all of them held.
/// `warm_pool` puts the two there; the measure is then exact, however the threads interleave.
#[test]
fn solo_calls_on_two_threads_allocate_once_per_flight() {
    const CALLS: u64 = 2000;
    let g: KeyedGroup<u64, u64> = KeyedGroup::new();
    warm_pool(&g, 2, u64::MAX - 2);
    let allocated = solo_calls_on_two_threads(&g, CALLS, 0);
    println!(
        "solo calls on 2 threads: {allocated} allocations over {} flights",
        2 * CALLS
    );
    assert_eq!(g.in_flight(), 0);
    assert_eq!(
        allocated,
        2 * CALLS,
        "one allocation per flight: the boxed work"
    );
}

/// The same calls on a group whose pool was never warmed by overlapping flights: the contract
/// of the crate docs' `# Costs`, one allocation per flight plus at most one flight state per
/// thread that ever ran a flight at the same time as another. How many of those few the
/// measured run makes depends on how the unmeasured run happened to interleave (0 or 1 here),
/// so the bound is the design's, not an exact count.
#[test]
fn solo_calls_on_two_threads_allocate_at_most_one_state_per_thread() {
    const CALLS: u64 = 2000;
    const THREADS: u64 = 2;
    let g: KeyedGroup<u64, u64> = KeyedGroup::new();
    let allocated = solo_calls_on_two_threads(&g, CALLS, 0);
    println!(
        "solo calls on 2 threads, cold pool: {allocated} allocations over {} flights",
        THREADS * CALLS
    );
    assert_eq!(g.in_flight(), 0);
    assert!(
        (THREADS * CALLS..=THREADS * CALLS + THREADS).contains(&allocated),
        "{allocated} allocations for {} flights: more than one flight state per thread",
        THREADS * CALLS
    );
}

/// A caller that joins a `String`-keyed group with a borrowed key (`call_ref`) makes no owned
/// key and allocates nothing at all; the starter makes the flight's keys from its `&str`.
#[test]
fn joining_borrowed_key_call_allocates_nothing() {
    let g: KeyedGroup<String, u64> = KeyedGroup::new();
    let total = follower_per_flight("joining KeyedGroup::call_ref, String key", |i| {
        let name = format!("customer-{i}");
        let gate = Arc::new(Gate::new());
        let mut leader = Box::pin(g.call_ref(name.as_str(), {
            let gate = gate.clone();
            move |key: String| async move {
                gate.wait().await;
                key.len() as u64 + i
            }
        }));
        assert!(poll_noop(leader.as_mut()).is_pending());

        let before = allocations();
        let mut follower = pin!(g.call_ref(name.as_str(), |_| async { unreachable!("joins") }));
        assert!(poll_noop(follower.as_mut()).is_pending(), "listening");
        let mut spent = allocations() - before;

        gate.open();
        let expected = name.len() as u64 + i;
        assert_eq!(poll_noop(leader.as_mut()), Poll::Ready(expected));
        let before = allocations();
        assert_eq!(poll_noop(follower.as_mut()), Poll::Ready(expected));
        spent += allocations() - before;
        spent
    });
    assert_eq!(g.in_flight(), 0);
    assert_eq!(total, 0, "a joining borrowed-key call allocates nothing");
}
