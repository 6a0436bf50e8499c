//! The wire: everything that talks to Redis, one file per concern. `conn.rs` is the connection
//! (one server or a cluster) and its subscriptions, `scripts.rs` the server-side scripts (the
//! Lua itself is in `lua/`), `dispatch.rs` routes pub/sub messages to the flights that wait
//! for them, and `runtime.rs` is the runtime's timer and spawn. What the messages and answers
//! mean is decided in `protocol/`.

mod conn;
mod dispatch;
mod runtime;
mod scripts;

pub(crate) use conn::Conn;
pub(crate) use dispatch::{Dispatcher, Link, Watch};
pub(crate) use runtime::Runtime;
pub(crate) use scripts::Scripts;

#[cfg(not(any(feature = "tokio", feature = "smol")))]
compile_error!("single-flight-redis needs a runtime: enable the feature `tokio` or `smol`");
