//! `On`: a group or receiver seen through a runtime, with the operations that need one
//! (timeouts, spawned flights), written once for every runtime: for the `Send` groups in
//! `send.rs`, for the `local` ones in `local.rs`.

mod local;
mod send;

use std::fmt;
use std::marker::PhantomData;

#[cfg(doc)]
use super::Runtime;

/// A group or a receiver on runtime `R`: made by [`Runtime::on`], it offers the timeouts and
/// spawned flights of that runtime. The adapters' extension traits (`KeyedGroupExt`,
/// `GroupExt`, `ReceiverExt`) are thin names for these methods.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use single_flight::runtime::Runtime;
/// use single_flight::KeyedGroup;
/// # struct MyRuntime;
/// # impl Runtime for MyRuntime {
/// #     fn sleep_until(at: std::time::Instant) -> impl std::future::Future<Output = ()> + Send {
/// #         async move { async_io::Timer::at(at).await; }
/// #     }
/// #     fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
/// #         std::thread::spawn(move || futures_lite::future::block_on(task));
/// #     }
/// # }
///
/// # futures_lite::future::block_on(async {
/// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
/// let value = MyRuntime::on(&group).call_timeout(1, Duration::from_secs(1), |k| async move { k });
/// assert_eq!(value.await, Ok(1));
/// # });
/// ```
pub struct On<T, R> {
    target: T,
    runtime: PhantomData<fn() -> R>,
}

impl<T, R> On<T, R> {
    pub(super) fn new(target: T) -> Self {
        Self {
            target,
            runtime: PhantomData,
        }
    }
}

impl<T: fmt::Debug, R> fmt::Debug for On<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("On")
            .field("target", &self.target)
            .field("runtime", &std::any::type_name::<R>())
            .finish()
    }
}
