//! The shared, multiplexed connection (one server, reconnecting, or a cluster) and how a
//! flight's channel is listened to on it.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::Dispatcher;

/// The shared, multiplexed connection: one server (reconnecting) or a cluster.
///
/// A flight's channel is a classic pub/sub channel on one server (where a message reaches only
/// the connections subscribed to it, on every Redis version), and a sharded one in a cluster
/// (`SSUBSCRIBE`/`SPUBLISH`, Redis 7+), so that a message stays on the shard that owns the
/// flight's slot instead of crossing the cluster bus to every node. Both reconnect on their
/// own and subscribe again to what was subscribed (redis-rs's subscription tracking).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Connects to one server over RESP3 (whatever protocol `client` asked for), with the
    /// dispatcher receiving the pushes and subscriptions renewed after each reconnect (before
    /// the new connection serves any command, so a waiter's check after a reconnect comes
    /// after its channel is listened to again).
    pub(crate) async fn single(
        client: redis::Client,
        dispatcher: Dispatcher,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let config = ConnectionManagerConfig::new()
            .set_push_sender(dispatcher)
            .set_automatic_resubscription()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        Ok(Conn::Single(
            ConnectionManager::new_with_config(client, config).await?,
        ))
    }

    /// Connects to a cluster over RESP3, with the dispatcher receiving the pushes.
    pub(crate) async fn cluster(
        builder: redis::cluster::ClusterClientBuilder,
        dispatcher: Dispatcher,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let client = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(dispatcher)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()?;
        Ok(Conn::Cluster(client.get_async_connection().await?))
    }

    /// Whether the server knows sharded pub/sub (Redis 7+, Valkey): `COMMAND INFO SPUBLISH`
    /// answers a nil for an unknown command.
    pub(crate) async fn has_sharded_pubsub(&mut self) -> RedisResult<bool> {
        let info: Vec<Value> = redis::cmd("COMMAND")
            .arg("INFO")
            .arg("SPUBLISH")
            .query_async(self)
            .await?;
        Ok(matches!(info.first(), Some(v) if *v != Value::Nil))
    }

    /// Listens on a flight's channel; returns once the server confirmed.
    pub(crate) async fn listen(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Conn::Single(c) => c.subscribe(channel).await,
            Conn::Cluster(c) => c.ssubscribe(channel).await,
        }
    }

    /// Stops listening on a flight's channel.
    pub(crate) async fn unlisten(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Conn::Single(c) => c.unsubscribe(channel).await,
            Conn::Cluster(c) => c.sunsubscribe(channel).await,
        }
    }

    /// The command the scripts publish with: the one that matches [`listen`](Self::listen).
    pub(crate) fn publish_command(&self) -> &'static str {
        match self {
            Conn::Single(_) => "PUBLISH",
            Conn::Cluster(_) => "SPUBLISH",
        }
    }
}
