//! The runtimes a run spawns its tasks on, and the count of tasks still running.

use super::*;

// ---------------------------------------------------------------------------------------------
// Runtimes.

/// What each runtime mixes into the seed, so that the four runs of one seed differ.
pub(crate) fn salt(rt: Rt) -> u64 {
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
pub(crate) enum Spawner {
    Tokio(tokio::runtime::Handle),
    Smol(Arc<smol::Executor<'static>>),
    AsyncStd,
    Threads(Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>),
}

impl Spawner {
    /// Spawns `fut`, counted by the world until it ends; a panic of the task is a failure.
    pub(crate) fn spawn(&self, world: &Arc<World>, fut: impl Future<Output = ()> + Send + 'static) {
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

pub(crate) struct TaskGuard(pub(crate) Arc<World>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.tasks_live.fetch_sub(1, SeqCst);
        self.0.tasks_done.notify(usize::MAX);
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
