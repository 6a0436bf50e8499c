//! Panics propagate and never poison (semantics 4 and 9 of the core's crate docs): a panic in the work reaches
//! every waiter (the poller with the original payload, the others with `Panicked`), the key is
//! freed; panics in the closure, in the work's drop, in `V::clone`, `K::clone` and `K::eq` leave
//! the group usable.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::future::poll_once;
use single_flight::{KeyedGroup, Panicked};
use single_flight_tests::*;

type Group = Arc<KeyedGroup<&'static str, u32>>;

/// Awaits every handle and counts (original payloads, `Panicked` payloads) with `message`.
async fn tally<T: std::fmt::Debug>(handles: Vec<JoinHandle<T>>, message: &str) -> (usize, usize) {
    let (mut original, mut followers) = (0, 0);
    for h in handles {
        let payload = h
            .await
            .expect_err("every waiter of a panicked flight panics");
        match panic_kind(&*payload) {
            PanicKind::Original(m) if m == message => original += 1,
            PanicKind::Follower(m) if m == message => followers += 1,
            other => panic!("unexpected payload {other:?}"),
        }
    }
    (original, followers)
}

// Receivers awaited on tasks: one of them polled the work when it panicked and gets the
// original payload, the others `Panicked`.
all_runtimes!(panic_reaches_every_receiver, |rt| async move {
    const N: usize = 4;
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate) = (Counter::shared(), Gate::shared());
    let work = {
        let (runs, gate) = (runs.clone(), gate.clone());
        move |_| {
            runs.hit();
            async move {
                gate.wait().await;
                provoke_panic::<u32>("receivers")
            }
        }
    };
    let mut handles = vec![rt.spawn(g.do_chan("key", work))];
    for _ in 1..N {
        handles.push(rt.spawn(g.do_chan("key", |_| async { unreachable!("joins") })));
    }
    gate.open();
    assert_eq!(
        tally(handles, &provoked_message("receivers")).await,
        (1, N - 1)
    );
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("key", |_| async { 5 }).await, 5);
});

// The caller that started the flight left; the work panics while a follower polls it: that
// follower gets the original payload, the others `Panicked`.
all_runtimes!(panic_after_driver_left, |rt| async move {
    const FOLLOWERS: usize = 3;
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate, joined) = (Counter::shared(), Gate::shared(), Latch::shared());
    let work = {
        let (runs, gate) = (runs.clone(), gate.clone());
        move |_| {
            runs.hit();
            async move {
                gate.wait().await;
                provoke_panic::<u32>("after hand-off")
            }
        }
    };
    let mut leader = Box::pin(g.call("key", work));
    assert!(poll_once(leader.as_mut()).await.is_none());
    let followers: Vec<_> = (0..FOLLOWERS)
        .map(|_| {
            let (g, joined) = (g.clone(), joined.clone());
            rt.spawn(async move {
                arrive_then(&joined, g.call("key", |_| async { unreachable!("joins") })).await
            })
        })
        .collect();
    joined.wait_for(FOLLOWERS).await;
    drop(leader);
    gate.open();
    assert_eq!(
        tally(followers, &provoked_message("after hand-off")).await,
        (1, FOLLOWERS - 1)
    );
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

// The closure that makes the work panics: the caller unwinds with its payload, the key is free.
all_runtimes!(panic_in_closure, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let payload = catch(g.call("key", |_| {
        provoke_panic::<std::future::Ready<u32>>("closure of call")
    }))
    .await
    .expect_err("the closure's panic reaches the caller");
    assert_eq!(
        panic_kind(&*payload),
        PanicKind::Original(provoked_message("closure of call"))
    );
    assert_eq!(g.in_flight(), 0);

    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        g.do_chan("key", |_| {
            provoke_panic::<std::future::Ready<u32>>("closure of do_chan")
        })
    }))
    .expect_err("the closure's panic reaches do_chan's caller");
    assert_eq!(
        panic_kind(&*payload),
        PanicKind::Original(provoked_message("closure of do_chan"))
    );
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("key", |_| async { 3 }).await, 3);
    assert_eq!(g.in_flight(), 0);
});

// `Panicked` carries the message of `&str`, `String` and non-string payloads and prints it.
all_runtimes!(panicked_payload, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let runs = Counter::shared();
    for (case, expected) in [
        (0, "static str payload"),
        (1, "formatted payload 42"),
        (2, "<non-string panic payload>"),
    ] {
        let gate = Gate::shared();
        let work = {
            let (gate, runs) = (gate.clone(), runs.clone());
            move |_| async move {
                runs.hit();
                gate.wait().await;
                match case {
                    0 => std::panic::panic_any::<&'static str>("static str payload"),
                    1 => std::panic::panic_any(format!("formatted payload {}", 42)),
                    _ => std::panic::panic_any(NonStringPayload(7)),
                }
            }
        };
        let a = rt.spawn(g.do_chan("key", work));
        let b = rt.spawn(g.do_chan("key", |_| async { unreachable!("joins") }));
        gate.open();
        let a = a.await.expect_err("every waiter panics");
        let b = b.await.expect_err("every waiter panics");
        // Whichever waiter polled the work has the original payload, the other a `Panicked`.
        let (original, followed) = if a.is::<Panicked>() { (b, a) } else { (a, b) };
        match case {
            0 => assert_eq!(original.downcast_ref::<&str>(), Some(&expected)),
            1 => assert_eq!(
                original.downcast_ref::<String>().map(String::as_str),
                Some(expected)
            ),
            _ => assert_eq!(
                original.downcast_ref::<NonStringPayload>(),
                Some(&NonStringPayload(7))
            ),
        }
        let followed = followed
            .downcast::<Panicked>()
            .expect("a follower unwinds with Panicked");
        assert_eq!(followed.message(), expected);
        assert!(followed.to_string().contains(expected), "{followed}");
        assert!(format!("{followed:?}").contains(expected), "{followed:?}");
        assert_eq!(g.in_flight(), 0);
    }
    assert_eq!(runs.get(), 3, "one execution per case");
});

/// Panics when dropped.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        provoke_panic::<()>(self.0);
    }
}

/// A work future whose drop panics (after it returned its value, or when abandoned).
struct BombFuture {
    inner: Pin<Box<dyn Future<Output = u32> + Send>>,
    _bomb: PanicOnDrop,
}

impl Future for BombFuture {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.inner.as_mut().poll(cx)
    }
}

// The work's drop panics after it returned its value: the waiters get the value anyway.
all_runtimes!(panic_in_work_drop_after_value, |rt| async move {
    let g: Group = Arc::new(KeyedGroup::new());
    let (runs, gate) = (Counter::shared(), Gate::shared());
    let work = {
        let (runs, gate) = (runs.clone(), gate.clone());
        move |_| {
            runs.hit();
            BombFuture {
                inner: Box::pin(async move {
                    gate.wait().await;
                    9
                }),
                _bomb: PanicOnDrop("drop after value"),
            }
        }
    };
    let a = rt.spawn(g.do_chan("key", work));
    let b = rt.spawn(g.do_chan("key", |_| async { unreachable!("joins") }));
    gate.open();
    assert_eq!((a.value().await, b.value().await), (9, 9));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("key", |_| async { 1 }).await, 1);
});

// The abandoned work's drop panics: dropping the last waiter does not panic, the key is free.
all_runtimes!(panic_in_abandoned_work_drop, |_rt| async move {
    let g: KeyedGroup<&str, u32> = KeyedGroup::new();
    let runs = Counter::new();
    let mut rx = g.do_chan("key", |_| {
        runs.hit();
        BombFuture {
            inner: Box::pin(std::future::pending()),
            _bomb: PanicOnDrop("abandoned drop"),
        }
    });
    assert!(poll_noop(Pin::new(&mut rx)).is_pending());
    drop(rx);
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call("key", |_| async { 2 }).await, 2);
    assert_eq!(g.in_flight(), 0);
});

/// A value whose clone panics while `armed` says so (only the first clone after arming).
#[derive(Debug)]
struct FragileValue {
    value: u32,
    clones: Arc<Counter>,
}

impl Clone for FragileValue {
    fn clone(&self) -> Self {
        if self.clones.hit() == 1 {
            provoke_panic::<()>("V::clone");
        }
        Self {
            value: self.value,
            clones: self.clones.clone(),
        }
    }
}

// `V::clone` panics for one waiter: that waiter unwinds with the clone's panic, the others get
// the value, nothing is left in flight.
//
// Core bug (hangs): `Flight::finish` takes the finisher's own share (`take_value`, which clones)
// before it notifies the other waiters (`notify_all`) and wakes the driver; when that clone
// panics, the finisher unwinds and the listening waiters are never woken.
all_runtimes!(panic_in_value_clone, |rt| async move {
    const N: usize = 3;
    let g: Arc<KeyedGroup<&str, FragileValue>> = Arc::new(KeyedGroup::new());
    let (runs, joined, clones) = (Counter::shared(), Latch::shared(), Counter::shared());
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (g, joined, runs, clones) =
                (g.clone(), joined.clone(), runs.clone(), clones.clone());
            rt.spawn(async move {
                let work = {
                    let joined = joined.clone();
                    move |_| {
                        runs.hit();
                        async move {
                            joined.wait_for(N).await;
                            FragileValue { value: 11, clones }
                        }
                    }
                };
                arrive_then(&joined, g.call("key", work)).await.value
            })
        })
        .collect();
    let (mut values, mut panics) = (0, 0);
    for h in handles {
        match h.await {
            Ok(v) => {
                assert_eq!(v, 11);
                values += 1;
            }
            Err(payload) => {
                assert_eq!(
                    panic_kind(&*payload),
                    PanicKind::Original(provoked_message("V::clone"))
                );
                panics += 1;
            }
        }
    }
    assert_eq!((values, panics), (N - 1, 1));
    assert_eq!(runs.get(), 1);
    assert_eq!(g.in_flight(), 0);
});

/// A key whose `Clone` or `Eq` can be made to panic; hashed by `id` only.
#[derive(Debug)]
struct TrickyKey {
    id: u32,
    clone_panics: bool,
    eq_panics: bool,
}

impl TrickyKey {
    fn new(id: u32) -> Self {
        Self {
            id,
            clone_panics: false,
            eq_panics: false,
        }
    }
}

impl Clone for TrickyKey {
    fn clone(&self) -> Self {
        if self.clone_panics {
            provoke_panic::<()>("K::clone");
        }
        Self::new(self.id)
    }
}

impl PartialEq for TrickyKey {
    fn eq(&self, other: &Self) -> bool {
        if self.eq_panics || other.eq_panics {
            provoke_panic::<()>("K::eq");
        }
        self.id == other.id
    }
}

impl Eq for TrickyKey {}

impl Hash for TrickyKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

// `K::clone` and `K::eq` panic under the group's lock: the caller unwinds, the group stays
// usable and the running flight is unharmed.
all_runtimes!(panic_in_key_clone_or_eq, |_rt| async move {
    let g: KeyedGroup<TrickyKey, u32> = KeyedGroup::new();
    let payload = catch(g.call(
        TrickyKey {
            clone_panics: true,
            ..TrickyKey::new(1)
        },
        |_| async { 1 },
    ))
    .await
    .expect_err("K::clone panics");
    assert_eq!(
        panic_kind(&*payload),
        PanicKind::Original(provoked_message("K::clone"))
    );
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call(TrickyKey::new(1), |k| async move { k.id }).await, 1);

    let runs = Counter::new();
    let running = g.do_chan(TrickyKey::new(2), |k| {
        runs.hit();
        async move { k.id * 10 }
    });
    let payload = catch(g.call(
        TrickyKey {
            eq_panics: true,
            ..TrickyKey::new(2)
        },
        |_| async { 0 },
    ))
    .await
    .expect_err("K::eq panics");
    assert_eq!(
        panic_kind(&*payload),
        PanicKind::Original(provoked_message("K::eq"))
    );
    assert_eq!(g.in_flight(), 1, "the running flight is unharmed");
    assert_eq!(running.await, 20);
    assert_eq!(runs.get(), 1, "the caller whose K::eq panicked ran nothing");
    assert_eq!(g.in_flight(), 0);
    assert_eq!(g.call(TrickyKey::new(2), |k| async move { k.id }).await, 2);
    assert_eq!(g.in_flight(), 0);
});
