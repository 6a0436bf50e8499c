//! The work of a flight (drawn from the seed), the guard that logs its execution, and how a
//! caller's outcome is checked.

use super::*;

/// Lives inside a work future and logs its execution when the future is dropped.
pub(crate) struct WorkGuard {
    pub(crate) world: Arc<World>,
    pub(crate) log: ExecLog,
    pub(crate) slow_drop: bool,
}

impl WorkGuard {
    pub(crate) fn first_poll(&mut self) {
        self.log.first_poll = Some(self.world.tick());
    }

    pub(crate) fn end(&mut self, end: End) {
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
pub(crate) struct WorkSpec {
    pub(crate) yields: u32,
    pub(crate) sleep: Option<Duration>,
    pub(crate) panics: bool,
    /// Dropping the work unfinished takes a while.
    pub(crate) slow_drop: bool,
}

impl WorkSpec {
    pub(crate) fn draw(rng: &mut Rng) -> Self {
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
pub(crate) struct CallCtx {
    pub(crate) k: u8,
    /// Clock read before registering.
    pub(crate) started: u64,
    /// Set by the closure (to the execution id) if this caller started the flight.
    pub(crate) starter_of: Arc<AtomicU64>,
}

/// The closure a caller passes: runs only if this caller starts the flight.
pub(crate) fn make_work(
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
pub(crate) enum Outcome {
    Value(Val),
    Panic(Box<dyn Any + Send>),
    /// Dropped by the test (at a random poll count, or after a stall).
    Dropped,
    TimedOut,
}

pub(crate) type CallerFut = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

pub(crate) fn describe(payload: &(dyn Any + Send)) -> String {
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

/// The key and execution a work panic names: `PANIC_TAG k=K e=E`.
pub(crate) fn panic_origin(payload: &(dyn Any + Send)) -> Option<(u8, u64)> {
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
    pub(crate) fn record(&self, ctx: &CallCtx, outcome: Outcome) {
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
