//! Seeded chaos: thousands of tasks hammer a `KeyedGroup` over a small key space on every
//! runtime, mixing joins, receivers, cancellations at random poll counts, timeouts, stalled
//! callers, panicking work, forgets and detached flights; afterwards the run is checked against
//! the contract (DESIGN.md, semantics 1-9).
//!
//! # Reproducing a failure
//!
//! Every run prints its seed. The seed fixes every decision the test makes (which operation, on
//! which key, how the work behaves, when a caller is dropped, how long a timeout is); it does not
//! fix how the runtime interleaves the tasks, so a failure that hinges on a rare interleaving may
//! need a few replays (or more operations) to show again:
//!
//! ```text
//! CHAOS_SEED=0x1234abcd CHAOS_OPS=200000 cargo test -p single-flight-tests --test chaos -- --nocapture
//! ```
//!
//! `CHAOS_OPS` is the number of operations per runtime (default [`DEFAULT_OPS`]); append a test
//! name (`tokio`, `smol`, `async_std`, `threads`) to replay one runtime.
//!
//! # Operations
//!
//! [`LANES`] lanes (tasks; OS threads for the plain-threads run) draw operations over [`KEYS`]
//! keys, coming back to their previous key half of the time: 3% `forget`; 10% bursts of 2 to 5
//! callers of one key joined in one task (some with timeouts, some dropped after a few polls);
//! the rest single callers, `call` (47%), `do_chan` (27%) or `do_chan_detached` with the
//! runtime's spawn (13%), each awaited (45%), dropped after 0 to 5 polls (17%), bounded by the
//! runtime's timer (18%), stalled (8%) or, for receivers, moved to a task of their own. The work
//! of a flight yields 0 to 15 times, waits for a timer (20%), panics (6%) and takes a while to
//! drop when abandoned (20%).
//!
//! # What is checked
//!
//! * **One execution at a time per key** (semantics 1, 2): every execution logs when its work was
//!   first polled and when its work future was dropped (a guard inside the work); two executions
//!   of a key whose logged intervals overlap are a failure, unless a successful `forget` of that
//!   key could have separated them (see [`World::check_overlaps`] for the exact rule: a forgotten
//!   flight legitimately runs on while a new one starts).
//! * **Every waiter that was not dropped gets its flight's outcome** (semantics 2, 4): the value
//!   carries its key and execution id; a caller checks the key, a caller that started the flight
//!   checks that it got its own execution, and no caller may get the outcome of an execution that
//!   some other caller had already received before this caller even started (a stale result).
//!   A panic must reach the caller as the original payload or as [`single_flight::Panicked`],
//!   with the work's message.
//! * **Progress does not hinge on one caller** (semantics 3): stalled callers are polled a few
//!   times and then kept alive, unpolled: at most one per key by the lane that made it, which
//!   often goes on to wait for the same flight (so a wakeup lost to the stalled caller hangs the
//!   run), the others by a holder thread that drops them within 2 ms.
//! * **Detached flights run to completion** (semantics 6): no detached work is dropped unfinished.
//! * **Bounded completion**: a watchdog thread ends the process with the seed if a run takes
//!   longer than [`WATCHDOG`], or if nothing at all happens in it for [`STALL`].
//! * **No leaks** (semantics 8): `in_flight() == 0`; every key, value and work future the run
//!   created has been dropped (exact live counts); every key still works afterwards; the group
//!   holds at most [`GROUP_RETAINED_BOUND`] bytes once its flights have ended; and live heap
//!   (counted by this binary's `#[global_allocator]`) is back to its baseline, within
//!   [`HEAP_SLACK`] bytes and [`HEAP_BLOCKS_SLACK`] blocks, once the run, its group and its
//!   runtime are gone. The baseline is taken after a warm-up run on the same runtime.

use std::any::Any;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Once, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{listener, Event};
use futures_lite::future::{poll_once, yield_now};
use futures_lite::FutureExt;
use single_flight::{KeyedGroup, Panicked};
use single_flight_tests::Rt;

/// Operations per runtime unless `CHAOS_OPS` says otherwise: four runtimes make 2 * 10^5 per run.
const DEFAULT_OPS: usize = 50_000;
/// The key space: small, so that flights are shared, forgotten and restarted all the time.
const KEYS: u8 = 8;
/// Concurrent lanes (tasks, or OS threads for the plain-threads run) issuing operations.
const LANES: usize = 16;
/// The bound on one run: a hang detector, never a timing assertion.
const WATCHDOG: Duration = Duration::from_secs(60);
/// A run in which no caller, work or forget did anything for this long is hung.
const STALL: Duration = Duration::from_secs(15);
/// Every panic the work raises on purpose carries this; the panic hook keeps them quiet.
const PANIC_TAG: &str = "chaos-panic";

// ---------------------------------------------------------------------------------------------
// Seeds and randomness.

/// `splitmix64`: a tiny, good-enough generator whose whole state is the seed.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent / 100`.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A derived, independent stream.
    fn fork(&mut self) -> Rng {
        Rng::new(self.next())
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim().replace('_', "");
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The run's seed: `CHAOS_SEED`, or a fresh one (the same for every runtime of this process).
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("CHAOS_SEED") {
        Ok(text) => parse_u64(&text)
            .unwrap_or_else(|| panic!("CHAOS_SEED must be a decimal or 0x-hex u64, got {text:?}")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(32)).next()
        }
    })
}

fn ops_per_runtime() -> usize {
    match std::env::var("CHAOS_OPS") {
        Ok(text) => parse_u64(&text)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("CHAOS_OPS must be a positive integer, got {text:?}")),
        Err(_) => DEFAULT_OPS,
    }
}

// ---------------------------------------------------------------------------------------------
// Runtimes.

/// What each runtime mixes into the seed, so that the four runs of one seed differ.
fn salt(rt: Rt) -> u64 {
    match rt {
        Rt::TokioMultiThread => 0x746f_6b69_6f00_0001,
        Rt::Smol => 0x736d_6f6c_0000_0002,
        Rt::AsyncStd => 0x6173_796e_6373_0003,
        Rt::Threads => 0x7468_7265_6164_0004,
        Rt::TokioCurrentThread => unreachable!("chaos runs on tokio's multi-thread runtime"),
    }
}

/// Spawns the run's tasks (moved receivers, detached flights) on the runtime under test.
#[derive(Clone)]
enum Spawner {
    Tokio(tokio::runtime::Handle),
    Smol(Arc<smol::Executor<'static>>),
    AsyncStd,
    Threads(Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>),
}

impl Spawner {
    /// Spawns `fut`, counted by the world until it ends; a panic of the task is a failure.
    fn spawn(&self, world: &Arc<World>, fut: impl Future<Output = ()> + Send + 'static) {
        world.tasks_live.fetch_add(1, SeqCst);
        world.stats.tasks.fetch_add(1, SeqCst);
        let guard = TaskGuard(world.clone());
        let task = async move {
            let guard = guard;
            if let Err(payload) = AssertUnwindSafe(fut).catch_unwind().await {
                guard
                    .0
                    .violation(format!("a spawned task panicked: {}", describe(&*payload)));
            }
        };
        match self {
            Spawner::Tokio(handle) => drop(handle.spawn(task)),
            Spawner::Smol(executor) => executor.spawn(task).detach(),
            Spawner::AsyncStd => drop(async_std::task::spawn(task)),
            Spawner::Threads(handles) => {
                let handle = std::thread::Builder::new()
                    .name("chaos-task".into())
                    .spawn(move || futures_lite::future::block_on(task))
                    .expect("spawn a task thread");
                let mut handles = lock(handles);
                if handles.len() >= 256 {
                    // A thread that ended keeps its stack until it is joined (or detached).
                    handles.retain(|handle| !handle.is_finished());
                }
                handles.push(handle);
            }
        }
    }
}

struct TaskGuard(Arc<World>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.tasks_live.fetch_sub(1, SeqCst);
        self.0.tasks_done.notify(usize::MAX);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// What the run records.

/// Counts live instances of the keys, values and work futures the run creates.
struct Live(Arc<World>, Kind);

#[derive(Clone, Copy)]
enum Kind {
    Key,
    Value,
}

impl Live {
    fn new(world: &Arc<World>, kind: Kind) -> Self {
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
struct Key {
    k: u8,
    _live: Live,
}

impl Key {
    fn new(world: &Arc<World>, k: u8) -> Self {
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
struct Val {
    k: u8,
    exec: u64,
    _live: Live,
}

type Group = KeyedGroup<Key, Val>;

/// How an execution's work future ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Dropped before it completed (every waiter left, or the runtime dropped a detached task).
    Abandoned,
    Value,
    Panicked,
}

/// One execution, as logged when its work future is dropped. Times are ticks of `World::clock`.
#[derive(Clone, Debug)]
struct ExecLog {
    k: u8,
    exec: u64,
    /// Read by the starter before it registered (the flight was created after this).
    registered_after: u64,
    /// Read in the closure (the flight was created before this).
    created_before: u64,
    /// Read at the first poll of the work (`None`: never polled).
    first_poll: Option<u64>,
    /// Read when the work future was dropped.
    dropped: u64,
    detached: bool,
    end: End,
}

/// One `forget`: clock before the call, after it, and what it returned.
#[derive(Clone, Debug)]
struct ForgetLog {
    k: u8,
    before: u64,
    after: u64,
    forgot: bool,
}

/// One waiter's outcome of an execution (a value or a panic).
#[derive(Clone, Debug)]
struct Receipt {
    exec: u64,
    /// Read before the caller registered.
    started: u64,
    /// Read after the outcome came out.
    got: u64,
}

/// A run's counters (see [`Counts`] for a copy).
#[derive(Default)]
struct Stats {
    ops: AtomicUsize,
    callers: AtomicUsize,
    forgets: AtomicUsize,
    forgot: AtomicUsize,
    execs: AtomicUsize,
    detached_execs: AtomicUsize,
    values: AtomicUsize,
    panics: AtomicUsize,
    dropped: AtomicUsize,
    timed_out: AtomicUsize,
    stalled: AtomicUsize,
    tasks: AtomicUsize,
    overlaps_explained: AtomicUsize,
}

/// A copy of a run's counters.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    ops: usize,
    callers: usize,
    forgets: usize,
    forgot: usize,
    execs: usize,
    detached_execs: usize,
    values: usize,
    panics: usize,
    dropped: usize,
    timed_out: usize,
    stalled: usize,
    tasks: usize,
    overlaps_explained: usize,
}

impl Stats {
    fn snapshot(&self) -> Counts {
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

fn summary(c: &Counts) -> String {
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
struct World {
    rt: Rt,
    seed: u64,
    clock: AtomicU64,
    next_exec: AtomicU64,
    keys_live: AtomicIsize,
    values_live: AtomicIsize,
    works_live: AtomicIsize,
    tasks_live: AtomicUsize,
    tasks_done: Event,
    stats: Stats,
    execs: Mutex<Vec<ExecLog>>,
    forgets: Mutex<Vec<ForgetLog>>,
    receipts: Mutex<Vec<Receipt>>,
    violations: Mutex<Vec<String>>,
    /// What each lane is doing now, for the watchdog's report.
    doing: Mutex<Vec<String>>,
    /// Whether a lane holds a stalled caller of each key (at most one per key).
    stalled_keys: [AtomicBool; KEYS as usize],
}

impl World {
    fn new(rt: Rt, seed: u64) -> Arc<Self> {
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

    fn doing(&self, lane: usize, what: impl FnOnce() -> String) {
        lock(&self.doing)[lane] = what();
    }

    fn doing_also(&self, lane: usize, what: impl FnOnce() -> String) {
        lock(&self.doing)[lane].push_str(&what());
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, SeqCst)
    }

    fn live(&self, kind: Kind) -> &AtomicIsize {
        match kind {
            Kind::Key => &self.keys_live,
            Kind::Value => &self.values_live,
        }
    }

    fn violation(&self, what: String) {
        let mut violations = lock(&self.violations);
        if violations.len() < 1000 {
            violations.push(what);
        }
    }

    fn summary(&self) -> String {
        summary(&self.stats.snapshot())
    }

    async fn all_tasks_done(&self) {
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

    /// Semantics 1 and 2: no two executions of a key overlap, unless a `forget` explains it.
    ///
    /// An execution's logged interval runs from a clock read at the first poll of its work to a
    /// clock read in the guard its work future drops; the true interval (from the start of that
    /// poll to the end of that drop) contains it, so two logged intervals that overlap are two
    /// executions that truly overlapped.
    ///
    /// They may: when a flight is forgotten, its work runs on while the next call starts a new
    /// flight. So an overlap of executions X and Y fails the test only if no successful `forget`
    /// of their key can have removed the earlier one from the group before the later one was
    /// created. With X created first, such a forget must have run after X's flight was created
    /// (so it returned after `X.registered_after`, read before X's starter registered) and before
    /// Y's flight was created (so it was called before `Y.created_before`, read in Y's closure).
    /// The clock reads bracket the true events, so the rule never blames a legitimate overlap;
    /// and since which of X and Y was created first is not logged, both orders are tried.
    fn check_overlaps(&self) {
        let execs = lock(&self.execs).clone();
        let forgets = lock(&self.forgets).clone();
        for k in 0..KEYS {
            let mut ran: Vec<&ExecLog> = execs
                .iter()
                .filter(|e| e.k == k && e.first_poll.is_some())
                .collect();
            ran.sort_by_key(|e| e.first_poll);
            let forgot: Vec<&ForgetLog> = forgets.iter().filter(|f| f.k == k && f.forgot).collect();
            let explained = |earlier: &ExecLog, later: &ExecLog| {
                forgot
                    .iter()
                    .any(|f| f.after > earlier.registered_after && f.before < later.created_before)
            };
            for (i, x) in ran.iter().enumerate() {
                let x_start = x.first_poll.expect("filtered");
                for y in &ran[i + 1..] {
                    let y_start = y.first_poll.expect("filtered");
                    if y_start > x.dropped {
                        break;
                    }
                    if explained(x, y) || explained(y, x) {
                        self.stats.overlaps_explained.fetch_add(1, SeqCst);
                    } else {
                        self.violation(format!(
                            "key {k}: executions {} (polled at {x_start}, dropped at {}) and {} \
                             (polled at {y_start}, dropped at {}) ran at the same time, and no \
                             forget of the key explains it: {x:?} / {y:?}",
                            x.exec, x.dropped, y.exec, y.dropped
                        ));
                    }
                }
            }
        }
    }

    /// Semantics 2: nobody gets the outcome of an execution that had already been handed to a
    /// waiter before it even called (a stale result of a finished flight).
    ///
    /// A caller that joins a flight does so before the flight is unlinked, and every waiter gets
    /// the outcome after that unlink; so the outcome's first receipt, by anyone, comes after
    /// every legitimate waiter had started.
    fn check_receipts(&self) {
        let receipts = lock(&self.receipts);
        let created: std::collections::HashMap<u64, u64> = lock(&self.execs)
            .iter()
            .map(|e| (e.exec, e.registered_after))
            .collect();
        for r in receipts.iter() {
            match created.get(&r.exec) {
                None => self.violation(format!(
                    "a caller got the outcome of execution {}, which never ran",
                    r.exec
                )),
                Some(&registered_after) if registered_after > r.got => {
                    self.violation(format!(
                        "a caller got the outcome of execution {} at {}, before that execution \
                         was started (at {registered_after})",
                        r.exec, r.got
                    ));
                }
                Some(_) => {}
            }
        }
        let mut first_got = std::collections::HashMap::new();
        for r in receipts.iter() {
            let first = first_got.entry(r.exec).or_insert(r.got);
            *first = (*first).min(r.got);
        }
        for r in receipts.iter() {
            let first = first_got[&r.exec];
            if r.started > first {
                self.violation(format!(
                    "stale outcome: a caller that started at {} got the outcome of execution {}, \
                     which another waiter had already received at {first}",
                    r.started, r.exec
                ));
            }
        }
    }
}

/// Lives inside a work future and logs its execution when the future is dropped.
struct WorkGuard {
    world: Arc<World>,
    log: ExecLog,
    slow_drop: bool,
}

impl WorkGuard {
    fn first_poll(&mut self) {
        self.log.first_poll = Some(self.world.tick());
    }

    fn end(&mut self, end: End) {
        self.log.end = end;
    }
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        if self.slow_drop && self.log.end == End::Abandoned {
            // A work future whose drop takes a while (closing a connection, say): a new flight
            // of the key must not be polled before this drop has finished.
            std::thread::sleep(Duration::from_micros(200));
        }
        self.log.dropped = self.world.tick();
        self.world.works_live.fetch_sub(1, SeqCst);
        if self.log.detached && self.log.end == End::Abandoned {
            self.world.violation(format!(
                "detached execution {} of key {} was dropped before it completed",
                self.log.exec, self.log.k
            ));
        }
        lock(&self.world.execs).push(self.log.clone());
    }
}

/// How the work of a flight behaves; drawn by the caller that may start it.
#[derive(Clone, Copy, Debug)]
struct WorkSpec {
    yields: u32,
    sleep: Option<Duration>,
    panics: bool,
    /// Dropping the work unfinished takes a while.
    slow_drop: bool,
}

impl WorkSpec {
    fn draw(rng: &mut Rng) -> Self {
        let yields = match rng.below(10) {
            0..=2 => 0,
            3..=7 => 1 + rng.below(3) as u32,
            _ => 4 + rng.below(12) as u32,
        };
        // Work that waits for a timer is woken from outside, after its poller may have left.
        let sleep = rng
            .percent(20)
            .then(|| Duration::from_micros(50 + rng.below(400)));
        Self {
            yields,
            sleep,
            panics: rng.percent(6),
            slow_drop: rng.percent(20),
        }
    }
}

/// What one caller knows about its own call.
#[derive(Clone)]
struct CallCtx {
    k: u8,
    /// Clock read before registering.
    started: u64,
    /// Set by the closure (to the execution id) if this caller started the flight.
    starter_of: Arc<AtomicU64>,
}

/// The closure a caller passes: runs only if this caller starts the flight.
fn make_work(
    world: &Arc<World>,
    ctx: &CallCtx,
    spec: WorkSpec,
    detached: bool,
) -> impl FnOnce(Key) -> Pin<Box<dyn Future<Output = Val> + Send + 'static>> {
    let world = world.clone();
    let (registered_after, starter_of) = (ctx.started, ctx.starter_of.clone());
    move |key: Key| {
        let exec = world.next_exec.fetch_add(1, SeqCst);
        starter_of.store(exec, SeqCst);
        world.stats.execs.fetch_add(1, SeqCst);
        if detached {
            world.stats.detached_execs.fetch_add(1, SeqCst);
        }
        world.works_live.fetch_add(1, SeqCst);
        let k = key.k;
        let mut guard = WorkGuard {
            log: ExecLog {
                k,
                exec,
                registered_after,
                created_before: world.tick(),
                first_poll: None,
                dropped: 0,
                detached,
                end: End::Abandoned,
            },
            world,
            slow_drop: spec.slow_drop,
        };
        Box::pin(async move {
            guard.first_poll();
            for _ in 0..spec.yields {
                yield_now().await;
            }
            if let Some(sleep) = spec.sleep {
                smol::Timer::after(sleep).await;
            }
            if spec.panics {
                guard.end(End::Panicked);
                panic!("{PANIC_TAG} k={k} e={exec}");
            }
            guard.end(End::Value);
            Val {
                k,
                exec,
                _live: Live::new(&guard.world, Kind::Value),
            }
        })
    }
}

/// What became of one caller.
enum Outcome {
    Value(Val),
    Panic(Box<dyn Any + Send>),
    /// Dropped by the test (at a random poll count, or after a stall).
    Dropped,
    TimedOut,
}

type CallerFut = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

fn describe(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(p) = payload.downcast_ref::<Panicked>() {
        format!("Panicked({:?})", p.message())
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// The key and execution a work panic names: `chaos-panic k=K e=E`.
fn panic_origin(payload: &(dyn Any + Send)) -> Option<(u8, u64)> {
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        payload.downcast_ref::<Panicked>()?.message().to_owned()
    };
    let rest = message.strip_prefix(PANIC_TAG)?.strip_prefix(" k=")?;
    let (k, e) = rest.split_once(" e=")?;
    Some((k.parse().ok()?, e.parse().ok()?))
}

impl World {
    /// Checks one caller's outcome and counts it.
    fn record(&self, ctx: &CallCtx, outcome: Outcome) {
        let got = self.tick();
        let starter_of = ctx.starter_of.load(SeqCst);
        let exec = match outcome {
            Outcome::Value(val) => {
                self.stats.values.fetch_add(1, SeqCst);
                if val.k != ctx.k {
                    self.violation(format!(
                        "a caller for key {} got the value of execution {} of key {}",
                        ctx.k, val.exec, val.k
                    ));
                }
                val.exec
            }
            Outcome::Panic(payload) => {
                self.stats.panics.fetch_add(1, SeqCst);
                match panic_origin(&*payload) {
                    Some((k, exec)) if k == ctx.k => exec,
                    Some((k, exec)) => {
                        self.violation(format!(
                            "a caller for key {} got the panic of execution {exec} of key {k}",
                            ctx.k
                        ));
                        exec
                    }
                    None => {
                        self.violation(format!(
                            "a caller for key {} panicked with a payload that is not its \
                             work's: {}",
                            ctx.k,
                            describe(&*payload)
                        ));
                        return;
                    }
                }
            }
            Outcome::Dropped => {
                self.stats.dropped.fetch_add(1, SeqCst);
                return;
            }
            Outcome::TimedOut => {
                self.stats.timed_out.fetch_add(1, SeqCst);
                return;
            }
        };
        if starter_of != 0 && starter_of != exec {
            self.violation(format!(
                "the caller that started execution {starter_of} of key {} got the outcome of \
                 execution {exec}",
                ctx.k
            ));
        }
        lock(&self.receipts).push(Receipt {
            exec,
            started: ctx.started,
            got,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Callers.

/// Drops the inner future once it has been polled `polls` times without finishing
/// (`polls == 0`: dropped before its first poll).
struct DropAfter {
    fut: Option<CallerFut>,
    polls: u32,
}

impl Future for DropAfter {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = &mut *self;
        let Some(fut) = this.fut.as_mut() else {
            return Poll::Ready(Outcome::Dropped);
        };
        if this.polls > 0 {
            this.polls -= 1;
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                this.fut = None;
                return Poll::Ready(out);
            }
        }
        if this.polls == 0 {
            this.fut = None;
            return Poll::Ready(Outcome::Dropped);
        }
        Poll::Pending
    }
}

#[derive(Clone, Copy, Debug)]
enum How {
    Call,
    DoChan,
    Detached,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Awaited to the end.
    Await,
    /// Dropped after this many polls.
    DropAfter(u32),
    /// Bounded by the runtime's timer.
    Timeout(Duration),
    /// Polled this many times, then kept alive but not polled for a while (this many of its
    /// lane's operations, or quarter milliseconds in the [`Holder`]), then dropped.
    Stall(u32, usize),
    /// A receiver moved to a task of its own and awaited there.
    Spawned,
}

impl Mode {
    fn draw(rng: &mut Rng, how: How) -> Self {
        match rng.below(100) {
            0..=44 => Mode::Await,
            45..=61 => Mode::DropAfter(rng.below(6) as u32),
            62..=79 => Mode::Timeout(Duration::from_micros(rng.below(3000))),
            80..=87 => Mode::Stall(rng.below(4) as u32, 1 + rng.below(8) as usize),
            _ if matches!(how, How::Call) => Mode::Await,
            _ => Mode::Spawned,
        }
    }
}

/// Everything a lane needs to issue operations.
#[derive(Clone)]
struct Env {
    world: Arc<World>,
    group: Arc<Group>,
    spawner: Spawner,
    holder: Arc<Holder>,
}

/// Keeps stalled callers alive, unpolled, until their time is up (a few milliseconds at most,
/// whatever the lanes do): the callers stalled beyond the one per key that a lane may hold.
struct Holder {
    world: Arc<World>,
    held: Mutex<Vec<(Instant, CallCtx, CallerFut)>>,
    /// Callers held and not yet dropped.
    holding: AtomicUsize,
    done: AtomicBool,
}

impl Holder {
    /// Starts the holder's thread.
    fn start(world: &Arc<World>) -> (Arc<Self>, std::thread::JoinHandle<()>) {
        let holder = Arc::new(Self {
            world: world.clone(),
            held: Mutex::new(Vec::new()),
            holding: AtomicUsize::new(0),
            done: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new()
            .name("chaos-holder".into())
            .spawn({
                let holder = holder.clone();
                move || holder.run()
            })
            .expect("spawn the holder thread");
        (holder, thread)
    }

    fn hold(&self, hold: Duration, ctx: CallCtx, fut: CallerFut) {
        self.holding.fetch_add(1, SeqCst);
        lock(&self.held).push((Instant::now() + hold, ctx, fut));
    }

    /// Drops the callers whose time is up (all of them once `finish` was called).
    fn run(&self) {
        loop {
            let done = self.done.load(SeqCst);
            let now = Instant::now();
            let due: Vec<_> = {
                let mut held = lock(&self.held);
                let (due, kept) = std::mem::take(&mut *held)
                    .into_iter()
                    .partition(|(until, _, _)| done || *until <= now);
                *held = kept;
                due
            };
            for (_, ctx, fut) in due {
                drop(fut);
                self.world.stats.stalled.fetch_add(1, SeqCst);
                self.world.record(&ctx, Outcome::Dropped);
                self.holding.fetch_sub(1, SeqCst);
            }
            if done && lock(&self.held).is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Tells the thread to drop every caller it still holds and to end.
    fn finish(&self) {
        self.done.store(true, SeqCst);
    }
}

impl Env {
    fn ctx(&self, k: u8) -> CallCtx {
        self.world.stats.callers.fetch_add(1, SeqCst);
        self.world.stats.ops.fetch_add(1, SeqCst);
        CallCtx {
            k,
            started: self.world.tick(),
            starter_of: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The caller's future, its panics caught. `do_chan` and `do_chan_detached` register now;
    /// `call` registers at its first poll.
    fn caller(&self, ctx: &CallCtx, how: How, spec: WorkSpec) -> CallerFut {
        match how {
            How::Call => {
                let key = Key::new(&self.world, ctx.k);
                let work = make_work(&self.world, ctx, spec, false);
                let group = self.group.clone();
                Box::pin(async move { catch(group.call(key, work)).await })
            }
            How::DoChan | How::Detached => self.receiver(ctx, how, spec),
        }
    }

    /// Runs one caller in `mode`.
    ///
    /// A stalled caller goes back to the lane, which drops it some of its operations later, if
    /// it is the only stalled caller of its key; otherwise to the [`Holder`]. A lane that holds
    /// a stalled caller may go on to wait for the same flight: semantics 3 promises that one
    /// stalled waiter (driver or follower) never stops the others, so a hang there is a bug.
    /// Two stalled waiters (the driver and the standby that got the wakeup) can stop a flight
    /// until one of them is dropped (`tests/hostile.rs`, `stalled_driver_and_stalled_follower`);
    /// the holder's callers are always dropped in time, so they can only delay the lanes.
    async fn run_caller(
        &self,
        lane: usize,
        rng: &mut Rng,
        k: u8,
        how: How,
    ) -> Option<(usize, CallCtx, CallerFut)> {
        let spec = WorkSpec::draw(rng);
        let mode = Mode::draw(rng, how);
        let ctx = self.ctx(k);
        let rt = self.world.rt;
        self.world
            .doing_also(lane, || format!(": {how:?} key {k} {mode:?} {spec:?}"));
        if let (Mode::Spawned, How::DoChan | How::Detached) = (mode, how) {
            // The receiver is registered here, then moved to a task of its own.
            let fut = self.receiver(&ctx, how, spec);
            let world = self.world.clone();
            self.spawner.spawn(&self.world, async move {
                let outcome = fut.await;
                world.record(&ctx, outcome);
            });
            return None;
        }
        let fut = self.caller(&ctx, how, spec);
        let outcome = match mode {
            Mode::Await | Mode::Spawned => fut.await,
            Mode::DropAfter(polls) => {
                DropAfter {
                    fut: Some(fut),
                    polls,
                }
                .await
            }
            Mode::Timeout(after) => rt.timeout(after, fut).await.unwrap_or(Outcome::TimedOut),
            Mode::Stall(polls, hold) => {
                let mut fut = fut;
                for _ in 0..polls {
                    if let Some(outcome) = poll_once(&mut fut).await {
                        self.world.record(&ctx, outcome);
                        return None;
                    }
                }
                let slot = &self.world.stalled_keys[usize::from(k)];
                if slot.compare_exchange(false, true, SeqCst, SeqCst).is_ok() {
                    return Some((hold, ctx, fut));
                }
                self.holder
                    .hold(Duration::from_micros(hold as u64 * 250), ctx, fut);
                return None;
            }
        };
        self.world.record(&ctx, outcome);
        None
    }

    /// A receiver from `do_chan` (or `do_chan_detached`, its work spawned), panics caught.
    fn receiver(&self, ctx: &CallCtx, how: How, spec: WorkSpec) -> CallerFut {
        let key = Key::new(&self.world, ctx.k);
        let rx = match how {
            How::DoChan | How::Call => self
                .group
                .do_chan(key, make_work(&self.world, ctx, spec, false)),
            How::Detached => {
                self.group
                    .do_chan_detached(key, make_work(&self.world, ctx, spec, true), |task| {
                        self.spawner.spawn(&self.world, task)
                    })
            }
        };
        Box::pin(catch(rx))
    }

    /// Drops a stalled caller held by a lane, and frees its key's slot.
    fn drop_stalled(&self, ctx: CallCtx, fut: CallerFut) {
        drop(fut);
        self.world.stats.stalled.fetch_add(1, SeqCst);
        self.world.record(&ctx, Outcome::Dropped);
        self.world.stalled_keys[usize::from(ctx.k)].store(false, SeqCst);
    }

    fn forget(&self, k: u8) {
        let world = &self.world;
        world.stats.ops.fetch_add(1, SeqCst);
        world.stats.forgets.fetch_add(1, SeqCst);
        let key = Key::new(world, k);
        let before = world.tick();
        let forgot = self.group.forget(&key);
        let after = world.tick();
        if forgot {
            world.stats.forgot.fetch_add(1, SeqCst);
        }
        lock(&world.forgets).push(ForgetLog {
            k,
            before,
            after,
            forgot,
        });
    }

    /// One lane: `budget` operations drawn from `rng`.
    async fn lane(self, lane: usize, mut rng: Rng, budget: usize) {
        let mut done = 0;
        let mut step = 0usize;
        // Stalled callers: registered, kept alive, not polled; dropped at their step.
        let mut held: Vec<(usize, CallCtx, CallerFut)> = Vec::new();
        let mut k = rng.below(u64::from(KEYS)) as u8;
        while done < budget {
            step += 1;
            let world = &self.world;
            let (due, kept): (Vec<_>, Vec<_>) =
                held.drain(..).partition(|(until, _, _)| *until <= step);
            held = kept;
            for (_, ctx, fut) in due {
                self.drop_stalled(ctx, fut);
            }
            // Lanes come back to the key they just used half of the time: a lane that holds a
            // stalled caller then often waits for that caller's flight itself.
            if !rng.percent(50) {
                k = rng.below(u64::from(KEYS)) as u8;
            }
            let stalled: Vec<u8> = held.iter().map(|(_, ctx, _)| ctx.k).collect();
            world.doing(lane, || {
                format!(
                    "step {step}, {done}/{budget} done, holds stalled callers of keys {stalled:?}"
                )
            });
            match rng.below(100) {
                0..=2 => {
                    self.forget(k);
                    done += 1;
                }
                3..=12 => {
                    // A burst: several callers of one key, joined in this task.
                    let n = 2 + rng.below(4) as usize;
                    let mut callers: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> =
                        Vec::with_capacity(n);
                    for _ in 0..n {
                        let how = if rng.percent(60) {
                            How::Call
                        } else {
                            How::DoChan
                        };
                        let spec = WorkSpec::draw(&mut rng);
                        let ctx = self.ctx(k);
                        let fut = self.caller(&ctx, how, spec);
                        let rt = world.rt;
                        let timeout = rng
                            .percent(25)
                            .then(|| Duration::from_micros(rng.below(2000)));
                        let drop_after = rng.percent(20).then(|| rng.below(5) as u32);
                        callers.push(Box::pin(async move {
                            let outcome = match (timeout, drop_after) {
                                (Some(after), _) => {
                                    rt.timeout(after, fut).await.unwrap_or(Outcome::TimedOut)
                                }
                                (None, Some(polls)) => {
                                    DropAfter {
                                        fut: Some(fut),
                                        polls,
                                    }
                                    .await
                                }
                                (None, None) => fut.await,
                            };
                            world.record(&ctx, outcome);
                        }));
                    }
                    world.doing_also(lane, || format!(": burst of {n} on key {k}"));
                    JoinAll(callers).await;
                    done += n;
                }
                roll => {
                    let how = match roll {
                        13..=59 => How::Call,
                        60..=86 => How::DoChan,
                        _ => How::Detached,
                    };
                    if let Some((steps, ctx, fut)) = self.run_caller(lane, &mut rng, k, how).await {
                        held.push((step + steps, ctx, fut));
                    }
                    done += 1;
                }
            }
        }
        for (_, ctx, fut) in held.drain(..) {
            self.drop_stalled(ctx, fut);
        }
    }
}

/// Awaits a caller's value, catching its panic.
async fn catch(fut: impl Future<Output = Val>) -> Outcome {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(val) => Outcome::Value(val),
        Err(payload) => Outcome::Panic(payload),
    }
}

/// Polls every unfinished future each time it is woken (a few futures at a time).
struct JoinAll<'a>(Vec<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>);

impl Future for JoinAll<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.retain_mut(|fut| fut.as_mut().poll(cx).is_pending());
        if self.0.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Ends the process (with the seed) if the run does not finish in time: a hang is a failure
/// that no `#[test]` timeout would otherwise report.
struct Watchdog {
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(world: &Arc<World>, ops: usize) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let world = world.clone();
        let thread = std::thread::Builder::new()
            .name("chaos-watchdog".into())
            .spawn(move || {
                let deadline = Instant::now() + WATCHDOG;
                let (mut tick, mut moved) = (world.clock.load(SeqCst), Instant::now());
                loop {
                    match stopped.recv_timeout(Duration::from_millis(500)) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    let now = Instant::now();
                    let latest = world.clock.load(SeqCst);
                    if latest != tick {
                        (tick, moved) = (latest, now);
                    }
                    let why = if now >= deadline {
                        format!("the run did not finish within {WATCHDOG:?}")
                    } else if now - moved >= STALL {
                        format!("nothing happened for {STALL:?}")
                    } else {
                        continue;
                    };
                    // Straight to the process's stderr: the test harness's capture of
                    // `eprintln!` would be lost with the process.
                    let _ = writeln!(
                        std::io::stderr(),
                        "chaos[{:?}]: HANG: {why} (seed {:#x}; replay with CHAOS_SEED={:#x} \
                         CHAOS_OPS={}); so far: {}; {} spawned tasks still running",
                        world.rt,
                        world.seed,
                        world.seed,
                        ops,
                        world.summary(),
                        world.tasks_live.load(SeqCst),
                    );
                    for (lane, doing) in lock(&world.doing).iter().enumerate() {
                        let _ = writeln!(std::io::stderr(), "  lane {lane}: {doing}");
                    }
                    std::process::exit(101);
                }
            })
            .expect("spawn the watchdog");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Keeps the panics the work raises on purpose off stderr (thousands of them per run).
fn quiet_chaos_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !message.starts_with(PANIC_TAG) {
                default(info);
            }
        }));
    });
}

/// The body every runtime runs: `LANES` lanes, then the end-of-run checks that need the group.
async fn chaos(env: Env, lanes: Vec<Pin<Box<dyn Future<Output = ()> + Send>>>) {
    let world = env.world.clone();
    // The lanes themselves are tasks (or threads) started by the caller of `chaos`.
    JoinAll(lanes).await;
    env.holder.finish();
    while env.holder.holding.load(SeqCst) > 0 {
        smol::Timer::after(Duration::from_micros(200)).await;
    }
    world.all_tasks_done().await;

    // Nothing is left in flight, and every key still works: a fresh call starts a flight of its
    // own and gets its own value.
    let group = &env.group;
    if group.in_flight() != 0 {
        world.violation(format!(
            "in_flight() is {} after every caller and task ended",
            group.in_flight()
        ));
    }
    for k in 0..KEYS {
        let ctx = env.ctx(k);
        let spec = WorkSpec {
            yields: 1,
            sleep: None,
            panics: false,
            slow_drop: false,
        };
        let outcome = env.caller(&ctx, How::Call, spec).await;
        if ctx.starter_of.load(SeqCst) == 0 {
            world.violation(format!(
                "key {k} is wedged: a call after the run joined a flight"
            ));
        }
        world.record(&ctx, outcome);
    }
    if group.in_flight() != 0 {
        world.violation(format!(
            "in_flight() is {} after the final calls",
            group.in_flight()
        ));
    }
}

/// Operations of the warm-up run that precedes each measured run.
const WARM_UP_OPS: usize = 4_000;
/// What the group may keep after all its flights have ended: its pool of recycled flights (at
/// most 16, each an `Arc` with a mutex, an `Event` and the event's list, about 250 bytes) and
/// its table (shrunk to at most 64 slots once it is mostly empty). Measured at 1 to 11 KiB.
const GROUP_RETAINED_BOUND: isize = 32 * 1024;
/// How far live heap may end above the baseline once the run, its group and its runtime are
/// gone. The baseline is taken after a warm-up run on the same runtime, so lazily initialized
/// globals (async-io's reactor and timer wheel, async-std's global executor, the panic hook,
/// thread-local caches) are counted in it; what remains is the growth of such global caches
/// beyond the warm-up's high-water mark (executor queue blocks, the reactor's event buffer).
/// Measured at exactly 0 on every runtime; a flight state leaked once every 100 flights would
/// exceed the slack (about 40 KiB per 10^4 flights), and the exact live counts of keys, values
/// and work futures catch smaller leaks of anything the flights own.
const HEAP_SLACK: isize = 16 * 1024;
/// The same in heap blocks: a leaked flight state is at least one block, so this catches a
/// leak of one flight in a thousand.
const HEAP_BLOCKS_SLACK: isize = 16;

/// Runs the chaos on `rt`: a warm-up, then the measured run, then the checks.
fn run(rt: Rt) {
    let ops = ops_per_runtime();
    // One run at a time: each run uses both cores, and the heap is measured process-wide.
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = lock(&SERIAL);
    quiet_chaos_panics();

    let seed = seed();
    println!(
        "chaos[{rt:?}]: seed {seed:#x}, {ops} operations over {KEYS} keys in {LANES} lanes \
         (replay: CHAOS_SEED={seed:#x} CHAOS_OPS={ops} cargo test -p single-flight-tests \
         --test chaos -- --nocapture)"
    );
    let warm_up = run_once(rt, Rng::new(seed).next(), WARM_UP_OPS);
    let baseline = heap::live();
    let run = run_once(rt, seed, ops);
    let after = heap::live();

    let mut violations = warm_up.violations;
    violations.extend(run.violations);
    if run.group_retained > GROUP_RETAINED_BOUND {
        violations.push(format!(
            "the group kept {} bytes after all its flights ended (bound: {GROUP_RETAINED_BOUND})",
            run.group_retained
        ));
    }
    let grown = after.0 - baseline.0;
    if grown > HEAP_SLACK || after.1 - baseline.1 > HEAP_BLOCKS_SLACK {
        violations.push(format!(
            "leak: {grown} bytes in {} blocks more on the heap than before the run \
             (slack: {HEAP_SLACK} bytes, {HEAP_BLOCKS_SLACK} blocks)",
            after.1 - baseline.1
        ));
    }
    println!(
        "chaos[{rt:?}]: {} in {:.2?}; the group kept {} bytes; heap after the run: {grown:+} \
         bytes, {:+} blocks",
        summary(&run.counts),
        run.elapsed,
        run.group_retained,
        after.1 - baseline.1,
    );
    assert!(
        violations.is_empty(),
        "chaos[{rt:?}] failed with seed {seed:#x} (replay: CHAOS_SEED={seed:#x} CHAOS_OPS={ops}); \
         {} violation(s), the first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(20)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// What one run leaves behind.
struct RunReport {
    counts: Counts,
    violations: Vec<String>,
    elapsed: Duration,
    /// Heap bytes the group held after its last flight ended (freed when it was dropped).
    group_retained: isize,
}

fn run_once(rt: Rt, seed: u64, ops: usize) -> RunReport {
    let world = World::new(rt, seed);
    let watchdog = Watchdog::start(&world, ops);
    let started = Instant::now();
    let mut rng = Rng::new(seed ^ salt(rt));
    let lane_rngs: Vec<Rng> = (0..LANES).map(|_| rng.fork()).collect();
    let budget = ops.div_ceil(LANES);
    let group = Arc::new(Group::new());
    let (holder, holder_thread) = Holder::start(&world);

    let make_env = |spawner: Spawner| Env {
        world: world.clone(),
        group: group.clone(),
        spawner,
        holder: holder.clone(),
    };
    // Spawns the lanes with `spawn` and returns futures that wait for them.
    let lanes = |env: &Env| -> Vec<Pin<Box<dyn Future<Output = ()> + Send>>> {
        lane_rngs
            .iter()
            .enumerate()
            .map(|(i, lane_rng)| {
                let done = Arc::new(LaneDone::default());
                let lane = env.clone().lane(i, lane_rng.clone(), budget);
                let signal = done.clone();
                env.spawner.spawn(&env.world, async move {
                    lane.await;
                    signal.finish();
                });
                Box::pin(async move { done.wait().await })
                    as Pin<Box<dyn Future<Output = ()> + Send>>
            })
            .collect()
    };

    match rt {
        Rt::TokioCurrentThread => unreachable!("chaos runs on tokio's multi-thread runtime"),
        Rt::TokioMultiThread => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .expect("build a tokio runtime");
            let env = make_env(Spawner::Tokio(runtime.handle().clone()));
            runtime.block_on(async {
                let lanes = lanes(&env);
                chaos(env.clone(), lanes).await;
            });
            drop(env);
            drop(runtime);
        }
        Rt::Smol => {
            let executor = Arc::new(smol::Executor::new());
            let (stop, stopped) = smol::channel::bounded::<()>(1);
            let threads: Vec<_> = (0..2)
                .map(|i| {
                    let (executor, stopped) = (executor.clone(), stopped.clone());
                    std::thread::Builder::new()
                        .name(format!("chaos-smol-{i}"))
                        .spawn(move || {
                            smol::block_on(executor.run(async { stopped.recv().await.ok() }))
                        })
                        .expect("spawn a smol executor thread")
                })
                .collect();
            let env = make_env(Spawner::Smol(executor.clone()));
            smol::block_on(executor.run(async {
                let lanes = lanes(&env);
                chaos(env.clone(), lanes).await;
            }));
            drop(env);
            drop(stop);
            for thread in threads {
                thread.join().expect("a smol executor thread panicked");
            }
        }
        Rt::AsyncStd => {
            let env = make_env(Spawner::AsyncStd);
            async_std::task::block_on(async {
                let lanes = lanes(&env);
                chaos(env.clone(), lanes).await;
            });
        }
        Rt::Threads => {
            let handles = Arc::new(Mutex::new(Vec::new()));
            let env = make_env(Spawner::Threads(handles.clone()));
            futures_lite::future::block_on(async {
                let lanes = lanes(&env);
                chaos(env.clone(), lanes).await;
            });
            let handles = std::mem::take(&mut *lock(&handles));
            for handle in handles {
                handle.join().expect("a task thread panicked");
            }
        }
    }
    drop(holder);
    holder_thread.join().expect("the holder thread panicked");

    // Every flight has ended: what the group still holds is its recycled flight states.
    let with_group = heap::live().0;
    drop(group);
    let group_retained = with_group - heap::live().0;

    // Nothing the flights owned is alive, and the logs hold up.
    world.check_overlaps();
    world.check_receipts();
    let keys = world.keys_live.load(SeqCst);
    let values = world.values_live.load(SeqCst);
    let works = world.works_live.load(SeqCst);
    if (keys, values, works) != (0, 0, 0) {
        world.violation(format!(
            "leak: {keys} keys, {values} values and {works} work futures still alive after the run"
        ));
    }
    let counts = world.stats.snapshot();
    if counts.ops < ops {
        world.violation(format!("only {} of {ops} operations ran", counts.ops));
    }
    let elapsed = started.elapsed();
    drop(watchdog);
    let violations = std::mem::take(&mut *lock(&world.violations));
    RunReport {
        counts,
        violations,
        elapsed,
        group_retained,
    }
}

/// Signals the end of a lane.
#[derive(Default)]
struct LaneDone {
    done: AtomicBool,
    event: Event,
}

impl LaneDone {
    fn finish(&self) {
        self.done.store(true, SeqCst);
        self.event.notify(usize::MAX);
    }

    async fn wait(&self) {
        loop {
            if self.done.load(SeqCst) {
                return;
            }
            listener!(self.event => listener);
            if self.done.load(SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Live heap.

/// A global allocator that counts live heap bytes and blocks (process-wide).
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

    static BYTES: AtomicIsize = AtomicIsize::new(0);
    static BLOCKS: AtomicIsize = AtomicIsize::new(0);

    /// Live heap bytes and blocks now.
    pub(crate) fn live() -> (isize, isize) {
        (BYTES.load(Relaxed), BLOCKS.load(Relaxed))
    }

    pub(crate) struct Counting;

    // SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
    // counting touches two atomics and never allocates.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let ptr = unsafe { System.alloc(layout) };
            if !ptr.is_null() {
                BYTES.fetch_add(layout.size() as isize, Relaxed);
                BLOCKS.fetch_add(1, Relaxed);
            }
            ptr
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() {
                BYTES.fetch_add(layout.size() as isize, Relaxed);
                BLOCKS.fetch_add(1, Relaxed);
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) };
            BYTES.fetch_sub(layout.size() as isize, Relaxed);
            BLOCKS.fetch_sub(1, Relaxed);
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let new = unsafe { System.realloc(ptr, layout, new_size) };
            if !new.is_null() {
                BYTES.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
            }
            new
        }
    }
}

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn tokio() {
    run(Rt::TokioMultiThread);
}

#[test]
fn smol() {
    run(Rt::Smol);
}

#[test]
fn async_std() {
    run(Rt::AsyncStd);
}

#[test]
fn threads() {
    run(Rt::Threads);
}
