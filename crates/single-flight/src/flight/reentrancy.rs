//! The re-entrancy guard (semantic 5): which flights' work (or closures) are being polled on
//! this thread, so that a waiter polled from inside its own flight's work panics instead of
//! waiting for itself forever.

use std::cell::{Cell, RefCell};

/// The message a re-entrant wait panics with.
pub(crate) const REENTRANT: &str =
    "single-flight: re-entrant call: the work of a flight is waiting \
for the result of its own flight (same group, same key); it would wait for itself forever";

#[cfg(not(loom))]
std::thread_local! {
    /// The flight whose work is being polled on this thread (0: none). A plain `Cell`, so that
    /// the common, unnested poll costs two thread-local accesses.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    /// The flights around `CURRENT` when polls nest (work awaiting another flight's waiter).
    static OUTER: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

#[cfg(loom)]
loom::thread_local! {
    static CURRENT: Cell<usize> = Cell::new(0);
    static OUTER: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// Marks a flight's work as being polled on this thread for as long as it lives.
///
/// A waiter that finds its flight among the flights being polled on its thread is being polled
/// from inside that flight's own work (directly or through other flights polled on this thread):
/// it panics with [`REENTRANT`] instead of waiting forever.
pub(crate) struct PollingScope {
    outer: usize,
}

impl PollingScope {
    #[inline]
    pub(crate) fn enter(id: usize) -> Self {
        let outer = CURRENT.with(|current| current.replace(id));
        if outer != 0 {
            OUTER.with(|stack| stack.borrow_mut().push(outer));
        }
        Self { outer }
    }
}

impl Drop for PollingScope {
    #[inline]
    fn drop(&mut self) {
        // `try_with`: the thread may be tearing down its locals while a flight unwinds.
        let _ = CURRENT.try_with(|current| current.set(self.outer));
        if self.outer != 0 {
            let _ = OUTER.try_with(|stack| stack.borrow_mut().pop());
        }
    }
}

/// Panics with [`REENTRANT`] if the flight `id` is being polled on this thread.
pub(crate) fn assert_not_reentrant(id: usize) {
    let current = CURRENT.try_with(Cell::get).unwrap_or(0);
    if current == 0 {
        return;
    }
    let reentrant = current == id
        || OUTER
            .try_with(|stack| stack.borrow().contains(&id))
            .unwrap_or(false);
    if reentrant {
        panic!("{REENTRANT}");
    }
}
