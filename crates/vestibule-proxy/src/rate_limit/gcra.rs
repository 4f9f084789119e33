//! The generic cell rate algorithm, as nginx's `limit_req ... burst=B nodelay` behaves: each
//! client has a theoretical arrival time (TAT) that every admitted request pushes one interval
//! further; a request is refused when the TAT is more than the burst tolerance ahead of now.
//! Times are nanoseconds since the zone was created.

use std::time::Duration;

use vestibule_routing::RequestRate;

/// One request rate's parameters, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Gcra {
    interval: u64,
    tolerance: u64,
}

impl Gcra {
    /// The parameters of `rate`.
    pub(super) fn new(rate: &RequestRate) -> Self {
        Self {
            interval: nanos(rate.interval()).max(1),
            tolerance: nanos(rate.tolerance()),
        }
    }

    /// The client's TAT after admitting a request at `now`, or `None` when the request is over
    /// the limit (and the TAT stays as it was).
    pub(super) fn admit(&self, tat: u64, now: u64) -> Option<u64> {
        let tat = tat.max(now);
        (tat - now <= self.tolerance).then(|| tat.saturating_add(self.interval))
    }
}

/// A duration in nanoseconds, saturating.
pub(super) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    const SECOND: u64 = 1_000_000_000;

    fn per_second(requests: u32, burst: u32) -> Gcra {
        Gcra::new(&RequestRate {
            requests: NonZeroU32::new(requests).expect("non-zero"),
            period: Duration::from_secs(1),
            burst,
        })
    }

    /// How many of `count` requests arriving together at `now` are admitted.
    fn admitted(gcra: &Gcra, tat: &mut u64, now: u64, count: usize) -> usize {
        (0..count)
            .filter(|_| match gcra.admit(*tat, now) {
                Some(next) => {
                    *tat = next;
                    true
                }
                None => false,
            })
            .count()
    }

    #[test]
    fn a_burst_admits_burst_plus_one_requests() {
        let gcra = per_second(1, 2);
        let mut tat = 0;
        assert_eq!(admitted(&gcra, &mut tat, 5 * SECOND, 10), 3);
    }

    #[test]
    fn zero_burst_admits_exactly_the_rate() {
        let gcra = per_second(2, 0);
        let mut tat = 0;
        assert_eq!(admitted(&gcra, &mut tat, SECOND, 5), 1);
        assert_eq!(admitted(&gcra, &mut tat, SECOND + SECOND / 4, 5), 0);
        assert_eq!(admitted(&gcra, &mut tat, SECOND + SECOND / 2, 5), 1);
    }

    #[test]
    fn time_refills_one_request_per_interval() {
        let gcra = per_second(10, 50);
        let mut tat = 0;
        let start = 100 * SECOND;
        assert_eq!(admitted(&gcra, &mut tat, start, 100), 51);
        assert_eq!(admitted(&gcra, &mut tat, start + SECOND / 2, 100), 5);
        assert_eq!(admitted(&gcra, &mut tat, start + 10 * SECOND, 100), 51);
    }

    #[test]
    fn refused_requests_do_not_consume() {
        let gcra = per_second(1, 0);
        let mut tat = 0;
        assert_eq!(admitted(&gcra, &mut tat, SECOND, 1000), 1);
        assert_eq!(admitted(&gcra, &mut tat, 2 * SECOND, 1), 1);
    }

    #[test]
    fn per_minute_rates_refill_slowly() {
        let gcra = Gcra::new(&RequestRate {
            requests: NonZeroU32::new(6).expect("non-zero"),
            period: Duration::from_secs(60),
            burst: 0,
        });
        let mut tat = 0;
        assert_eq!(admitted(&gcra, &mut tat, 0, 3), 1);
        assert_eq!(admitted(&gcra, &mut tat, 9 * SECOND, 3), 0);
        assert_eq!(admitted(&gcra, &mut tat, 10 * SECOND, 3), 1);
    }
}
