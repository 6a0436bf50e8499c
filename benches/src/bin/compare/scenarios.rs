//! The scenarios `compare` measures, one module each.

use super::*;

mod herd;
mod solo;
mod spread;
mod timeouts;

pub(crate) use self::herd::*;
pub(crate) use self::solo::*;
pub(crate) use self::spread::*;
pub(crate) use self::timeouts::*;
