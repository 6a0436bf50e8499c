//! Go's `(value, shared)` pair, for the tests that check the `shared` flag as Go's suite does.

use std::future::Future;

use single_flight::Outcome;

/// Turns a future of an [`Outcome`] (a call's or a receiver's `with_role()`) into Go's
/// `(value, shared)` pair, `shared` being [`Outcome::shared`].
pub trait GoShared<V>: Future<Output = Outcome<V>> + Sized {
    /// The value and Go's `shared` flag.
    fn go_shared(self) -> impl Future<Output = (V, bool)> {
        async move {
            let outcome = self.await;
            let shared = outcome.shared();
            (outcome.value, shared)
        }
    }
}

impl<V, F: Future<Output = Outcome<V>>> GoShared<V> for F {}
