//! Telling shared objects apart by identity, so results computed from them can be reused.

use std::sync::Arc;

/// The address of a shared object: while it is alive, no other object has it.
pub(crate) fn address<T>(object: &Arc<T>) -> usize {
    Arc::as_ptr(object).addr()
}

/// Whether two lists hold the very same objects in the same order.
pub(crate) fn same_objects<T>(a: &[Arc<T>], b: &[Arc<T>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| Arc::ptr_eq(a, b))
}
