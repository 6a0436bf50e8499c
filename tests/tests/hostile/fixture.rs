//! The hostile keys and values: traps armed per operation (`Hash`, `Eq`, `Clone`, `Drop`,
//! `V::clone`), and the fixture that checks the group still works after each hostile event.

use super::*;

// ---------------------------------------------------------------------------------------------
// Hostile keys and values.

/// Armed traps: each counts down the calls of one operation and panics on the call that brings
/// it to zero (`0`: disarmed).
#[derive(Debug, Default)]
pub(crate) struct Traps {
    pub(crate) hash: AtomicU32,
    pub(crate) eq: AtomicU32,
    pub(crate) clone_key: AtomicU32,
    pub(crate) clone_value: AtomicU32,
    pub(crate) drop_key: AtomicU32,
}

impl Traps {
    pub(crate) fn arm(trap: &AtomicU32, nth_call: u32) {
        trap.store(nth_call, SeqCst);
    }

    pub(crate) fn disarm(&self) {
        for trap in [
            &self.hash,
            &self.eq,
            &self.clone_key,
            &self.clone_value,
            &self.drop_key,
        ] {
            trap.store(0, SeqCst);
        }
    }

    pub(crate) fn spring(trap: &AtomicU32, what: &str) {
        let sprung = trap
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok_and(|before| before == 1);
        if sprung {
            panic!("{TAG} {what} panics");
        }
    }
}

/// A key whose `Hash`, `Eq` and `Clone` spring its traps.
#[derive(Debug)]
pub(crate) struct HKey {
    pub(crate) id: u32,
    pub(crate) traps: Arc<Traps>,
}

impl Hash for HKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Traps::spring(&self.traps.hash, "K::hash");
        self.id.hash(state);
    }
}

impl PartialEq for HKey {
    fn eq(&self, other: &Self) -> bool {
        Traps::spring(&self.traps.eq, "K::eq");
        self.id == other.id
    }
}

impl Eq for HKey {}

impl Drop for HKey {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            Traps::spring(&self.traps.drop_key, "K::drop");
        }
    }
}

impl Clone for HKey {
    fn clone(&self) -> Self {
        Traps::spring(&self.traps.clone_key, "K::clone");
        Self {
            id: self.id,
            traps: self.traps.clone(),
        }
    }
}

/// A value whose `Clone` springs its trap.
#[derive(Debug)]
pub(crate) struct HVal {
    pub(crate) v: u32,
    pub(crate) traps: Arc<Traps>,
}

impl Clone for HVal {
    fn clone(&self) -> Self {
        Traps::spring(&self.traps.clone_value, "V::clone");
        Self {
            v: self.v,
            traps: self.traps.clone(),
        }
    }
}

pub(crate) type HGroup = KeyedGroup<HKey, HVal>;

/// A group of hostile keys and values, with the traps they share.
pub(crate) struct Fixture {
    pub(crate) group: Arc<HGroup>,
    pub(crate) traps: Arc<Traps>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self {
            group: Arc::new(KeyedGroup::new()),
            traps: Arc::new(Traps::default()),
        }
    }

    pub(crate) fn key(&self, id: u32) -> HKey {
        HKey {
            id,
            traps: self.traps.clone(),
        }
    }

    pub(crate) fn val(&self, v: u32) -> HVal {
        HVal {
            v,
            traps: self.traps.clone(),
        }
    }

    /// Work that returns `v` at once.
    pub(crate) fn work(&self, v: u32) -> impl FnOnce(HKey) -> std::future::Ready<HVal> {
        let val = self.val(v);
        move |_| std::future::ready(val)
    }

    /// Work that returns `v` once `gate` opens.
    pub(crate) fn gated(
        &self,
        gate: &Arc<Gate>,
        v: u32,
    ) -> impl FnOnce(HKey) -> Pin<Box<dyn Future<Output = HVal> + Send>> {
        let (gate, val) = (gate.clone(), self.val(v));
        move |_| {
            Box::pin(async move {
                gate.wait().await;
                val
            })
        }
    }

    /// The group is not wedged: nothing is in flight, and calls for `id` and for another key
    /// start flights of their own and return their values.
    pub(crate) async fn assert_usable(&self, id: u32) {
        self.traps.disarm();
        assert_eq!(self.group.in_flight(), 0, "nothing may be left in flight");
        for (key, v) in [(id, 1000 + id), (id + 1, 2000 + id)] {
            let ran = Arc::new(AtomicBool::new(false));
            let flag = ran.clone();
            let val = self.val(v);
            let got = self
                .group
                .call(self.key(key), move |k| {
                    flag.store(true, SeqCst);
                    async move {
                        yield_now().await;
                        assert_eq!(k.id, key);
                        val
                    }
                })
                .await;
            assert_eq!(got.v, v, "key {key} must return its own value");
            assert!(ran.load(SeqCst), "key {key} must start a flight of its own");
            let rx = self.group.do_chan(self.key(key), self.work(v + 1));
            assert_eq!(rx.await.v, v + 1);
        }
        assert_eq!(self.group.in_flight(), 0, "nothing may be left in flight");
    }
}
