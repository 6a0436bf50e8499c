//! `Receiver` (returned by `do_chan`): registered at once, owned (`Send + Unpin + 'static`),
//! droppable at any point (before its first poll, after completion), and it panics clearly when
//! polled after it returned its value. Nothing leaks: the value's last clone is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use futures_lite::FutureExt;
use single_flight::{KeyedGroup, Receiver};
use single_flight_tests::*;

type Group = Arc<KeyedGroup<&'static str, u32>>;

#[test]
fn receiver_is_owned_send_unpin() {
    fn owned<T: Send + Unpin + 'static>() {}
    owned::<Receiver<u32>>();
    owned::<single_flight::WithRole<u32>>();
}

// The only receiver dropped before its first poll: the work (made by the closure already) is
// dropped unpolled, the key is free, the next call starts a fresh flight.
all_runtimes!(dropped_before_first_poll, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let (runs, polls) = (Counter::shared(), Counter::shared());
    let dropped = DropFlag::new();
    let rx = g.do_chan("key", {
        let (runs, polls, guard) = (runs.clone(), polls.clone(), dropped.guard());
        move |_| {
            runs.hit();
            async move {
                let _guard = guard;
                polls.hit();
                1
            }
        }
    });
    assert_eq!((runs.get(), g.in_flight()), (1, 1));
    drop(rx);
    assert!(dropped.is_dropped());
    assert_eq!(polls.get(), 0, "the work was never polled");
    assert_eq!(g.in_flight(), 0);
    let v = g
        .call("key", |_| {
            runs.hit();
            async { 2 }
        })
        .await;
    assert_eq!(v, 2);
    assert_eq!(runs.get(), 2);
    assert_eq!(g.in_flight(), 0);
});

// One of two receivers dropped before its first poll: the other still gets the value.
all_runtimes!(one_of_two_dropped_before_first_poll, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    let first = g.do_chan("key", {
        let runs = runs.clone();
        move |_| {
            runs.hit();
            async { 3 }
        }
    });
    let second = g.do_chan("key", |_| async { unreachable!("joins") });
    drop(first);
    assert_eq!(g.in_flight(), 1);
    assert_eq!(rt.spawn(second).value().await, 3);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// A receiver dropped after it returned its value, and one dropped after its flight ended
// without ever being polled: no panic, nothing left, the value's clones are all dropped.
all_runtimes!(dropped_after_completion, |_rt| async move {
    let g: KeyedGroup<&str, Arc<()>> = KeyedGroup::new();
    let (value, runs) = (Arc::new(()), Counter::new());
    let mut taken = g.do_chan("key", |_| {
        runs.hit();
        let value = value.clone();
        async move { value }
    });
    let never_polled = g.do_chan("key", |_| async { unreachable!("joins") });
    let got = (&mut taken).await;
    assert!(Arc::ptr_eq(&got, &value));
    assert_eq!(g.in_flight(), 0);
    drop(taken);
    drop(never_polled); // its share of the value is dropped with it
    drop(got);
    assert_eq!(runs.get(), 1);
    assert_eq!(
        Arc::strong_count(&value),
        1,
        "no clone of the value is left"
    );
});

// Polling a receiver again after it returned its value panics with a clear message.
all_runtimes!(polled_after_completion_panics, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let runs = Counter::new();
    let mut rx = g.do_chan("key", |_| {
        runs.hit();
        async { 5 }
    });
    assert_eq!((&mut rx).await, 5);
    assert_eq!(runs.get(), 1);
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll_noop(Pin::new(&mut rx))
    }))
    .expect_err("polling a finished receiver panics");
    let message = panic_message(&*payload).expect("a message");
    assert!(
        message.contains("polled after it returned its value"),
        "{message:?}"
    );
    assert!(format!("{rx:?}").contains("Receiver"));
    assert_eq!(g.in_flight(), 0);
});

// A receiver moved to another task, and one used in a select (`or`) that a gate wins: the
// abandoned receiver leaves, the others go on with the same work.
all_runtimes!(receiver_in_select, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, work_gate, give_up) = (Counter::shared(), Gate::shared(), Gate::shared());
    let rx = g.do_chan("key", {
        let (runs, work_gate) = (runs.clone(), work_gate.clone());
        move |_| {
            runs.hit();
            async move {
                work_gate.wait().await;
                7
            }
        }
    });
    let impatient = {
        let (rx2, give_up) = (
            g.do_chan("key", |_| async { unreachable!("joins") }),
            give_up.clone(),
        );
        rt.spawn(async move {
            async { Some(rx2.await) }
                .or(async {
                    give_up.wait().await;
                    None
                })
                .await
        })
    };
    let patient = rt.spawn(rx);
    give_up.open();
    assert_eq!(impatient.value().await, None);
    assert_eq!(g.in_flight(), 1);
    work_gate.open();
    assert_eq!(patient.value().await, 7);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// A receiver polled by hand until its work yields, then handed to a task: the work continues.
all_runtimes!(receiver_moved_between_tasks, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let (progress, runs) = (Counter::shared(), Counter::new());
    let mut rx = g.do_chan("key", |_| {
        runs.hit();
        let progress = progress.clone();
        async move {
            for _ in 0..10 {
                progress.hit();
                futures_lite::future::yield_now().await;
            }
            10
        }
    });
    assert_eq!(poll_noop(Pin::new(&mut rx)), Poll::Pending);
    assert_eq!(progress.get(), 1);
    assert_eq!(rt.spawn(rx).value().await, 10);
    assert_eq!(progress.get(), 10, "the same work went on");
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});
