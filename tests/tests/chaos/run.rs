//! One run on one runtime: the watchdog, the warm-up, the run itself and what it must leave
//! behind (no leak).

use super::*;

// ---------------------------------------------------------------------------------------------
// The run.

/// Ends the process (with the seed) if the run does not finish in time: a hang is a failure
/// that no `#[test]` timeout would otherwise report.
pub(crate) struct Watchdog {
    pub(crate) stop: mpsc::Sender<()>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn start(world: &Arc<World>, ops: usize) -> Self {
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

/// The body every runtime runs: `LANES` lanes, then the end-of-run checks that need the group.
pub(crate) async fn chaos(env: Env, lanes: Vec<Pin<Box<dyn Future<Output = ()> + Send>>>) {
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
pub(crate) const WARM_UP_OPS: usize = 4_000;
/// What the group may keep after all its flights have ended: its pool of recycled flights (at
/// most 16, each an `Arc` with a mutex, an `Event` and the event's list, about 250 bytes) and
/// its table (shrunk to at most 64 slots once it is mostly empty). Measured at 1 to 11 KiB.
pub(crate) const GROUP_RETAINED_BOUND: isize = 32 * 1024;
/// How far live heap may end above the baseline once the run, its group and its runtime are
/// gone. The baseline is taken after a warm-up run on the same runtime, so lazily initialized
/// globals (async-io's reactor and timer wheel, async-std's global executor, the panic hook,
/// thread-local caches) are counted in it; what remains is the growth of such global caches
/// beyond the warm-up's high-water mark (executor queue blocks, the reactor's event buffer).
/// Measured at exactly 0 on every runtime; a flight state leaked once every 100 flights would
/// exceed the slack (about 40 KiB per 10^4 flights), and the exact live counts of keys, values
/// and work futures catch smaller leaks of anything the flights own.
pub(crate) const HEAP_SLACK: isize = 16 * 1024;
/// The same in heap blocks: a leaked flight state is at least one block, so this catches a
/// leak of one flight in a thousand.
pub(crate) const HEAP_BLOCKS_SLACK: isize = 16;

/// Runs the chaos on `rt`: a warm-up, then the measured run, then the checks.
pub(crate) fn run(rt: Rt) {
    let ops = ops_per_runtime();
    // One run at a time: each run uses both cores, and the heap is measured process-wide.
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = lock(&SERIAL);
    quiet_expected_panics();

    let seed = seed();
    println!(
        "chaos[{rt:?}]: seed {seed:#x}, {ops} operations over {KEYS} keys in {LANES} lanes \
         (replay: CHAOS_SEED={seed:#x} CHAOS_OPS={ops} cargo test -p single-flight-tests \
         --test chaos -- --nocapture)"
    );
    let warm_up = run_once(rt, Rng::new(seed).next(), WARM_UP_OPS);
    let baseline = live_heap();
    let run = run_once(rt, seed, ops);
    let after = live_heap();

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
pub(crate) struct RunReport {
    pub(crate) counts: Counts,
    pub(crate) violations: Vec<String>,
    pub(crate) elapsed: Duration,
    /// Heap bytes the group held after its last flight ended (freed when it was dropped).
    pub(crate) group_retained: isize,
}

pub(crate) fn run_once(rt: Rt, seed: u64, ops: usize) -> RunReport {
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
    let with_group = live_heap().0;
    drop(group);
    let group_retained = with_group - live_heap().0;

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
pub(crate) struct LaneDone {
    pub(crate) done: AtomicBool,
    pub(crate) event: Event,
}

impl LaneDone {
    pub(crate) fn finish(&self) {
        self.done.store(true, SeqCst);
        self.event.notify(usize::MAX);
    }

    pub(crate) async fn wait(&self) {
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
