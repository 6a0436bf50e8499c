//! A runtime the workspace has no adapter for plugs in by implementing
//! `single_flight::runtime::Runtime`: here `futures`' single-threaded `LocalPool` with
//! `async-io`'s timers, in the twenty lines below, gets the timeouts (semantic 7) and the
//! spawned flights (semantic 6) of every group, `Send` and local.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::executor::{LocalPool, LocalSpawner};
use futures::task::{LocalSpawnExt, SpawnExt};
use single_flight::runtime::Runtime;
use single_flight::{local, Group, KeyedGroup};
use single_flight_tests::*;

// --- The whole adapter. ---
thread_local! {
    static SPAWNER: RefCell<Option<LocalSpawner>> = const { RefCell::new(None) };
}

struct Pool;

impl Runtime for Pool {
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        let timer = async_io::Timer::at(deadline);
        async move {
            timer.await;
        }
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(task: F) {
        SPAWNER.with(|s| {
            s.borrow()
                .as_ref()
                .expect("in the pool")
                .spawn(task)
                .unwrap()
        });
    }

    fn spawn_local<F: Future<Output = ()> + 'static>(task: F) {
        SPAWNER.with(|s| {
            s.borrow()
                .as_ref()
                .expect("in the pool")
                .spawn_local(task)
                .unwrap()
        });
    }
}
// --- End of the adapter. ---

/// Runs `body` on a fresh pool whose spawner `Pool` uses, under the harness's hang bound.
fn on_pool<F: Future<Output = ()>>(name: &str, body: impl FnOnce() -> F) {
    run_bounded(name, || {
        let mut pool = LocalPool::new();
        SPAWNER.with(|s| *s.borrow_mut() = Some(pool.spawner()));
        pool.run_until(within(HANG_BOUND, body()));
        SPAWNER.with(|s| *s.borrow_mut() = None);
    });
}

/// The time a timeout of these tests is given when it is meant to expire.
const SHORT: Duration = Duration::from_millis(5);

// Semantic 7: a caller that times out gets `Elapsed`; the flight goes on for the others and
// runs once.
#[test]
fn timeout_bounds_one_caller_only() {
    on_pool("timeout_bounds_one_caller_only", || async {
        let g: KeyedGroup<&str, u32> = KeyedGroup::new();
        let (gate, runs) = (Gate::shared(), Counter::shared());
        let work = {
            let (gate, runs) = (gate.clone(), runs.clone());
            move |_| {
                runs.hit();
                async move {
                    gate.wait().await;
                    1
                }
            }
        };
        let mut patient = Box::pin(g.call("k", work));
        assert!(futures_lite::future::poll_once(patient.as_mut())
            .await
            .is_none());
        let hurried = Pool::on(&g).call_timeout("k", SHORT, |_| async { unreachable!("joins") });
        let elapsed = hurried.await.expect_err("times out");
        assert_eq!(elapsed.waited(), SHORT);
        gate.open();
        assert_eq!(patient.await, 1);
        assert_eq!((runs.get(), g.in_flight()), (1, 0));
        // A value ready at once wins.
        assert_eq!(
            Pool::on(&g)
                .call_deadline("k", Instant::now(), |_| async { 2 })
                .await,
            Ok(2)
        );
    });
}

// Semantic 6: a spawned flight runs to its end on the pool although every receiver left, and
// a caller arriving meanwhile joins it.
#[test]
fn spawned_flight_runs_to_its_end() {
    on_pool("spawned_flight_runs_to_its_end", || async {
        let g: Group<u32> = Group::new();
        let (gate, finished) = (Gate::shared(), DropFlag::new());
        let work = {
            let (gate, guard) = (gate.clone(), finished.guard());
            move || async move {
                let _guard = guard;
                gate.wait().await;
                3
            }
        };
        drop(Pool::on(&g).do_chan_spawned(work));
        assert_eq!(g.in_flight(), 1);
        let joined = Pool::on(&g).call_timeout(SHORT, || async { unreachable!("joins") });
        assert!(joined.await.is_err());
        let rx = g.do_chan(|| async { unreachable!("joins") });
        gate.open();
        assert_eq!(Pool::on(rx).recv_timeout(HANG_BOUND).await, Ok(3));
        assert!(finished.is_dropped());
        assert_eq!((g.in_flight(), g.stats().started), (0, 1));
    });
}

// The same for a local group, with `!Send` work: `spawn_local` on the pool.
#[test]
fn local_group_on_the_pool() {
    on_pool("local_group_on_the_pool", || async {
        let g: local::KeyedGroup<u8, u32> = local::KeyedGroup::new();
        let (gate, runs) = (Rc::new(Gate::new()), Rc::new(std::cell::Cell::new(0)));
        let work = {
            let (gate, runs) = (gate.clone(), runs.clone());
            move |k: u8| {
                runs.set(runs.get() + 1);
                async move {
                    gate.wait().await;
                    u32::from(k) * 10
                }
            }
        };
        drop(Pool::on(&g).do_chan_spawned(4, work));
        let late = Pool::on(&g).call_timeout(4, SHORT, |_| async { unreachable!("joins") });
        assert!(late.await.is_err());
        let rx = g.do_chan(4, |_| async { unreachable!("joins") });
        gate.open();
        assert_eq!(Pool::on(rx).recv_timeout(HANG_BOUND).await, Ok(40));
        assert_eq!((runs.get(), g.in_flight()), (1, 0));
    });
}
