//! What the run records: keys, values and work futures that count themselves, the logs of
//! executions, forgets and receipts, and the counters.

use super::*;

// ---------------------------------------------------------------------------------------------
// What the run records.

/// Counts live instances of the keys, values and work futures the run creates.
pub(crate) struct Live(pub(crate) Arc<World>, pub(crate) Kind);

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Key,
    Value,
}

impl Live {
    pub(crate) fn new(world: &Arc<World>, kind: Kind) -> Self {
        world.live(kind).fetch_add(1, SeqCst);
        Self(world.clone(), kind)
    }
}

impl Clone for Live {
    fn clone(&self) -> Self {
        Live::new(&self.0, self.1)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live(self.1).fetch_sub(1, SeqCst);
    }
}

/// The key: a small number, plus a live-instance counter (which hashing and equality ignore).
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) k: u8,
    pub(crate) _live: Live,
}

impl Key {
    pub(crate) fn new(world: &Arc<World>, k: u8) -> Self {
        Self {
            k,
            _live: Live::new(world, Kind::Key),
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.k == other.k
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.k.hash(state);
    }
}

/// The value of an execution: its key and its id.
#[derive(Clone)]
pub(crate) struct Val {
    pub(crate) k: u8,
    pub(crate) exec: u64,
    pub(crate) _live: Live,
}

pub(crate) type Group = KeyedGroup<Key, Val>;

/// How an execution's work future ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Dropped before it completed (every waiter left, or the runtime dropped a detached task).
    Abandoned,
    Value,
    Panicked,
}

/// One execution, as logged when its work future is dropped. Times are ticks of `World::clock`.
#[derive(Clone, Debug)]
pub(crate) struct ExecLog {
    pub(crate) k: u8,
    pub(crate) exec: u64,
    /// Read by the starter before it registered (the flight was created after this).
    pub(crate) registered_after: u64,
    /// Read in the closure (the flight was created before this).
    pub(crate) created_before: u64,
    /// Read at the first poll of the work (`None`: never polled).
    pub(crate) first_poll: Option<u64>,
    /// Read when the work future was dropped.
    pub(crate) dropped: u64,
    pub(crate) detached: bool,
    pub(crate) end: End,
}

/// One `forget`: clock before the call, after it, and what it returned.
#[derive(Clone, Debug)]
pub(crate) struct ForgetLog {
    pub(crate) k: u8,
    pub(crate) before: u64,
    pub(crate) after: u64,
    pub(crate) forgot: bool,
}

/// One waiter's outcome of an execution (a value or a panic).
#[derive(Clone, Debug)]
pub(crate) struct Receipt {
    pub(crate) exec: u64,
    /// Read before the caller registered.
    pub(crate) started: u64,
    /// Read after the outcome came out.
    pub(crate) got: u64,
}

/// A run's counters (see [`Counts`] for a copy).
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) ops: AtomicUsize,
    pub(crate) callers: AtomicUsize,
    pub(crate) forgets: AtomicUsize,
    pub(crate) forgot: AtomicUsize,
    pub(crate) execs: AtomicUsize,
    pub(crate) detached_execs: AtomicUsize,
    pub(crate) values: AtomicUsize,
    pub(crate) panics: AtomicUsize,
    pub(crate) dropped: AtomicUsize,
    pub(crate) timed_out: AtomicUsize,
    pub(crate) stalled: AtomicUsize,
    pub(crate) tasks: AtomicUsize,
    pub(crate) overlaps_explained: AtomicUsize,
}

/// A copy of a run's counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) ops: usize,
    pub(crate) callers: usize,
    pub(crate) forgets: usize,
    pub(crate) forgot: usize,
    pub(crate) execs: usize,
    pub(crate) detached_execs: usize,
    pub(crate) values: usize,
    pub(crate) panics: usize,
    pub(crate) dropped: usize,
    pub(crate) timed_out: usize,
    pub(crate) stalled: usize,
    pub(crate) tasks: usize,
    pub(crate) overlaps_explained: usize,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> Counts {
        let get = |a: &AtomicUsize| a.load(SeqCst);
        Counts {
            ops: get(&self.ops),
            callers: get(&self.callers),
            forgets: get(&self.forgets),
            forgot: get(&self.forgot),
            execs: get(&self.execs),
            detached_execs: get(&self.detached_execs),
            values: get(&self.values),
            panics: get(&self.panics),
            dropped: get(&self.dropped),
            timed_out: get(&self.timed_out),
            stalled: get(&self.stalled),
            tasks: get(&self.tasks),
            overlaps_explained: get(&self.overlaps_explained),
        }
    }
}

pub(crate) fn summary(c: &Counts) -> String {
    format!(
        "{} ops: {} callers ({} values, {} panics, {} dropped, {} timed out, {} stalled), \
         {} forgets ({} forgot a flight); {} executions ({} detached); {} spawned tasks; \
         {} overlaps of executions explained by a forget",
        c.ops,
        c.callers,
        c.values,
        c.panics,
        c.dropped,
        c.timed_out,
        c.stalled,
        c.forgets,
        c.forgot,
        c.execs,
        c.detached_execs,
        c.tasks,
        c.overlaps_explained,
    )
}

/// Everything one run shares between its lanes, tasks and work futures.
pub(crate) struct World {
    pub(crate) rt: Rt,
    pub(crate) seed: u64,
    pub(crate) clock: AtomicU64,
    pub(crate) next_exec: AtomicU64,
    pub(crate) keys_live: AtomicIsize,
    pub(crate) values_live: AtomicIsize,
    pub(crate) works_live: AtomicIsize,
    pub(crate) tasks_live: AtomicUsize,
    pub(crate) tasks_done: Event,
    pub(crate) stats: Stats,
    pub(crate) execs: Mutex<Vec<ExecLog>>,
    pub(crate) forgets: Mutex<Vec<ForgetLog>>,
    pub(crate) receipts: Mutex<Vec<Receipt>>,
    pub(crate) violations: Mutex<Vec<String>>,
    /// What each lane is doing now, for the watchdog's report.
    pub(crate) doing: Mutex<Vec<String>>,
    /// Whether a lane holds a stalled caller of each key (at most one per key).
    pub(crate) stalled_keys: [AtomicBool; KEYS as usize],
}

impl World {
    pub(crate) fn new(rt: Rt, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            rt,
            seed,
            clock: AtomicU64::new(1),
            next_exec: AtomicU64::new(1),
            keys_live: AtomicIsize::new(0),
            values_live: AtomicIsize::new(0),
            works_live: AtomicIsize::new(0),
            tasks_live: AtomicUsize::new(0),
            tasks_done: Event::new(),
            stats: Stats::default(),
            execs: Mutex::new(Vec::new()),
            forgets: Mutex::new(Vec::new()),
            receipts: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            doing: Mutex::new(vec![String::new(); LANES]),
            stalled_keys: std::array::from_fn(|_| AtomicBool::new(false)),
        })
    }

    pub(crate) fn doing(&self, lane: usize, what: impl FnOnce() -> String) {
        lock(&self.doing)[lane] = what();
    }

    pub(crate) fn doing_also(&self, lane: usize, what: impl FnOnce() -> String) {
        lock(&self.doing)[lane].push_str(&what());
    }

    pub(crate) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, SeqCst)
    }

    pub(crate) fn live(&self, kind: Kind) -> &AtomicIsize {
        match kind {
            Kind::Key => &self.keys_live,
            Kind::Value => &self.values_live,
        }
    }

    pub(crate) fn violation(&self, what: String) {
        let mut violations = lock(&self.violations);
        if violations.len() < 1000 {
            violations.push(what);
        }
    }

    pub(crate) fn summary(&self) -> String {
        summary(&self.stats.snapshot())
    }

    pub(crate) async fn all_tasks_done(&self) {
        loop {
            if self.tasks_live.load(SeqCst) == 0 {
                return;
            }
            listener!(self.tasks_done => listener);
            if self.tasks_live.load(SeqCst) == 0 {
                return;
            }
            listener.await;
        }
    }
}
