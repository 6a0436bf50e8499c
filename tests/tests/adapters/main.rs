//! Behaviour of the runtime adapters (`single-flight-tokio`, `-smol`, `-async-std`): one suite
//! (`suite.rs`), run once per runtime by that runtime's module, which adds the tests only its
//! runtime can run (executors as values, runtime shutdown, spawning outside a runtime).
//!
//! Work waits on gates that the test opens (by closing a channel); the only waits on a clock
//! are timeouts of a few milliseconds that are meant to expire (none on tokio's paused clock).

mod on_async_std;
mod on_smol;
mod on_tokio;
