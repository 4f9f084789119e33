//! Peak EWMA of endpoint response times, and the power-of-two-choices pick that uses it
//! (`load-balance: ewma`, as ingress-nginx's Lua balancer).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::upstream::UpstreamEndpoint;

/// How fast old samples lose weight: a sample this old counts `1/e` as much as a new one.
const DECAY_MS: f64 = 10_000.0;

/// An endpoint's decaying average response time, in seconds. A sample slower than the average
/// replaces it at once (the peak), so a slowing endpoint is noticed on its first slow answer;
/// faster samples pull it down gradually, and without samples it decays towards zero, so an
/// idle endpoint is eventually tried again.
#[derive(Debug, Default)]
pub(crate) struct Ewma {
    /// The average and when it was last updated, in [`now_ms`](crate::upstream::now_ms) time.
    state: Mutex<(f64, u64)>,
}

impl Ewma {
    /// Records a response time measured at `now_ms`.
    pub(crate) fn observe(&self, rtt: Duration, now_ms: u64) {
        let rtt = rtt.as_secs_f64();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (average, touched) = *state;
        let weight = decay(now_ms, touched);
        let updated = if rtt > average {
            rtt
        } else {
            average * weight + rtt * (1.0 - weight)
        };
        *state = (updated, now_ms.max(touched));
    }

    /// The average as of `now_ms`, decayed towards zero since the last sample; lower is better.
    pub(crate) fn score(&self, now_ms: u64) -> f64 {
        let (average, touched) = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
        average * decay(now_ms, touched)
    }
}

/// The weight the average keeps after `now - touched` milliseconds.
fn decay(now_ms: u64, touched_ms: u64) -> f64 {
    let elapsed = now_ms.saturating_sub(touched_ms) as f64;
    (-elapsed / DECAY_MS).exp()
}

/// Of two distinct random endpoints among those `usable`, the one with the lower score; the
/// only usable one when there is one; `None` when there is none.
pub(crate) fn pick_of_two(
    endpoints: &[UpstreamEndpoint],
    usable: impl Fn(&UpstreamEndpoint) -> bool,
    now_ms: u64,
) -> Option<usize> {
    let candidates: Vec<usize> = (0..endpoints.len())
        .filter(|&index| usable(&endpoints[index]))
        .collect();
    let first = fastrand::usize(..candidates.len().max(1));
    let a = *candidates.get(first)?;
    if candidates.len() == 1 {
        return Some(a);
    }
    let second = (first + 1 + fastrand::usize(..candidates.len() - 1)) % candidates.len();
    let b = candidates[second];
    let score = |index: usize| endpoints[index].latency.score(now_ms);
    Some(if score(b) < score(a) { b } else { a })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_count_at_once_and_fast_samples_pull_down_gradually() {
        let ewma = Ewma::default();
        ewma.observe(Duration::from_millis(10), 0);
        assert!((ewma.score(0) - 0.010).abs() < 1e-9);
        ewma.observe(Duration::from_millis(500), 100);
        assert!(
            (ewma.score(100) - 0.5).abs() < 1e-9,
            "the peak replaces the average"
        );
        ewma.observe(Duration::from_millis(10), 1_100);
        let after = ewma.score(1_100);
        assert!(
            after < 0.5 && after > 0.4,
            "one fast sample a second later: {after}"
        );
        assert!(
            ewma.score(60_000) < 0.01,
            "an idle average decays towards zero"
        );
    }
}
