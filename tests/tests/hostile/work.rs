//! Work that panics (on its first poll, after some polls, in its closure, in its `Drop`), that
//! never completes, that calls into its group, or that keeps its waker.

use super::*;

// ---------------------------------------------------------------------------------------------
// Work.

// Work that panics on its first poll, or after a few polls: the waiter that polled it unwinds
// with the original payload, the others with `Panicked`; the key is freed.
hostile!(work_panics, |_rt| async move {
    let f = Fixture::new();
    for polls in [0, 1, 5] {
        let gate = Gate::shared();
        let leader = f.group.do_chan(f.key(1), {
            let gate = gate.clone();
            move |_| async move {
                gate.wait().await;
                for _ in 0..polls {
                    yield_now().await;
                }
                provoke::<HVal>(&format!("the work panics after {polls} polls"))
            }
        });
        let follower = f.group.do_chan(f.key(1), f.work(2));
        gate.open();
        let first = catch(leader).await;
        let payload = expect_panic(first, "the work panics");
        assert!(
            payload.downcast_ref::<Panicked>().is_none(),
            "the waiter that polled the work gets the original payload"
        );
        expect_follower_panic(catch(follower).await, "the work panics");
        f.assert_usable(1).await;

        // Through `call`, with the panic on the very first poll of a starter.
        let result = catch(f.group.call(f.key(1), move |_| async move {
            for _ in 0..polls {
                yield_now().await;
            }
            provoke::<HVal>(&format!("the work panics after {polls} polls"))
        }))
        .await;
        expect_panic(result, "the work panics");
        f.assert_usable(1).await;
    }

    // A payload that is not a string: the followers' `Panicked` says so.
    let leader = f.group.do_chan(f.key(1), |_| async {
        yield_now().await;
        std::panic::panic_any(NonStringPayload(0))
    });
    let follower = f.group.do_chan(f.key(1), f.work(2));
    let payload = catch(leader).await.expect_err("the work panics");
    assert!(
        payload.is::<NonStringPayload>(),
        "the poller gets the original payload"
    );
    expect_follower_panic(catch(follower).await, "<non-string panic payload>");
    f.assert_usable(1).await;
});

// The closure panics before producing a future: the starter unwinds with its payload, a waiter
// that joined meanwhile with `Panicked`, and the key is free.
hostile!(closure_panics, |_rt| async move {
    let f = Fixture::new();
    let result = catch(f.group.call(f.key(1), |_| -> std::future::Ready<HVal> {
        panic!("{TAG} the closure panics")
    }))
    .await;
    expect_panic(result, "the closure panics");
    f.assert_usable(1).await;

    // `do_chan` runs the closure before it returns; a waiter joins from inside the closure,
    // while the flight is registered but has no work yet.
    let joined: Arc<Mutex<Option<Receiver<HVal>>>> = Arc::default();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let joined = joined.clone();
        let group = f.group.clone();
        let key = f.key(1);
        f.group
            .do_chan(f.key(1), move |_| -> std::future::Ready<HVal> {
                let rx = group.do_chan(key, |_| -> std::future::Ready<HVal> {
                    unreachable!("joins the flight being started")
                });
                *joined.lock().expect("not poisoned") = Some(rx);
                panic!("{TAG} the closure panics")
            })
    }));
    expect_panic(result, "the closure panics");
    let follower = joined.lock().expect("not poisoned").take().expect("joined");
    expect_follower_panic(catch(follower).await, "the closure panics");
    f.assert_usable(1).await;
});

/// A work future whose `Drop` panics, outside any poll.
pub(crate) struct PanicOnDrop {
    pub(crate) ready: bool,
    pub(crate) v: HVal,
}

impl Future for PanicOnDrop {
    type Output = HVal;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<HVal> {
        if self.ready {
            Poll::Ready(self.v.clone())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{TAG} the work's drop panics");
    }
}

// The work's `Drop` panics after it completed, or when its last waiter leaves: the value still
// reaches the waiters, the drop's panic does not escape into the group, and the key is free.
hostile!(work_drop_panics, |_rt| async move {
    let f = Fixture::new();
    let v = f.val(3);
    let got = f
        .group
        .call(f.key(1), move |_| PanicOnDrop { ready: true, v })
        .await;
    assert_eq!(got.v, 3);
    f.assert_usable(1).await;

    let v = f.val(4);
    let mut rx = f
        .group
        .do_chan(f.key(1), move |_| PanicOnDrop { ready: false, v });
    assert!(poll_once(&mut rx).await.is_none());
    drop(rx); // the last waiter leaves: the work is dropped, and its drop panics
    f.assert_usable(1).await;
});

// Work that never completes: the caller's timeout frees the key at once, and the work future is
// dropped.
hostile!(work_never_completes, |_rt| async move {
    let f = Fixture::new();
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let call = f.group.call(f.key(1), move |_| async move {
        let _guard = guard;
        std::future::pending::<HVal>().await
    });
    assert!(give_up(call).await.is_none());
    assert!(
        dropped.is_dropped(),
        "the work is dropped when its last waiter gives up"
    );
    f.assert_usable(1).await;

    // Two receivers of one flight give up one after the other.
    let dropped = DropFlag::default();
    let guard = dropped.guard();
    let first = f.group.do_chan(f.key(1), move |_| async move {
        let _guard = guard;
        std::future::pending::<HVal>().await
    });
    let second = f.group.do_chan(f.key(1), f.work(2));
    assert!(give_up(first).await.is_none());
    assert!(!dropped.is_dropped(), "one waiter is left");
    assert_eq!(f.group.in_flight(), 1);
    assert!(give_up(second).await.is_none());
    dropped.wait().await;
    f.assert_usable(1).await;
});

// The closure calls into the group before it returns its work: it forgets its own flight and
// starts a second one for the same key. Both flights complete with their own values.
hostile!(closure_calls_into_the_group, |_rt| async move {
    let f = Fixture::new();
    let second: Arc<Mutex<Option<Receiver<HVal>>>> = Arc::default();
    let (group, key, slot, v, w) = (
        f.group.clone(),
        f.key(1),
        second.clone(),
        f.val(1),
        f.work(2),
    );
    let first = f.group.do_chan(f.key(1), move |_| {
        assert!(group.forget(&key), "the flight being started is registered");
        *slot.lock().expect("not poisoned") = Some(group.do_chan(key, w));
        std::future::ready(v)
    });
    let second = second
        .lock()
        .expect("not poisoned")
        .take()
        .expect("started");
    assert_eq!(f.group.in_flight(), 1, "only the second flight is joinable");
    assert_eq!((first.await.v, second.await.v), (1, 2));
    f.assert_usable(1).await;
});

/// A work future that calls into its group from its `Drop`.
pub(crate) struct CallsIntoGroupOnDrop {
    pub(crate) group: Arc<HGroup>,
    pub(crate) key: Option<HKey>,
    pub(crate) started: Arc<Mutex<Option<Receiver<HVal>>>>,
    pub(crate) val: Option<HVal>,
}

impl Future for CallsIntoGroupOnDrop {
    type Output = HVal;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<HVal> {
        Poll::Pending
    }
}

impl Drop for CallsIntoGroupOnDrop {
    fn drop(&mut self) {
        // The flight is being abandoned: it is no longer joinable, and a new flight for the same
        // key may start (it waits for this drop to end before its work is polled).
        assert_eq!(self.group.in_flight(), 0);
        let (key, val) = (self.key.take(), self.val.take());
        let rx = self.group.do_chan(key.expect("dropped once"), move |_| {
            std::future::ready(val.expect("dropped once"))
        });
        *self.started.lock().expect("not poisoned") = Some(rx);
    }
}

// The work's `Drop` starts a new flight for its own key while the group abandons it (no lock
// may be held across that drop): nothing deadlocks, and the new flight completes.
hostile!(work_drop_calls_into_the_group, |_rt| async move {
    let f = Fixture::new();
    let started: Arc<Mutex<Option<Receiver<HVal>>>> = Arc::default();
    let work = CallsIntoGroupOnDrop {
        group: f.group.clone(),
        key: Some(f.key(1)),
        started: started.clone(),
        val: Some(f.val(9)),
    };
    let mut rx = f.group.do_chan(f.key(1), move |_| work);
    assert!(poll_once(&mut rx).await.is_none());
    drop(rx); // abandons the flight: the work's drop runs
    let next = started
        .lock()
        .expect("not poisoned")
        .take()
        .expect("started");
    assert_eq!(next.await.v, 9);
    f.assert_usable(1).await;
});

// Work that keeps the waker it was polled with and wakes it long after its flight ended, while
// later flights of the same key run: those flights are not disturbed.
hostile!(stale_wakers, |_rt| async move {
    let f = Fixture::new();
    let wakers: Arc<Mutex<Vec<std::task::Waker>>> = Arc::default();
    for round in 0..20u32 {
        let (stash, v) = (wakers.clone(), f.val(round));
        let mut once = false;
        let got = f
            .group
            .call(f.key(1), move |_| {
                futures_lite::future::poll_fn(move |cx| {
                    stash.lock().expect("not poisoned").push(cx.waker().clone());
                    if once {
                        Poll::Ready(v.clone())
                    } else {
                        once = true;
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                })
            })
            .await;
        assert_eq!(got.v, round);
        // Wake every stale waker, some of them while the next flight is about to start.
        for waker in wakers.lock().expect("not poisoned").iter() {
            waker.wake_by_ref();
        }
    }
    wakers.lock().expect("not poisoned").clear();
    f.assert_usable(1).await;
});
