//! The runtime the group runs on: its timer and its spawn (tokio or smol), as redis-rs keeps
//! its own `runtime.rs` apart.

use std::future::Future;
use std::time::Duration;

/// The runtime the group runs on: its timer and its spawn.
#[derive(Clone, Debug)]
pub(crate) enum Runtime {
    #[cfg(feature = "tokio")]
    Tokio(tokio::runtime::Handle),
    #[cfg(feature = "smol")]
    Smol,
}

impl Runtime {
    /// tokio when called inside a tokio runtime (and the feature is on), else smol.
    pub(crate) fn current() -> Self {
        #[cfg(feature = "tokio")]
        {
            #[cfg(feature = "smol")]
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                return Runtime::Tokio(handle);
            }
            #[cfg(not(feature = "smol"))]
            return Runtime::Tokio(tokio::runtime::Handle::current());
        }
        #[cfg(feature = "smol")]
        Runtime::Smol
    }

    pub(crate) async fn sleep(&self, duration: Duration) {
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio(_) => tokio::time::sleep(duration).await,
            #[cfg(feature = "smol")]
            Runtime::Smol => {
                smol::Timer::after(duration).await;
            }
        }
    }

    /// `None` if `future` did not finish within `duration`.
    pub(crate) async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Option<F::Output> {
        futures_lite::future::or(async { Some(future.await) }, async {
            self.sleep(duration).await;
            None
        })
        .await
    }

    /// Runs `future` to completion on the runtime, detached.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        match self {
            #[cfg(feature = "tokio")]
            Runtime::Tokio(handle) => drop(handle.spawn(future)),
            #[cfg(feature = "smol")]
            Runtime::Smol => smol::spawn(future).detach(),
        }
    }
}
