//! Least privilege: the ACL rule a group needs ([`acl_rule`]), and the check at connect that
//! the connection's user has it, so that a missing right shows as an error of `connect`
//! instead of a fallback on every call.

use crate::error::{Error, ErrorKind};
use crate::protocol::Names;
use crate::wire::{Conn, Scripts};

/// The commands a group sends, whoever sends them: the scripts (`EVALSHA`, `SCRIPT LOAD` after
/// a server restart) and what they call, and the flight channels' (sharded) pub/sub.
const COMMANDS: &str = "-@all +evalsha +script|load \
    +type +get +set +del +pttl +pexpire +hget +hset +hincrby \
    +subscribe +unsubscribe +publish +ssubscribe +sunsubscribe +spublish";

/// The ACL rule that gives a Redis user exactly the rights a group of `namespace` needs, for
/// `ACL SETUSER <user> on ><password> <rule>` (or a line of an ACL file): its keys
/// (`~<namespace>:{*`), its flights' channels (`&<namespace>:{*`), with the namespace's glob
/// characters escaped, and the commands the group runs. It resets the user's other keys and
/// channels; the commands start from `-@all`.
///
/// The same rule serves one server and a cluster; a cluster client also needs
/// `+ping +cluster|slots +command|info` (redis-rs's topology discovery, and
/// [`RedisGroup::connect_cluster`](crate::RedisGroup::connect_cluster)'s check for sharded
/// pub/sub). Several groups under one user: join their key and channel patterns.
///
/// # Errors
///
/// [`ErrorKind::Namespace`] if `namespace` is empty or contains a brace.
///
/// # Examples
///
/// ```
/// let rule = single_flight_redis::acl_rule("customers").unwrap();
/// assert_eq!(
///     rule,
///     "resetkeys ~customers:{* resetchannels &customers:{* -@all +evalsha +script|load \
///      +type +get +set +del +pttl +pexpire +hget +hset +hincrby \
///      +subscribe +unsubscribe +publish +ssubscribe +sunsubscribe +spublish"
/// );
/// ```
pub fn acl_rule(namespace: &str) -> Result<String, Error> {
    let pattern = crate::namespace::names(namespace)?.pattern();
    Ok(format!(
        "resetkeys ~{pattern} resetchannels &{pattern} {COMMANDS}"
    ))
}

/// Checks at connect that the user may run what the group runs, on the namespace's names:
/// loads and runs the probe script (it asks Redis 7+ about every command of the scripts,
/// writing nothing), then listens on a channel of the namespace and stops.
///
/// Only a refusal fails: a check that times out or fails otherwise (a slow server) is logged
/// and skipped, as connecting did not ask more of the server before; a right that is missing
/// then shows at first use (a refused command is a logged failure, like any other).
pub(crate) async fn check_rights(
    conn: &mut Conn,
    scripts: &Scripts,
    names: &Names,
) -> Result<(), Error> {
    let probe = names.probe();
    let denied = match scripts.probe(conn, &probe).await {
        Ok(denied) => denied,
        Err(e) => return undecided(Error::redis("cannot run the group's scripts", e)),
    };
    if !denied.is_empty() {
        return Err(Error::new(
            ErrorKind::Permission,
            format!(
                "the Redis user may not run {} on the keys and channels of namespace {:?} \
                 (single_flight_redis::acl_rule gives the rule it needs)",
                denied.join(", "),
                names.namespace()
            ),
        ));
    }
    let listened = conn.listen(&probe.channel).await;
    // Undone whatever the answer: a refused subscription leaves nothing to undo.
    let unlistened = conn.unlisten(&probe.channel).await;
    match listened.and(unlistened) {
        Ok(()) => Ok(()),
        Err(e) => undecided(Error::redis("cannot listen on the namespace's channels", e)),
    }
}

/// A check that failed: a refusal is the answer; anything else leaves it undecided.
#[cold]
fn undecided(error: Error) -> Result<(), Error> {
    if error.kind() == ErrorKind::Permission {
        return Err(error);
    }
    tracing::warn!(%error, "single-flight-redis: could not check the user's rights at connect");
    Ok(())
}
