//! Per-client request and connection limits of one Ingress, as ingress-nginx's `limit-*`
//! annotations ask for them.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::policy::IpRange;

/// How much one client address may ask of an Ingress's routes. Over-limit requests get 503.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// The request rates a client must stay within, all at once (`limit-rpm`, `limit-rps`).
    pub requests: Vec<RequestRate>,
    /// The most requests a client may have in progress at once (`limit-connections`).
    pub connections: Option<NonZeroU32>,
    /// Clients in these ranges are never limited (`limit-allowlist`, `limit-whitelist`).
    pub exempt: Vec<IpRange>,
}

impl RateLimit {
    /// Whether a client at `addr` is exempt from the limits.
    pub fn exempts(&self, addr: IpAddr) -> bool {
        self.exempt.iter().any(|range| range.contains(addr))
    }
}

/// A steady request rate with a burst allowance, as nginx's `limit_req ... burst=B nodelay`:
/// a client may send `burst + 1` requests at once, then one per [`interval`](Self::interval).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestRate {
    /// How many requests per `period`.
    pub requests: NonZeroU32,
    /// One second (`limit-rps`) or one minute (`limit-rpm`).
    pub period: Duration,
    /// How many requests beyond the steady rate may arrive at once: the rate times
    /// `limit-burst-multiplier`.
    pub burst: u32,
}

impl RequestRate {
    /// The time between two requests at the steady rate.
    pub fn interval(&self) -> Duration {
        self.period / self.requests.get()
    }

    /// How far ahead of the steady rate a client may get: `burst` intervals.
    pub fn tolerance(&self) -> Duration {
        self.interval().saturating_mul(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_give_interval_and_tolerance() {
        let rate = RequestRate {
            requests: NonZeroU32::new(4).expect("non-zero"),
            period: Duration::from_secs(1),
            burst: 20,
        };
        assert_eq!(rate.interval(), Duration::from_millis(250));
        assert_eq!(rate.tolerance(), Duration::from_secs(5));
    }

    #[test]
    fn exempt_ranges_match_addresses() {
        let limit = RateLimit {
            requests: Vec::new(),
            connections: None,
            exempt: vec![IpRange {
                network: "127.0.0.1".parse().expect("address"),
                prefix_len: 32,
            }],
        };
        assert!(limit.exempts("127.0.0.1".parse().expect("address")));
        assert!(!limit.exempts("127.0.0.2".parse().expect("address")));
    }
}
