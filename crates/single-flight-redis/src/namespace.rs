//! A namespace made into the names of its keys and channels, or the error that says why not:
//! shared by the group (at connect) and the ACL rule, so that neither imports the other.

use crate::error::{Error, ErrorKind};
use crate::protocol::Names;

/// The names of `namespace`; an [`ErrorKind::Namespace`] error if it is empty or contains a
/// brace (it would break the hash tag that keeps a flight's keys in one cluster slot).
pub(crate) fn names(namespace: &str) -> Result<Names, Error> {
    Names::new(namespace).ok_or_else(|| {
        Error::new(
            ErrorKind::Namespace,
            format!("namespace {namespace:?} is empty or contains a brace"),
        )
    })
}
