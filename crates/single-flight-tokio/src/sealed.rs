//! Keeps the extension traits implementable by the core's types only, so that methods can be
//! added to them without breaking anyone.

use single_flight::{Group, KeyedGroup, Receiver};

pub trait Sealed {}

impl<K, V, S> Sealed for KeyedGroup<K, V, S> {}
impl<V> Sealed for Group<V> {}
impl<V> Sealed for Receiver<V> {}
