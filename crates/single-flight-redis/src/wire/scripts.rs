//! The server-side scripts of the protocol (`protocol/` says what each step means; the Lua is
//! in `lua/`, each script prefixed with the helpers of `lua/holder.lua`). `KEYS[1]` is always
//! the lease key, so that a cluster routes each script to the slot of the flight's hash tag;
//! every other name a script touches (result, channel) has the same hash tag.

use redis::{RedisResult, Script, Value};

use super::Conn;
use crate::protocol::{Acquire, Check, Release};

/// A script: the helpers, then its own body.
macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/holder.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

pub(crate) struct Scripts {
    acquire: Script,
    check: Script,
    renew: Script,
    release: Script,
    finish: Script,
    abandon: Script,
    probe: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            acquire: script!("acquire.lua"),
            check: script!("check.lua"),
            renew: script!("renew.lua"),
            release: script!("release.lua"),
            finish: script!("finish.lua"),
            abandon: script!("abandon.lua"),
            probe: Script::new(include_str!("lua/probe.lua")),
        }
    }

    pub(crate) async fn acquire(
        &self,
        conn: &mut Conn,
        lease: &str,
        token: &str,
        lease_ms: u64,
    ) -> RedisResult<Acquire> {
        let answer: Value = self
            .acquire
            .key(lease)
            .arg(token)
            .arg(lease_ms)
            .invoke_async(conn)
            .await?;
        if let Value::Int(1) = answer {
            return Ok(Acquire::Acquired);
        }
        Ok(Acquire::Held {
            owner: redis::from_redis_value(answer)?,
        })
    }

    pub(crate) async fn check(
        &self,
        conn: &mut Conn,
        lease: &str,
        result: &str,
        awaited: &str,
    ) -> RedisResult<Check> {
        let answer: Value = self
            .check
            .key(lease)
            .key(result)
            .arg(awaited)
            .invoke_async(conn)
            .await?;
        Ok(match answer {
            Value::Int(pttl_ms) => Check::Awaited { pttl_ms },
            Value::Array(mut items) => match items.len() {
                0 => Check::Free,
                1 => Check::Finished(redis::from_redis_value(items.remove(0))?),
                _ => {
                    let (holder, pttl_ms) = redis::from_redis_value(Value::Array(items))?;
                    Check::Other { holder, pttl_ms }
                }
            },
            other => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Parse,
                    "unexpected answer of the check script",
                    format!("{other:?}"),
                )))
            }
        })
    }

    /// Whether the lease was still this flight's (and is now extended).
    pub(crate) async fn renew(
        &self,
        conn: &mut Conn,
        lease: &str,
        token: &str,
        lease_ms: u64,
    ) -> RedisResult<bool> {
        let renewed: i64 = self
            .renew
            .key(lease)
            .arg(token)
            .arg(lease_ms)
            .invoke_async(conn)
            .await?;
        Ok(renewed == 1)
    }

    pub(crate) async fn release(
        &self,
        conn: &mut Conn,
        lease: &str,
        token: &str,
    ) -> RedisResult<Release> {
        let answer: i64 = self
            .release
            .key(lease)
            .arg(token)
            .invoke_async(conn)
            .await?;
        Ok(Release::from_answer(answer))
    }

    /// Whether the lease was still this flight's when it finished.
    pub(crate) async fn finish(
        &self,
        conn: &mut Conn,
        flight: &crate::protocol::FlightNames,
        token: &str,
        envelope: &[u8],
        result_ms: u64,
    ) -> RedisResult<bool> {
        let publish = conn.publish_command();
        let held: i64 = self
            .finish
            .key(&flight.lease)
            .key(flight.result(token))
            .key(&flight.channel)
            .arg(token)
            .arg(envelope)
            .arg(result_ms)
            .arg(publish)
            .invoke_async(conn)
            .await?;
        Ok(held == 1)
    }

    /// Whether the lease was still this flight's (and is now gone).
    pub(crate) async fn abandon(
        &self,
        conn: &mut Conn,
        flight: &crate::protocol::FlightNames,
        token: &str,
    ) -> RedisResult<bool> {
        let publish = conn.publish_command();
        let released: i64 = self
            .abandon
            .key(&flight.lease)
            .key(&flight.channel)
            .arg(token)
            .arg(publish)
            .invoke_async(conn)
            .await?;
        Ok(released == 1)
    }

    /// Loads the probe (`SCRIPT LOAD`, which every script needs after a server restart) and
    /// runs it on `flight`'s names: the commands of the scripts that Redis would refuse this
    /// user (empty on a server too old to tell, Redis 6).
    pub(crate) async fn probe(
        &self,
        conn: &mut Conn,
        flight: &crate::protocol::FlightNames,
    ) -> RedisResult<Vec<String>> {
        let publish = conn.publish_command();
        let mut invocation = self.probe.key(&flight.lease);
        invocation
            .key(flight.result("probe"))
            .arg(&flight.channel)
            .arg(publish);
        invocation.load_async(conn).await?;
        invocation.invoke_async(conn).await
    }
}
