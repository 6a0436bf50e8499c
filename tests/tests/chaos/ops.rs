//! The callers: one operation per draw (joins, receivers, forgets, detached flights,
//! cancellations, timeouts and stalls), the lanes that issue them and the holder of stalled
//! callers.

use super::*;

// ---------------------------------------------------------------------------------------------
// Callers.

/// Drops the inner future once it has been polled `polls` times without finishing
/// (`polls == 0`: dropped before its first poll).
pub(crate) struct DropAfter {
    pub(crate) fut: Option<CallerFut>,
    pub(crate) polls: u32,
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
pub(crate) enum How {
    Call,
    DoChan,
    Detached,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
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
    pub(crate) fn draw(rng: &mut Rng, how: How) -> Self {
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
pub(crate) struct Env {
    pub(crate) world: Arc<World>,
    pub(crate) group: Arc<Group>,
    pub(crate) spawner: Spawner,
    pub(crate) holder: Arc<Holder>,
}

/// Keeps stalled callers alive, unpolled, until their time is up (a few milliseconds at most,
/// whatever the lanes do): the callers stalled beyond the one per key that a lane may hold.
pub(crate) struct Holder {
    pub(crate) world: Arc<World>,
    pub(crate) held: Mutex<Vec<(Instant, CallCtx, CallerFut)>>,
    /// Callers held and not yet dropped.
    pub(crate) holding: AtomicUsize,
    pub(crate) done: AtomicBool,
}

impl Holder {
    /// Starts the holder's thread.
    pub(crate) fn start(world: &Arc<World>) -> (Arc<Self>, std::thread::JoinHandle<()>) {
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

    pub(crate) fn hold(&self, hold: Duration, ctx: CallCtx, fut: CallerFut) {
        self.holding.fetch_add(1, SeqCst);
        lock(&self.held).push((Instant::now() + hold, ctx, fut));
    }

    /// Drops the callers whose time is up (all of them once `finish` was called).
    pub(crate) fn run(&self) {
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
    pub(crate) fn finish(&self) {
        self.done.store(true, SeqCst);
    }
}

impl Env {
    pub(crate) fn ctx(&self, k: u8) -> CallCtx {
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
    pub(crate) fn caller(&self, ctx: &CallCtx, how: How, spec: WorkSpec) -> CallerFut {
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
    /// until one of them is dropped (`tests/hostile/waiters.rs`, `stalled_driver_and_stalled_follower`);
    /// the holder's callers are always dropped in time, so they can only delay the lanes.
    pub(crate) async fn run_caller(
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
    pub(crate) fn receiver(&self, ctx: &CallCtx, how: How, spec: WorkSpec) -> CallerFut {
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
    pub(crate) fn drop_stalled(&self, ctx: CallCtx, fut: CallerFut) {
        drop(fut);
        self.world.stats.stalled.fetch_add(1, SeqCst);
        self.world.record(&ctx, Outcome::Dropped);
        self.world.stalled_keys[usize::from(ctx.k)].store(false, SeqCst);
    }

    pub(crate) fn forget(&self, k: u8) {
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
    pub(crate) async fn lane(self, lane: usize, mut rng: Rng, budget: usize) {
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
pub(crate) async fn catch(fut: impl Future<Output = Val>) -> Outcome {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(val) => Outcome::Value(val),
        Err(payload) => Outcome::Panic(payload),
    }
}

/// Polls every unfinished future each time it is woken (a few futures at a time).
pub(crate) struct JoinAll<'a>(pub(crate) Vec<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>);

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
