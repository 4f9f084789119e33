//! Choosing one endpoint of a backend for each request.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A load-balancing algorithm over one fixed set of endpoints.
///
/// A balancer is built for each endpoint set and replaced whole when the set changes, so it
/// may keep whatever per-set state its algorithm needs.
pub trait Balancer: Send + Sync + fmt::Debug {
    /// The index, below `len`, of the endpoint the next request goes to; `None` when `len` is 0.
    fn pick(&self, len: usize) -> Option<usize>;
}

/// Takes the endpoints in turn.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Balancer for RoundRobin {
    fn pick(&self, len: usize) -> Option<usize> {
        (len > 0).then(|| self.next.fetch_add(1, Ordering::Relaxed) % len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_visits_every_endpoint_in_turn() {
        let balancer = RoundRobin::default();
        let picks: Vec<_> = (0..6).filter_map(|_| balancer.pick(3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_eq!(balancer.pick(0), None);
    }
}
